"""The quality gate's decision: direction-aware floor/ceiling, beating the deployed model's evaluation (moto S3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from quality_gate_judge import (
    DeployedModelEvaluationUnusable,
    GateRequest,
    InvalidGateRequest,
    judge,
    parse_request,
)

BUCKET = "my-bucket"
OUTPUT = f"s3://{BUCKET}/model-artifacts/survival-tuning-11222100-a3f9-gate/evaluation"
EVALUATION_KEY = "model-artifacts/survival-tuning-11222100-a3f9-gate/evaluation/evaluation.json"
CANDIDATE = "survival-model-11222100-a3f9"
DEPLOYED = "survival-model-11211500-77b0"
FOUND = {"found": True, "endpointConfigName": "survival-endpoint-11211500-77b0", "modelName": DEPLOYED,
         "modelDataUrl": f"s3://{BUCKET}/model-artifacts/old/output/model.tar.gz"}  # fmt: skip
NOT_FOUND = {"found": False, "endpointConfigName": None, "modelName": None, "modelDataUrl": None}


def gate(
    metric: str = "validation:auc", direction: str = "Maximize", beat: bool = True, **changes: Any
) -> dict:
    settings: dict[str, Any] = {
        "objectiveMetricName": metric,
        "objectiveType": direction,
        "minImprovement": 0.0,
    }
    if beat:
        settings["evaluation"] = {
            "processingJobName": "survival-tuning-11222100-a3f9-gate",
            "imageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-trainer:1",
            "instanceType": "ml.m5.xlarge",
            "volumeSizeInGb": 30,
            "maxRuntimeInSeconds": 3600,
            "validationS3Uri": f"s3://{BUCKET}/titanic/validation.csv",
            "validationS3DataType": "S3Prefix",
            "outputS3Uri": OUTPUT,
        }
    return settings | changes


def request(
    quality_gate: dict, value: float, deployed: dict = FOUND, metric: str | None = None
) -> GateRequest:
    return parse_request(
        {
            "qualityGate": quality_gate,
            "candidate": {"MetricName": metric or quality_gate["objectiveMetricName"], "Value": value},
            "candidateModelName": CANDIDATE,
            "deployedModel": deployed,
        }
    )


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def evaluated(s3: Any, metrics: dict[str, Any]) -> None:
    s3.put_object(
        Bucket=BUCKET, Key=EVALUATION_KEY, Body=json.dumps({"format_version": 1, "metrics": metrics})
    )


def test_a_model_better_than_the_deployed_one_on_the_same_rows_is_accepted(s3: Any) -> None:
    evaluated(s3, {"validation:auc": 0.84, "validation:logloss": 0.45})
    decision = judge(request(gate(), 0.86), s3).model_dump()
    assert decision == {
        "accepted": True,
        "status": "ACCEPTED",
        "reason": f"validation:auc 0.86 beats the deployed model {DEPLOYED}'s 0.84 on the same validation rows by 0.02",
        "metricName": "validation:auc",
        "candidateModelName": CANDIDATE,
        "candidateValue": 0.86,
        "deployedModelName": DEPLOYED,
        "deployedModelPackageArn": None,
        "deployedValue": 0.84,
    }


def test_a_model_not_better_than_the_deployed_one_is_rejected_with_both_figures(s3: Any) -> None:
    evaluated(s3, {"validation:auc": 0.84})
    for value in (0.80, 0.84):  # worse, and equal: not better
        decision = judge(request(gate(), value), s3)
        assert (decision.accepted, decision.status) == (False, "REJECTED")
        assert (decision.candidate_value, decision.deployed_value) == (value, 0.84)
        assert decision.reason == (
            f"validation:auc {value:.6g} does not beat the deployed model {DEPLOYED}'s 0.84 on the same validation rows"
        )


def test_min_improvement_is_required_over_the_deployed_model(s3: Any) -> None:
    evaluated(s3, {"validation:auc": 0.84})
    assert not judge(request(gate(minImprovement=0.05), 0.88), s3).accepted
    assert (
        "by at least qualityGate.minImprovement 0.05"
        in judge(request(gate(minImprovement=0.05), 0.88), s3).reason
    )
    assert judge(request(gate(minImprovement=0.05), 0.9), s3).accepted


def test_a_minimised_objective_must_be_lower_and_under_its_ceiling(s3: Any) -> None:
    evaluated(s3, {"validation:logloss": 0.45})
    minimize = gate("validation:logloss", "Minimize", minObjectiveValue=0.5)
    assert judge(request(minimize, 0.40), s3).accepted
    assert not judge(request(minimize, 0.47), s3).accepted
    above = judge(request(minimize, 0.55), s3)
    assert not above.accepted
    assert above.reason == "validation:logloss 0.55 is above the ceiling qualityGate.minObjectiveValue 0.5"


def test_a_model_under_the_floor_is_rejected_with_both_figures(s3: Any) -> None:
    evaluated(s3, {"validation:auc": 0.65})
    decision = judge(request(gate(minObjectiveValue=0.8), 0.7), s3)  # better than deployed, still too low
    assert (decision.accepted, decision.candidate_value, decision.deployed_value) == (False, 0.7, 0.65)
    assert decision.deployed_model_name == DEPLOYED
    assert decision.reason == "validation:auc 0.7 is below the floor qualityGate.minObjectiveValue 0.8"


def test_nothing_deployed_or_not_compared_passes_on_the_floor_alone(s3: Any) -> None:
    first = judge(request(gate(minObjectiveValue=0.8), 0.82, NOT_FOUND), s3)
    assert (first.accepted, first.reason) == (
        True,
        "validation:auc 0.82 passes the gate: no model is deployed yet",
    )
    floor_only = judge(request(gate(beat=False, minObjectiveValue=0.8), 0.82), s3)
    assert floor_only.accepted and floor_only.deployed_value is None
    assert floor_only.reason.endswith("qualityGate.mustBeatDeployedModel is false")


def test_an_unusable_evaluation_is_named(s3: Any) -> None:
    with pytest.raises(
        DeployedModelEvaluationUnusable, match=rf"s3://{BUCKET}/{EVALUATION_KEY} does not exist"
    ):
        judge(request(gate(), 0.9), s3)
    evaluated(s3, {"validation:logloss": 0.45})
    with pytest.raises(
        DeployedModelEvaluationUnusable,
        match=r"gives no finite validation:auc \(metrics: \['validation:logloss'\]\)",
    ):
        judge(request(gate(), 0.9), s3)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, r"qualityGate: Field required"),
        (
            {
                "qualityGate": gate(objectiveType="Up"),
                "candidate": {"MetricName": "validation:auc", "Value": 0.9},
                "candidateModelName": CANDIDATE,
                "deployedModel": FOUND,
            },
            r"qualityGate.objectiveType: Input should be 'Maximize' or 'Minimize'",
        ),
        (
            {
                "qualityGate": gate(),
                "candidate": {"MetricName": "validation:auc"},
                "candidateModelName": CANDIDATE,
                "deployedModel": FOUND,
            },
            r"candidate.Value: Field required",
        ),
    ],
)
def test_bad_input_names_the_field(event: dict, message: str) -> None:
    with pytest.raises(InvalidGateRequest, match=message):
        parse_request(event)


def test_a_candidate_measured_on_another_metric_is_refused(s3: Any) -> None:
    with pytest.raises(
        InvalidGateRequest,
        match=r"candidate.MetricName: validation:logloss is not the gate's objective validation:auc",
    ):
        judge(request(gate(), 0.4, metric="validation:logloss"), s3)
