"""A failure told in a few lines: the innermost workflow's step and the deepest reason of its cause."""

from __future__ import annotations

import json

from h2o_sagemaker_local.outcome import Failure, describe_failure, innermost_reason

TUNING_DESCRIBED = {
    "HyperParameterTuningJobName": "survival-tuning-12021959-beee",
    "HyperParameterTuningJobStatus": "Failed",
    "FailureReason": "All training jobs failed: no such column 'PassengerId'",
}


def test_the_reason_is_dug_out_of_nested_causes() -> None:
    child_cause = json.dumps({"Error": "States.TaskFailed", "Cause": json.dumps(TUNING_DESCRIBED)})
    parent_cause = "States.TaskFailed: " + json.dumps({"status": "FAILED", "cause": child_cause})
    assert innermost_reason(parent_cause) == "All training jobs failed: no such column 'PassengerId'"


def test_a_lambda_errors_message_is_its_reason_and_plain_text_stays() -> None:
    lambda_cause = json.dumps(
        {"errorMessage": "Endpoint x is Failed: delete it", "errorType": "EndpointFailed"}
    )
    assert innermost_reason(lambda_cause) == "Endpoint x is Failed: delete it"
    assert innermost_reason("  rollback alarm a fired.\n The endpoint\tstill serves b. ") == (
        "rollback alarm a fired. The endpoint still serves b."
    )
    assert innermost_reason("x" * 1000).endswith("…") and len(innermost_reason("x" * 1000)) == 400


def test_the_innermost_workflows_notification_tells_the_failure() -> None:
    notifications = [
        {
            "workflow": "TuningWithDeployment",
            "stage": "Failed",
            "step": "TuneModel",
            "error": "E",
            "cause": "c",
        },
        {"workflow": "TuningWithDeployment", "stage": "RunStarted"},
        {
            "workflow": "ModelTuning",
            "stage": "Failed",
            "step": "TuneHyperparameters",
            "error": "States.TaskFailed",
            "cause": json.dumps(TUNING_DESCRIBED),
        },
    ]
    assert describe_failure("TuningWithDeploymentFailed", "...", notifications) == Failure(
        "ModelTuning",
        "TuneHyperparameters",
        "States.TaskFailed",
        "All training jobs failed: no such column 'PassengerId'",
    )
    # No notification (the topic itself failed): the execution's own error and cause.
    assert describe_failure("TuningWithDeploymentFailed", json.dumps(TUNING_DESCRIBED), []).reason == (
        "All training jobs failed: no such column 'PassengerId'"
    )
