"""Pick the model a finished hyperparameter tuning job produced, for the model-tuning state machine.

Everything comes from SageMaker's own records: the best training job from DescribeHyperParameterTuningJob,
its artifact, objective value and hyperparameters from DescribeTrainingJob (never a hand-built S3 path), and
the inference image from the algorithm resource when training used one. Situations a retry cannot fix raise
a named error whose message tells the user what to do.
"""

from __future__ import annotations

from typing import Any, Self

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, model_validator
from workflow_common.aws_clients import AwsClients
from workflow_common.execution_input import BestModel, Objective
from workflow_common.ml_parameters import ParameterFileError, parse_document
from workflow_common.sagemaker_names import NAME_PATTERN, TUNING_JOB_NAME_MAX_LENGTH
from workflow_common.service_errors import is_not_found, transient_errors_raised_as_unavailable

logger = Logger()
tracer = Tracer()

aws_client = AwsClients()


class InvalidSelectionRequest(ValueError):
    """The state machine passed an input this function cannot use."""


class TuningJobNotFound(LookupError):
    """SageMaker has no tuning job with the requested name."""


class TuningJobNotCompleted(RuntimeError):
    """The tuning job is still running or ended without completing."""


class NoCompletedTrainingJob(RuntimeError):
    """No training job of the tuning job reported the objective metric."""


class TrainingJobNotFound(LookupError):
    """The best training job named by the tuning job no longer exists."""


class ModelArtifactMissing(RuntimeError):
    """The best training job has no usable model artifact."""


class AlgorithmNotFound(LookupError):
    """The algorithm resource used for training does not exist or is not visible to this account."""


class AlgorithmHasNoInferenceImage(ValueError):
    """The algorithm resource declares no inference container."""


class AlgorithmSource(BaseModel):
    """Either an algorithm resource, or the training and inference images; never both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm_arn: str | None = Field(default=None, alias="algorithmArn", min_length=1)
    training_image: str | None = Field(default=None, alias="trainingImage", min_length=1)
    inference_image: str | None = Field(default=None, alias="inferenceImage", min_length=1)

    @model_validator(mode="after")
    def one_source(self) -> Self:
        if self.algorithm_arn and (self.training_image or self.inference_image):
            raise ValueError("give either algorithmArn or trainingImage/inferenceImage, not both")
        if not self.algorithm_arn and not self.inference_image:
            raise ValueError("give algorithmArn, or inferenceImage (with trainingImage)")
        return self


class SelectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hyper_parameter_tuning_job_name: str = Field(
        alias="hyperParameterTuningJobName",
        pattern=NAME_PATTERN,
        max_length=TUNING_JOB_NAME_MAX_LENGTH,
    )
    algorithm: AlgorithmSource


def describe_tuning_job(sagemaker: Any, name: str) -> dict[str, Any]:
    try:
        return sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as error:
        if is_not_found(error):
            raise TuningJobNotFound(f"SageMaker has no hyperparameter tuning job named {name}.") from None
        raise


def describe_training_job(sagemaker: Any, name: str, tuning_job_name: str) -> dict[str, Any]:
    try:
        return sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as error:
        if is_not_found(error):
            raise TrainingJobNotFound(
                f"Training job {name}, the best of tuning job {tuning_job_name}, no longer exists in SageMaker."
            ) from None
        raise


def training_summary(counters: dict[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in counters.items() if count) or "none started"


def best_training_job(tuning_job: dict[str, Any]) -> dict[str, Any]:
    """The best training job's summary; raises when the tuning job has no usable result."""
    name = tuning_job["HyperParameterTuningJobName"]
    status = tuning_job["HyperParameterTuningJobStatus"]
    reason = tuning_job.get("FailureReason") or "SageMaker gave no reason"
    if status != "Completed":
        raise TuningJobNotCompleted(f"Tuning job {name} is {status}, not Completed: {reason}.")
    best = tuning_job.get("BestTrainingJob")
    if not best or "FinalHyperParameterTuningJobObjectiveMetric" not in best:
        metric = tuning_job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
        counters = training_summary(tuning_job.get("TrainingJobStatusCounters", {}))
        raise NoCompletedTrainingJob(
            f"Tuning job {name} completed without any training job reporting the objective metric {metric} "
            f"(training jobs: {counters}). Read the training jobs' logs in CloudWatch "
            f"(/aws/sagemaker/TrainingJobs, streams {name}-*) and check that the trainer prints "
            f"'{metric}=<value>;' and that the data channels it needs exist."
        )
    return best


def inference_image(sagemaker: Any, algorithm: AlgorithmSource) -> str:
    if algorithm.inference_image:  # AlgorithmSource allows it only without an algorithm resource
        return algorithm.inference_image
    arn = algorithm.algorithm_arn
    try:
        description = sagemaker.describe_algorithm(AlgorithmName=arn)
    except ClientError as error:
        if is_not_found(error):
            raise AlgorithmNotFound(
                f"Algorithm {arn} does not exist or is not visible to this account."
            ) from None
        raise
    containers = description.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or not containers[0].get("Image"):
        raise AlgorithmHasNoInferenceImage(
            f"Algorithm {arn} declares no inference container: add an "
            "InferenceSpecification to it, or train with trainingImage/inferenceImage instead."
        )
    return containers[0]["Image"]


@tracer.capture_method
def select_best_model(request: SelectionRequest, sagemaker: Any) -> BestModel:
    tuning_job_name = request.hyper_parameter_tuning_job_name
    tuning_job = describe_tuning_job(sagemaker, tuning_job_name)
    best = best_training_job(tuning_job)
    training_job = describe_training_job(sagemaker, best["TrainingJobName"], tuning_job_name)
    status = training_job["TrainingJobStatus"]
    if status != "Completed":
        raise ModelArtifactMissing(
            f"Training job {best['TrainingJobName']} is {status}: only a Completed job's model is deployed."
        )
    artifact = training_job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not artifact:
        raise ModelArtifactMissing(
            f"Training job {best['TrainingJobName']} completed without a model artifact; its CloudWatch log "
            "(/aws/sagemaker/TrainingJobs) says why the trainer saved no model."
        )
    objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
    selected = BestModel(
        hyper_parameter_tuning_job_name=tuning_job_name,
        training_job_name=best["TrainingJobName"],
        model_data_url=artifact,
        inference_image=inference_image(sagemaker, request.algorithm),
        objective=Objective(metric_name=objective["MetricName"], value=objective["Value"]),
        hyper_parameters=training_job.get("HyperParameters", {}),
        warm_start_parents=[
            parent["HyperParameterTuningJobName"]
            for parent in tuning_job.get("WarmStartConfig", {}).get("ParentHyperParameterTuningJobs", [])
        ],
    )
    logger.info("Best model selected", extra={"bestModel": selected.model_dump()})
    return selected


def parse_request(event: Any) -> SelectionRequest:
    try:
        return parse_document(SelectionRequest, event, "best model selection input")
    except ParameterFileError as error:
        raise InvalidSelectionRequest(str(error)) from None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    with transient_errors_raised_as_unavailable():
        return select_best_model(request, aws_client("sagemaker")).model_dump()
