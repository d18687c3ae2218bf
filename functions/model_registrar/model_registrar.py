"""Register a run's tuned model as a new version of the endpoint's model package group.

The version carries what a reviewer needs to approve it and what a rollback needs to redeploy it: the inference
image and artifact, the validation metrics as the package's ModelQuality statistics (a JSON document in S3, in
the model-quality format SageMaker's registry shows), the tuned hyperparameters, and the lineage (run, manifest,
tuning job, best training job, SageMaker model) as customer metadata. Its approval follows ml-parameters'
modelApproval and the quality gate: a model the gate rejected is registered Rejected (with the gate's reason),
else Approved (Automatic: the run deploys it) or PendingManualApproval (Manual: approving it deploys it).
Registering is idempotent: a retried call with the same run finds the version it created (ClientToken).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field
from workflow_common.aws_clients import AwsClients
from workflow_common.execution_input import ApprovalStatus, ModelRegistration, RegistrySettings, TuningOutput
from workflow_common.ml_parameters import ParameterFileError, parse_document
from workflow_common.models import CamelCaseModel
from workflow_common.service_errors import transient_errors_raised_as_unavailable

logger = Logger()
tracer = Tracer()
aws_client = AwsClients()

METRICS_FILE = "model-metrics.json"
# Content types the h2o-gbm-predictor answers (its README's contract).
CONTENT_TYPES = ["text/csv", "application/json"]
# CreateModelPackage's limits on CustomerMetadataProperties.
METADATA_MAX_ENTRIES = 50
METADATA_KEY_MAX_LENGTH = 128
METADATA_VALUE_MAX_LENGTH = 256
METADATA_FORBIDDEN = re.compile(r"[^\w\s.:/=+\-@]")
DESCRIPTION_MAX_LENGTH = 1024
# The metadata the workflow reads back: the model to deploy, how the version was approved.
MODEL_NAME_KEY = "modelName"
APPROVAL_KEY = "approval"


class InvalidRegistrationRequest(ValueError):
    """The state machine passed an input this function cannot use."""


class GateOutcome(CamelCaseModel):
    """The quality gate's decision as the parent keeps it (a run without a gate records ACCEPTED)."""

    status: Literal["ACCEPTED", "REJECTED"]
    reason: str


class RegistrationRequest(CamelCaseModel):
    run_id: str = Field(min_length=1)
    manifest: str = Field(min_length=1)
    registry: RegistrySettings
    model: TuningOutput
    gate_decision: GateOutcome


def approval_status(request: RegistrationRequest) -> ApprovalStatus:
    if request.gate_decision.status == "REJECTED":
        return "Rejected"
    return "Approved" if request.registry.model_approval == "Automatic" else "PendingManualApproval"


def metadata_text(value: str, max_length: int) -> str:
    """A key or value SageMaker accepts as customer metadata: its character set, within its length."""
    return METADATA_FORBIDDEN.sub("_", value)[:max_length]


def customer_metadata(request: RegistrationRequest) -> dict[str, str]:
    """Lineage first, then as many hyperparameters as SageMaker's 50 entries leave room for (all of them are
    in the metrics document)."""
    model = request.model
    lineage = {
        "runId": request.run_id,
        "manifest": request.manifest,
        "hyperParameterTuningJobName": model.hyper_parameter_tuning_job_name,
        "trainingJobName": model.training_job_name,
        MODEL_NAME_KEY: model.model_name,
        "objectiveMetric": model.objective.metric_name,
        "objectiveValue": repr(model.objective.value),
        APPROVAL_KEY: request.registry.model_approval,
        "qualityGate": request.gate_decision.status,
    }
    room = METADATA_MAX_ENTRIES - len(lineage)
    hyperparameters = {
        f"hyperparameter:{name}": value
        for name, value in sorted(model.hyper_parameters.items())
        if not name.startswith("_")  # SageMaker's own, e.g. the tuning objective
    }
    metadata = lineage | dict(list(hyperparameters.items())[:room])
    return {
        metadata_text(key, METADATA_KEY_MAX_LENGTH): metadata_text(value, METADATA_VALUE_MAX_LENGTH)
        for key, value in metadata.items()
        if value
    }


def model_quality(final_metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The training job's validation metrics (training's when it had no validation channel) in the
    model-quality statistics format SageMaker's registry shows: binary, multiclass or regression."""
    by_channel: dict[str, dict[str, float]] = {}
    for metric in final_metrics:
        channel, _, name = metric["MetricName"].partition(":")
        by_channel.setdefault(channel, {})[name] = metric["Value"]
    values = by_channel.get("validation") or by_channel.get("training") or {}
    if "auc" in values:
        kind = "binary_classification_metrics"
    elif "mean_per_class_error" in values:
        kind = "multiclass_classification_metrics"
    else:
        kind = "regression_metrics"
    return {
        kind: {name: {"value": value, "standard_deviation": "NaN"} for name, value in sorted(values.items())}
    }


def metrics_location(model_data_url: str) -> tuple[str, str]:
    """Beside the training job's output: s3://bucket/<path>/<job>/registry/model-metrics.json."""
    bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
    job_prefix = key.rsplit("/output/", 1)[0] if "/output/" in key else key.rsplit("/", 1)[0]
    return bucket, f"{job_prefix}/registry/{METRICS_FILE}"


def description(request: RegistrationRequest, status: ApprovalStatus) -> str:
    model = request.model
    text = (
        f"{model.objective.metric_name}={model.objective.value:.6g} from run {request.run_id} "
        f"(tuning job {model.hyper_parameter_tuning_job_name}, best training job {model.training_job_name})."
    )
    if status == "Rejected":
        text += f" Rejected by the quality gate: {request.gate_decision.reason}"
    return text[:DESCRIPTION_MAX_LENGTH]


@tracer.capture_method
def register_model(request: RegistrationRequest, sagemaker: Any, s3: Any) -> ModelRegistration:
    model = request.model
    training_job = sagemaker.describe_training_job(TrainingJobName=model.training_job_name)
    quality = model_quality(training_job.get("FinalMetricDataList", []))
    bucket, key = metrics_location(model.model_data_url)
    document = quality | {
        "hyperparameters": model.hyper_parameters,
        "trainingJobName": model.training_job_name,
    }
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document, indent=2), ContentType="application/json")
    status = approval_status(request)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=request.registry.model_package_group_name,
        ModelPackageDescription=description(request, status),
        InferenceSpecification={
            "Containers": [{"Image": model.inference_image, "ModelDataUrl": model.model_data_url}],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": CONTENT_TYPES,
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/{key}"}
            }
        },
        ModelApprovalStatus=status,
        CustomerMetadataProperties=customer_metadata(request),
        # One version per run, however often the state machine retries this call (36 characters at most).
        ClientToken=hashlib.sha256(
            f"{request.registry.model_package_group_name}/{request.run_id}".encode()
        ).hexdigest()[:36],
    )["ModelPackageArn"]
    version = sagemaker.describe_model_package(ModelPackageName=arn)["ModelPackageVersion"]
    registration = ModelRegistration(
        model_package_arn=arn, model_package_version=version, model_approval_status=status
    )
    logger.info("Model registered", extra={"registration": registration.model_dump()})
    return registration


def parse_request(event: Any) -> RegistrationRequest:
    try:
        return parse_document(RegistrationRequest, event, "model registration input")
    except ParameterFileError as error:
        raise InvalidRegistrationRequest(str(error)) from None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    with transient_errors_raised_as_unavailable():
        return register_model(request, aws_client("sagemaker"), aws_client("s3")).model_dump()
