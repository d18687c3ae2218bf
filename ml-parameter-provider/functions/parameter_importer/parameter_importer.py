"""CloudFormation custom resource: import ml-parameters.json and hyperparameters.json from S3 into SSM.

Create and Update validate both files and (over)write them under the stack's Parameter Store path; Delete
removes only the parameters this stack created. The answer also tells the stack what it creates for the
endpoint from the files: the endpoint's name, its model package group's name and the thresholds of its
rollback alarms. Every request gets exactly one answer, SUCCESS or FAILED with
the reason, also when the function is about to time out, so a stack never hangs waiting for it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from workflow_common.custom_resource import Outcome, respond_within_deadline
from workflow_common.execution_input import unique_name
from workflow_common.ml_parameters import (
    Hyperparameters,
    MlParameters,
    ParameterFileError,
    check_algorithm_account,
    check_compatible,
    check_data_capture_bucket,
    decode_json,
    parse_document,
)
from workflow_common.parameter_store import delete_documents, normalise_path, write_documents
from workflow_common.sagemaker_names import RESOURCE_NAME_MAX_LENGTH

logger = Logger()
tracer = Tracer()

PHYSICAL_ID_PREFIX = "ssm-parameters:"


def read_source(s3: Any, bucket: str, key: str) -> Any:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise ParameterFileError(f"s3://{bucket}/{key} does not exist: upload it before deploying") from None
    return decode_json(body, key)


def model_package_group_name(endpoint_name: str, stack_id: str) -> str:
    """``<endpoint>-<digest of the stack id>``: one group per stack and endpoint. A stack deleted and created
    again gets a new id, so its group never collides with the one the earlier stack kept (groups are retained)."""
    return unique_name(
        endpoint_name, hashlib.sha256(stack_id.encode()).hexdigest()[:8], RESOURCE_NAME_MAX_LENGTH
    )


def endpoint_resources(ml_parameters: MlParameters, stack_id: str) -> dict[str, str]:
    """What the stack creates for the endpoint: answered as the custom resource's attributes (strings)."""
    alarms = ml_parameters.deployment.rollback_alarms
    return {
        "EndpointName": ml_parameters.endpoint_name,
        "ModelPackageGroupName": model_package_group_name(ml_parameters.endpoint_name, stack_id),
        "MaxErrorRate": repr(alarms.max_error_rate),
        # SageMaker reports ModelLatency in microseconds.
        "MaxModelLatencyMicroseconds": str(alarms.max_model_latency_milliseconds * 1000),
        "AlarmEvaluationPeriods": str(alarms.evaluation_periods),
    }


def import_documents(s3: Any, ssm: Any, properties: dict[str, Any], owner: str) -> Outcome:
    path = normalise_path(properties["ParameterStorePath"])
    bucket = properties["BucketName"]
    ml_key, hyper_key = properties["MlParametersKey"], properties["HyperparametersKey"]
    # Each file is validated as soon as it is read, to fail the deployment now rather than the first run.
    ml_document = read_source(s3, bucket, ml_key)
    ml_parameters = parse_document(MlParameters, ml_document, ml_key)
    hyper_document = read_source(s3, bucket, hyper_key)
    hyperparameters = parse_document(Hyperparameters, hyper_document, hyper_key)
    check_compatible(ml_parameters, hyperparameters, hyper_key)
    check_algorithm_account(ml_parameters, owner.split(":")[4])  # owner: the stack's ARN
    check_data_capture_bucket(ml_parameters, bucket)
    documents = {"ml-parameters": ml_document, "hyperparameters": hyper_document}
    names = write_documents(ssm, path, documents, owner)
    logger.info("Imported parameter files", extra={"parameters": names})
    return Outcome(
        "SUCCESS",
        f"{PHYSICAL_ID_PREFIX}{path}",
        data={"MlParametersName": names[0], "HyperparametersName": names[1]}
        | endpoint_resources(ml_parameters, owner),
    )


def remove_documents(ssm: Any, physical_resource_id: str, owner: str) -> Outcome:
    # A resource whose Create failed never got our id: there is nothing of ours to delete.
    if physical_resource_id.startswith(PHYSICAL_ID_PREFIX):
        path = physical_resource_id.removeprefix(PHYSICAL_ID_PREFIX)
        logger.info("Deleted parameters", extra={"parameters": delete_documents(ssm, path, owner)})
    return Outcome("SUCCESS", physical_resource_id)


def handle_request(event: CloudFormationCustomResourceEvent, s3: Any, ssm: Any) -> Outcome:
    if event.request_type == "Delete":
        return remove_documents(ssm, event.physical_resource_id, event.stack_id)
    try:
        return import_documents(s3, ssm, event.resource_properties, event.stack_id)
    except ValueError as error:  # ParameterFileError and pydantic's ValidationError both are
        logger.error("Parameter import rejected", extra={"reason": str(error)})
        return Outcome("FAILED", event.physical_resource_id or event.logical_resource_id, str(error))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    request = CloudFormationCustomResourceEvent(event)
    s3, ssm = boto3.client("s3"), boto3.client("ssm")
    outcome = respond_within_deadline(
        event,
        context,
        lambda _: handle_request(request, s3, ssm),
        on_error=lambda error: logger.exception("Parameter import failed", exc_info=error),
    )
    return {"Status": outcome.status, "PhysicalResourceId": outcome.physical_resource_id}
