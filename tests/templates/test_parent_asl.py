"""What the parent state machine does beyond the rules every state machine follows: every tuned model is
registered, and only an Approved version is deployed by its run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from templates import asl

ASL_FILE = (
    Path(__file__).resolve().parents[2] / "statemachine" / "model-tuning-with-endpoint-deployment.asl.json"
)
DEFINITION: dict[str, Any] = json.loads(ASL_FILE.read_text())
STATES: dict[str, dict[str, Any]] = DEFINITION["States"]


def paths_to(target: str, start: str = "TuneModel") -> list[list[str]]:
    """Every way from ``start`` to ``target`` that visits no state twice."""
    found: list[list[str]] = []

    def walk(name: str, path: list[str]) -> None:
        if name == target:
            found.append(path)
            return
        for following in asl.transitions(STATES[name]):
            if following not in path:
                walk(following, [*path, following])

    walk(start, [start])
    return found


def test_every_tuned_model_is_registered_before_anything_is_deployed() -> None:
    ways = paths_to("DeployModel")
    assert ways, "the run deploys"
    for way in ways:
        assert way[-3:] == ["NotifyModelRegistered", "IsModelApproved", "DeployModel"], way
        assert "RegisterModel" in way
    # With and without a quality gate, and whatever the gate decided, the model is registered.
    assert STATES["HasQualityGate"]["Default"] == "SkipQualityGate"
    assert STATES["SkipQualityGate"]["Next"] == STATES["NotifyGateDecision"]["Next"] == "RegisterModel"
    assert STATES["SkipQualityGate"]["Result"]["status"] == "ACCEPTED"


def test_only_an_approved_version_is_deployed_by_its_run() -> None:
    choice = STATES["IsModelApproved"]
    assert choice["Choices"] == [
        {"Variable": "$.registration.modelApprovalStatus", "StringEquals": "Approved", "Next": "DeployModel"},
        {
            "Variable": "$.registration.modelApprovalStatus",
            "StringEquals": "PendingManualApproval",
            "Next": "SummarizePendingApproval",
        },
    ]
    assert choice["Default"] == "SummarizeRejection"
    pending = STATES["SummarizePendingApproval"]["Parameters"]
    assert (pending["deployed"], pending["awaitingApproval"]) == (False, True)
    assert STATES["SummarizeRejection"]["Parameters"]["deployed"] is False
    # A run that deploys nothing still completes and records its data watermark.
    for name in ("SummarizePendingApproval", "SummarizeRejection", "SummarizeDeployment"):
        assert STATES[name]["Next"] == "HasDataWatermark"


def test_the_registrar_gets_the_run_its_model_and_the_gates_decision() -> None:
    register = STATES["RegisterModel"]
    assert register["Parameters"]["FunctionName"] == "${ModelRegistrarFunctionArn}"
    assert register["Parameters"]["Payload"] == {
        "runId.$": "$.runId",
        "manifest.$": "$.manifest",
        "registry.$": "$.registry",
        "model.$": "$.tuningResult.output",
        "gateDecision": {"status.$": "$.gateDecision.status", "reason.$": "$.gateDecision.reason"},
    }
    assert register["ResultPath"] == "$.registration"
    # The deployment gets the registered version, which the endpoint-deployment run reads again before deploying.
    assert (
        STATES["DeployModel"]["Parameters"]["Input.$"]
        == "States.JsonMerge(States.JsonMerge($.deployment, $.registration, false), $.startedBy, false)"
    )
    status = STATES["NotifyModelRegistered"]["Parameters"]["MessageAttributes"]["status"]
    assert status == {"DataType": "String", "StringValue.$": "$.registration.modelApprovalStatus"}
