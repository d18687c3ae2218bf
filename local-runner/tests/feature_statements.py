"""Which IAM statements of the stack serve only one feature: the quality gate's runs (test_quality_gate.py) and
the release runs (test_safe_releases.py: approvals, rollbacks and the alarms that page) must use each of theirs;
the fault runs (test_faults.py), which have neither, leave them to those runs."""

from __future__ import annotations

from typing import Any

import boto3

GATE_ROLES = ("DeployedModelFinderRole", "QualityGateJudgeRole")
GATE_FUNCTIONS = ("DeployedModelFinderFunction", "QualityGateJudgeFunction")
PARENT_ROLE = "TuningWithDeploymentStateMachineRole"
# The parent's statements for the gate's Processing job.
PARENT_GATE_SIDS = ("ScoreDeployedModels", "PassSageMakerExecutionRole")
UNUSED_LOCALLY = ("WriteOwnLogs", "WriteTraces")  # see test_faults.NOT_EXERCISED_LOCALLY
# The approval trigger's role, the alarm notifier's (an alarm fires in a rolled-back release), and the
# inspector's reading of the alarms that rolled an update back.
RELEASE_ROLES = ("ModelApprovalTriggerRole", "EndpointAlarmNotifierRole")
RELEASE_SIDS = {"EndpointInspectorRole": ("ExplainRollbacks",)}


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


def serves_releases_only(role_name: str, statement: dict[str, Any]) -> bool:
    sid = statement.get("Sid")
    if any(role in role_name for role in RELEASE_ROLES):
        return sid not in UNUSED_LOCALLY
    return any(role in role_name and sid in sids for role, sids in RELEASE_SIDS.items())


def statements_of_stack_roles(region: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(role, policy, 1-based index) -> statement, for every inline policy of every role in the account."""
    iam = boto3.client("iam", region_name=region)
    found = {}
    for role in iam.list_roles()["Roles"]:
        for policy_name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)[
                "PolicyDocument"
            ]
            statements = document["Statement"]
            for index, statement in enumerate(
                statements if isinstance(statements, list) else [statements], 1
            ):
                found[(role["RoleName"], policy_name, index)] = statement
    return found
