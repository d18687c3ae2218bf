"""Registering a run's tuned model as a model package version (moto SageMaker and S3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from events import BUCKET, STACK_RESOURCES
from model_registrar import (
    InvalidRegistrationRequest,
    customer_metadata,
    lambda_handler,
    metrics_location,
    model_quality,
    parse_request,
    register_model,
)
from moto import mock_aws

GROUP = STACK_RESOURCES.model_package_group_name
JOB = "survival-tuning-12020958-1f3a-002-5d0e1a2b"
ARTIFACT = f"s3://{BUCKET}/model-artifacts/{JOB}/output/model.tar.gz"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1"
FINAL_METRICS = [
    {"MetricName": "validation:auc", "Value": 0.91},
    {"MetricName": "validation:logloss", "Value": 0.41},
    {"MetricName": "training:auc", "Value": 0.95},
]


def registration_request(approval: str = "Automatic", gate: str = "ACCEPTED", **model: Any) -> dict[str, Any]:
    return {
        "runId": "12020958-1f3a",
        "manifest": f"s3://{BUCKET}/manifests/titanic/manifest.json",
        "registry": {"modelPackageGroupName": GROUP, "modelApproval": approval},
        "model": {
            "hyperParameterTuningJobName": "survival-tuning-12020958-1f3a",
            "trainingJobName": JOB,
            "modelDataUrl": ARTIFACT,
            "inferenceImage": IMAGE,
            "objective": {"MetricName": "validation:auc", "Value": 0.91},
            "hyperParameters": {
                "max_depth": "5",
                "ntrees": "40",
                "_tuning_objective_metric": "validation:auc",
            },
            "modelName": "survival-model-12020958-1f3a",
        }
        | model,
        "gateDecision": {"status": gate, "reason": "worse than the deployed model by 0.004 (validation:auc)"},
    }


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        sagemaker.create_training_job(
            TrainingJobName=JOB,
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn="arn:aws:iam::123456789012:role/sagemaker",
            OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/model-artifacts/"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
        # moto's training jobs report no metrics: the trainer's lines, as SageMaker parses them.
        describe = sagemaker.describe_training_job

        def with_metrics(**kwargs: Any) -> dict[str, Any]:
            return describe(**kwargs) | {"FinalMetricDataList": FINAL_METRICS}

        sagemaker.describe_training_job = with_metrics
        yield {"sagemaker": sagemaker, "s3": s3}


@pytest.mark.parametrize(
    ("approval", "gate", "status"),
    [
        ("Automatic", "ACCEPTED", "Approved"),
        ("Manual", "ACCEPTED", "PendingManualApproval"),
        ("Automatic", "REJECTED", "Rejected"),
        ("Manual", "REJECTED", "Rejected"),
    ],
)
def test_the_version_is_approved_as_ml_parameters_and_the_gate_say(
    aws: dict[str, Any], approval: str, gate: str, status: str
) -> None:
    registration = register_model(
        parse_request(registration_request(approval, gate)), aws["sagemaker"], aws["s3"]
    )
    assert registration.model_approval_status == status
    package = aws["sagemaker"].describe_model_package(ModelPackageName=registration.model_package_arn)
    assert package["ModelApprovalStatus"] == status
    assert package["ModelPackageGroupName"] == GROUP
    assert package["ModelPackageVersion"] == registration.model_package_version == 1
    assert ("Rejected by the quality gate: worse than" in package["ModelPackageDescription"]) is (
        gate == "REJECTED"
    )


def test_the_version_carries_image_artifact_metrics_hyperparameters_and_lineage(aws: dict[str, Any]) -> None:
    arn = register_model(parse_request(registration_request()), aws["sagemaker"], aws["s3"]).model_package_arn
    package = aws["sagemaker"].describe_model_package(ModelPackageName=arn)
    [container] = package["InferenceSpecification"]["Containers"]
    assert (container["Image"], container["ModelDataUrl"]) == (IMAGE, ARTIFACT)
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics == {
        "ContentType": "application/json",
        "S3Uri": f"s3://{BUCKET}/model-artifacts/{JOB}/registry/model-metrics.json",
    }
    key = statistics["S3Uri"].removeprefix(f"s3://{BUCKET}/")
    document = json.loads(aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert document["binary_classification_metrics"] == {
        "auc": {"value": 0.91, "standard_deviation": "NaN"},
        "logloss": {"value": 0.41, "standard_deviation": "NaN"},
    }
    assert document["hyperparameters"]["max_depth"] == "5"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["modelName"] == "survival-model-12020958-1f3a"
    assert metadata["trainingJobName"] == JOB
    assert metadata["runId"] == "12020958-1f3a"
    assert metadata["manifest"] == f"s3://{BUCKET}/manifests/titanic/manifest.json"
    assert metadata["hyperparameter:ntrees"] == "40"
    assert "hyperparameter:_tuning_objective_metric" not in metadata  # SageMaker's own, not a tuned value


def test_a_retried_registration_sends_the_same_client_token(aws: dict[str, Any]) -> None:
    """SageMaker answers a repeated ClientToken with the version it already made (one version per run)."""
    sent: list[str] = []
    create = aws["sagemaker"].create_model_package

    def recording(**kwargs: Any) -> dict[str, Any]:
        sent.append(kwargs["ClientToken"])
        return create(**kwargs)

    aws["sagemaker"].create_model_package = recording
    for _ in range(2):
        register_model(parse_request(registration_request()), aws["sagemaker"], aws["s3"])
    other_run = registration_request() | {"runId": "12021100-aaaa"}
    register_model(parse_request(other_run), aws["sagemaker"], aws["s3"])
    assert sent[0] == sent[1] != sent[2]
    assert all(len(token) <= 36 for token in sent)


def test_metadata_fits_sagemakers_limits() -> None:
    many = {f"parameter_{index:02d}": "x" * 300 for index in range(80)} | {"odd,name": "a,b (c)"}
    metadata = customer_metadata(parse_request(registration_request(hyperParameters=many)))
    assert len(metadata) == 50
    assert all(len(key) <= 128 and len(value) <= 256 for key, value in metadata.items())
    assert all("," not in key + value and "(" not in value for key, value in metadata.items())


@pytest.mark.parametrize(
    ("metrics", "kind"),
    [
        ([{"MetricName": "validation:auc", "Value": 0.9}], "binary_classification_metrics"),
        (
            [{"MetricName": "validation:mean_per_class_error", "Value": 0.1}],
            "multiclass_classification_metrics",
        ),
        ([{"MetricName": "validation:rmse", "Value": 1.5}], "regression_metrics"),
        ([{"MetricName": "training:rmse", "Value": 1.2}], "regression_metrics"),  # no validation channel
    ],
)
def test_model_quality_takes_the_problem_kind_from_the_metrics(
    metrics: list[dict[str, Any]], kind: str
) -> None:
    assert list(model_quality(metrics)) == [kind]


def test_metrics_go_beside_the_training_jobs_output() -> None:
    assert metrics_location(ARTIFACT) == (BUCKET, f"model-artifacts/{JOB}/registry/model-metrics.json")


def test_a_bad_request_names_the_field(lambda_context: Any) -> None:
    request = registration_request()
    del request["registry"]["modelPackageGroupName"]
    with pytest.raises(InvalidRegistrationRequest, match=r"registry\.modelPackageGroupName"):
        lambda_handler(request, lambda_context)
