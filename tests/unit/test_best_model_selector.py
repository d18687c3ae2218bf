"""The best model selector against moto (SageMaker's real not-found answers) and botocore stubs (tuning
results moto cannot produce: a real best job, failed or running tuning jobs, algorithm resources, throttling)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import best_model_selector
import boto3
import pytest
from best_model_selector import (
    AlgorithmHasNoInferenceImage,
    AlgorithmNotFound,
    AlgorithmSource,
    InvalidSelectionRequest,
    ModelArtifactMissing,
    NoCompletedTrainingJob,
    SelectionRequest,
    TrainingJobNotFound,
    TuningJobNotCompleted,
    TuningJobNotFound,
    parse_request,
    select_best_model,
)
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

TUNING_JOB = "survival-tuning-11222100-a3f9"
BEST_JOB = f"{TUNING_JOB}-007-1a2b3c4d"
ARTIFACT = f"s3://bucket/model-artifacts/{BEST_JOB}/output/model.tar.gz"
TRAINING_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-trainer:1"
INFERENCE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1"
ALGORITHM_ARN = "arn:aws:sagemaker:us-east-1:123456789012:algorithm/h2o-gbm"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker"
WHEN = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HYPERPARAMETERS = {
    "max_depth": "7",
    "learn_rate": "0.05",
    "seed": "1",
    "training": "{'target': 'Survived'}",
    "_tuning_objective_metric": "validation:auc",
}
IMAGE_SOURCE = {"trainingImage": TRAINING_IMAGE, "inferenceImage": INFERENCE_IMAGE}


def selection(algorithm: dict[str, str] | None = None) -> SelectionRequest:
    return parse_request({"hyperParameterTuningJobName": TUNING_JOB, "algorithm": algorithm or IMAGE_SOURCE})


def tuning_job(status: str = "Completed", best: bool = True, **extra: Any) -> dict[str, Any]:
    """A DescribeHyperParameterTuningJob answer for a tuning job maximizing validation:auc."""
    description: dict[str, Any] = {
        "HyperParameterTuningJobName": TUNING_JOB,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{TUNING_JOB}",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
        },
        "HyperParameterTuningJobStatus": status,
        "CreationTime": WHEN,
        "TrainingJobStatusCounters": {"Completed": 8, "NonRetryableError": 2, "Stopped": 0},
        "ObjectiveStatusCounters": {"Succeeded": 8, "Pending": 0, "Failed": 2},
        **extra,
    }
    if best:
        description["BestTrainingJob"] = {
            "TrainingJobName": BEST_JOB,
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{BEST_JOB}",
            "CreationTime": WHEN,
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": {"max_depth": "7", "learn_rate": "0.05"},
            "FinalHyperParameterTuningJobObjectiveMetric": {
                "Type": "Maximize",
                "MetricName": "validation:auc",
                "Value": 0.912345,
            },
            "ObjectiveStatus": "Succeeded",
        }
    return description


def training_job(status: str = "Completed", artifact: str = ARTIFACT) -> dict[str, Any]:
    return {
        "TrainingJobName": BEST_JOB,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{BEST_JOB}",
        "ModelArtifacts": {"S3ModelArtifacts": artifact},
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "HyperParameters": HYPERPARAMETERS,
        "AlgorithmSpecification": {"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": WHEN,
    }


def algorithm(inference_image: str | None = INFERENCE_IMAGE) -> dict[str, Any]:
    description: dict[str, Any] = {
        "AlgorithmName": "h2o-gbm",
        "AlgorithmArn": ALGORITHM_ARN,
        "CreationTime": WHEN,
        "TrainingSpecification": {
            "TrainingImage": TRAINING_IMAGE,
            "SupportedTrainingInstanceTypes": ["ml.c5.2xlarge"],
            "TrainingChannels": [
                {"Name": "training", "SupportedContentTypes": ["text/csv"], "SupportedInputModes": ["File"]}
            ],
        },
        "AlgorithmStatus": "Completed",
        "AlgorithmStatusDetails": {},
    }
    if inference_image:
        description["InferenceSpecification"] = {
            "Containers": [{"Image": inference_image}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        }
    return description


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    """A stubbed client without retries, so a stubbed throttling error reaches the function once."""
    client = boto3.client("sagemaker", config=Config(retries={"mode": "standard", "max_attempts": 1}))
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect_tuning_results(stubber: Stubber, tuning: dict[str, Any], training: dict[str, Any]) -> None:
    stubber.add_response(
        "describe_hyper_parameter_tuning_job", tuning, {"HyperParameterTuningJobName": TUNING_JOB}
    )
    stubber.add_response("describe_training_job", training, {"TrainingJobName": BEST_JOB})


def test_the_best_job_artifact_objective_and_hyperparameters_come_from_sagemaker(
    sagemaker: tuple[Any, Stubber],
) -> None:
    client, stubber = sagemaker
    expect_tuning_results(stubber, tuning_job(), training_job())

    selected = select_best_model(selection(), client).model_dump()

    assert selected == {
        "hyperParameterTuningJobName": TUNING_JOB,
        "trainingJobName": BEST_JOB,
        "modelDataUrl": ARTIFACT,
        "inferenceImage": INFERENCE_IMAGE,
        "objective": {"MetricName": "validation:auc", "Value": 0.912345},
        "hyperParameters": HYPERPARAMETERS,
        "warmStartParents": [],
    }


def test_a_warm_started_tuning_job_names_its_parents(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    parents = ["survival-tuning-11212100-5c1e", "survival-tuning-11202100-77a0"]
    warm_start = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": name} for name in parents],
        "WarmStartType": "TransferLearning",
    }
    expect_tuning_results(stubber, tuning_job(WarmStartConfig=warm_start), training_job())

    assert select_best_model(selection(), client).warm_start_parents == parents


def test_the_artifact_is_the_one_sagemaker_reports_even_when_it_differs_from_the_usual_layout(
    sagemaker: tuple[Any, Stubber],
) -> None:
    client, stubber = sagemaker
    elsewhere = "s3://bucket/custom/prefix/model.tar.gz"
    expect_tuning_results(stubber, tuning_job(), training_job(artifact=elsewhere))

    assert select_best_model(selection(), client).model_data_url == elsewhere


def test_an_algorithm_resource_gives_its_inference_image(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    expect_tuning_results(stubber, tuning_job(), training_job())
    stubber.add_response("describe_algorithm", algorithm(), {"AlgorithmName": ALGORITHM_ARN})

    selected = select_best_model(selection({"algorithmArn": ALGORITHM_ARN}), client)

    assert selected.inference_image == INFERENCE_IMAGE


def test_an_algorithm_without_inference_container_is_named(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    expect_tuning_results(stubber, tuning_job(), training_job())
    stubber.add_response(
        "describe_algorithm", algorithm(inference_image=None), {"AlgorithmName": ALGORITHM_ARN}
    )

    with pytest.raises(AlgorithmHasNoInferenceImage, match="declares no inference container"):
        select_best_model(selection({"algorithmArn": ALGORITHM_ARN}), client)


def test_a_missing_algorithm_is_named(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    expect_tuning_results(stubber, tuning_job(), training_job())
    stubber.add_client_error(
        "describe_algorithm", "ValidationException", f"Could not find algorithm {ALGORITHM_ARN}"
    )

    with pytest.raises(AlgorithmNotFound, match="h2o-gbm does not exist"):
        select_best_model(selection({"algorithmArn": ALGORITHM_ARN}), client)


def test_a_tuning_job_without_a_scored_training_job_says_what_ran_and_where_to_look(
    sagemaker: tuple[Any, Stubber],
) -> None:
    client, stubber = sagemaker
    failed = tuning_job(best=False)
    failed["TrainingJobStatusCounters"] = {"Completed": 0, "NonRetryableError": 10, "Stopped": 0}
    stubber.add_response("describe_hyper_parameter_tuning_job", failed)

    with pytest.raises(NoCompletedTrainingJob) as raised:
        select_best_model(selection(), client)

    message = str(raised.value)
    assert "validation:auc" in message
    assert "10 NonRetryableError" in message
    assert "/aws/sagemaker/TrainingJobs" in message


@pytest.mark.parametrize("status", ["InProgress", "Failed", "Stopped"])
def test_only_a_completed_tuning_job_is_read(sagemaker: tuple[Any, Stubber], status: str) -> None:
    client, stubber = sagemaker
    stubber.add_response(
        "describe_hyper_parameter_tuning_job", tuning_job(status, FailureReason="All training jobs failed")
    )

    with pytest.raises(TuningJobNotCompleted, match=f"is {status}, not Completed: All training jobs failed"):
        select_best_model(selection(), client)


def test_a_best_job_that_did_not_complete_is_refused(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    expect_tuning_results(stubber, tuning_job(), training_job(status="Stopped"))

    with pytest.raises(ModelArtifactMissing, match="is Stopped"):
        select_best_model(selection(), client)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ThrottlingException", "Rate exceeded"),
        ("AccessDeniedException", "not authorized to perform: sagemaker:DescribeHyperParameterTuningJob"),
        ("ValidationException", "1 validation error detected: Value at 'hyperParameterTuningJobName'"),
    ],
)
def test_throttling_denial_and_other_errors_are_never_reported_as_not_found(
    sagemaker: tuple[Any, Stubber], code: str, message: str
) -> None:
    client, stubber = sagemaker
    stubber.add_client_error("describe_hyper_parameter_tuning_job", code, message)

    with pytest.raises(ClientError) as raised:
        select_best_model(selection(), client)

    assert raised.value.response["Error"]["Code"] == code


def test_throttling_while_reading_the_training_job_is_not_not_found(sagemaker: tuple[Any, Stubber]) -> None:
    client, stubber = sagemaker
    stubber.add_response("describe_hyper_parameter_tuning_job", tuning_job())
    stubber.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded")

    with pytest.raises(ClientError, match="Rate exceeded"):
        select_best_model(selection(), client)


def test_an_unknown_tuning_job_is_named_with_sagemakers_real_answer() -> None:
    with (
        mock_aws(),
        pytest.raises(TuningJobNotFound, match=f"no hyperparameter tuning job named {TUNING_JOB}"),
    ):
        select_best_model(selection(), boto3.client("sagemaker"))


def test_a_best_job_sagemaker_no_longer_knows_is_named_with_sagemakers_real_answer() -> None:
    with mock_aws():
        client = boto3.client("sagemaker")
        # moto completes tuning jobs at once, naming a best training job that it never created.
        client.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=TUNING_JOB,
            HyperParameterTuningJobConfig={
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            },
            TrainingJobDefinition={
                "AlgorithmSpecification": {"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "File"},
                "RoleArn": ROLE_ARN,
                "OutputDataConfig": {"S3OutputPath": "s3://bucket/model-artifacts/"},
                "ResourceConfig": {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            },
        )

        with pytest.raises(TrainingJobNotFound, match=f"the best of tuning job {TUNING_JOB}"):
            select_best_model(selection(), client)


def test_the_handler_returns_the_selection_as_json(
    sagemaker: tuple[Any, Stubber], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = sagemaker
    expect_tuning_results(stubber, tuning_job(), training_job())
    monkeypatch.setattr(best_model_selector, "aws_client", {"sagemaker": client}.__getitem__)

    output = best_model_selector.lambda_handler(
        {"hyperParameterTuningJobName": TUNING_JOB, "algorithm": IMAGE_SOURCE}, lambda_context
    )

    assert output["modelDataUrl"] == ARTIFACT
    assert output["objective"] == {"MetricName": "validation:auc", "Value": 0.912345}


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"algorithm": IMAGE_SOURCE}, "hyperParameterTuningJobName: Field required"),
        (
            {"hyperParameterTuningJobName": "bad_name!", "algorithm": IMAGE_SOURCE},
            "hyperParameterTuningJobName",
        ),
        ({"hyperParameterTuningJobName": "x" * 33, "algorithm": IMAGE_SOURCE}, "at most 32 characters"),
        (
            {"hyperParameterTuningJobName": TUNING_JOB, "algorithm": {}},
            "give algorithmArn, or inferenceImage",
        ),
        (
            {
                "hyperParameterTuningJobName": TUNING_JOB,
                "algorithm": IMAGE_SOURCE | {"algorithmArn": ALGORITHM_ARN},
            },
            "not both",
        ),
        (
            {"hyperParameterTuningJobName": TUNING_JOB, "algorithm": {"trainingImage": TRAINING_IMAGE}},
            "inferenceImage",
        ),
        (
            {"hyperParameterTuningJobName": TUNING_JOB, "algorithm": IMAGE_SOURCE, "extra": 1},
            "extra: Extra inputs",
        ),
        ("not an object", "best model selection input"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_the_field(
    event: Any, named: str, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        best_model_selector, "aws_client", lambda service: pytest.fail("no AWS call expected")
    )

    with pytest.raises(InvalidSelectionRequest, match=named) as raised:
        best_model_selector.lambda_handler(event, lambda_context)

    assert str(raised.value).startswith("best model selection input: ")


def test_an_algorithm_source_is_either_a_resource_or_images() -> None:
    assert AlgorithmSource.model_validate({"algorithmArn": ALGORITHM_ARN}).inference_image is None
    assert AlgorithmSource.model_validate(IMAGE_SOURCE).algorithm_arn is None
