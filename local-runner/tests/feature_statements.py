"""Which IAM statements of the stack serve only the quality gate: the gate's runs (test_quality_gate.py) must use
each of them; the fault runs (test_faults.py), which have no gate, leave them to those runs."""

from __future__ import annotations

from typing import Any

GATE_ROLES = ("DeployedModelFinderRole", "QualityGateJudgeRole")
GATE_FUNCTIONS = ("DeployedModelFinderFunction", "QualityGateJudgeFunction")
PARENT_ROLE = "TuningWithDeploymentStateMachineRole"
# The parent's statements for the gate's Processing job.
PARENT_GATE_SIDS = ("ScoreDeployedModels", "PassSageMakerExecutionRole")
UNUSED_LOCALLY = ("WriteOwnLogs", "WriteTraces")  # see test_faults.NOT_EXERCISED_LOCALLY


def serves_the_quality_gate_only(role_name: str, statement: dict[str, Any]) -> bool:
    sid = statement.get("Sid")
    if any(role in role_name for role in GATE_ROLES):
        return sid not in UNUSED_LOCALLY
    if PARENT_ROLE not in role_name:
        return False
    if sid in PARENT_GATE_SIDS:
        return True
    resources = statement.get("Resource", [])
    return "lambda:InvokeFunction" in str(statement.get("Action")) and any(
        function in str(resources) for function in GATE_FUNCTIONS
    )
