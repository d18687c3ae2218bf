"""CloudFormation custom resource: when the stack is deleted with OnStackDelete=Delete, remove what its runs made.

The runs tag every SageMaker model, endpoint configuration and endpoint with ``h2o-sagemaker:stack`` = the
stack's name. On Delete this function finds the resources carrying this stack's value (and only those),
deregisters the endpoints' auto-scaling targets (which removes their scaling policies and alarms), then deletes
the endpoints, the endpoint configurations and the models. SageMaker deletes an endpoint asynchronously: the
stack does not wait for it to disappear (its instances stop within minutes). Create and Update only check the
settings; with OnStackDelete=Retain, Delete leaves everything in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field
from workflow_common.aws_clients import AwsClients
from workflow_common.custom_resource import Outcome, respond_within_deadline
from workflow_common.ml_parameters import parse_document
from workflow_common.service_errors import is_not_found

logger = Logger()
tracer = Tracer()
aws_client = AwsClients()

STACK_TAG = "h2o-sagemaker:stack"
PHYSICAL_ID_PREFIX = "sagemaker-teardown:"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


class TeardownSettings(BaseModel):
    """The custom resource's properties (besides CloudFormation's ServiceToken)."""

    model_config = ConfigDict(extra="ignore")

    OnStackDelete: Literal["Retain", "Delete"]
    OwnerStackName: str = Field(min_length=1, max_length=128)


class TaggedResources(BaseModel):
    endpoints: list[str] = []
    endpoint_configs: list[str] = []
    models: list[str] = []


# list operation, its result key, the name and ARN fields of each summary
_LISTINGS = {
    "endpoints": ("list_endpoints", "Endpoints", "EndpointName", "EndpointArn"),
    "endpoint_configs": (
        "list_endpoint_configs",
        "EndpointConfigs",
        "EndpointConfigName",
        "EndpointConfigArn",
    ),
    "models": ("list_models", "Models", "ModelName", "ModelArn"),
}


def _summaries(sagemaker: Any, operation: str, key: str) -> Iterator[dict[str, Any]]:
    for page in sagemaker.get_paginator(operation).paginate():
        yield from page[key]


def _owner(sagemaker: Any, arn: str) -> str | None:
    """The resource's h2o-sagemaker:stack tag; None when it has none or disappeared meanwhile."""
    try:
        for page in sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
            for tag in page["Tags"]:
                if tag["Key"] == STACK_TAG:
                    return str(tag["Value"])
    except ClientError as error:
        if not is_not_found(error):
            raise
    return None


def find_tagged(sagemaker: Any, owner: str) -> TaggedResources:
    found: dict[str, list[str]] = {}
    for kind, (operation, key, name_field, arn_field) in _LISTINGS.items():
        found[kind] = [
            summary[name_field]
            for summary in _summaries(sagemaker, operation, key)
            if _owner(sagemaker, summary[arn_field]) == owner
        ]
    return TaggedResources(**found)


def _delete_scaling_policies(autoscaling: Any, resource_id: str) -> None:
    paginator = autoscaling.get_paginator("describe_scaling_policies")
    pages = paginator.paginate(
        ServiceNamespace="sagemaker", ResourceId=resource_id, ScalableDimension=SCALABLE_DIMENSION
    )
    for policy in [policy for page in pages for policy in page["ScalingPolicies"]]:
        try:
            autoscaling.delete_scaling_policy(
                PolicyName=policy["PolicyName"],
                ServiceNamespace="sagemaker",
                ResourceId=resource_id,
                ScalableDimension=SCALABLE_DIMENSION,
            )
        except autoscaling.exceptions.ObjectNotFoundException:
            continue  # deleted meanwhile


def deregister_scaling(autoscaling: Any, endpoints: list[str]) -> list[str]:
    """Delete the scaling policies (and with them their alarms) and deregister the scalable target of every
    variant of the endpoints. Deregistering alone deletes the policies too on AWS; deleting them first does not
    rely on it."""
    names = set(endpoints)
    deregistered = []
    paginator = autoscaling.get_paginator("describe_scalable_targets")
    targets = [
        target
        for page in paginator.paginate(ServiceNamespace="sagemaker", ScalableDimension=SCALABLE_DIMENSION)
        for target in page["ScalableTargets"]
    ]
    for target in targets:
        parts = target["ResourceId"].split("/")  # endpoint/<name>/variant/<variant>
        if len(parts) == 4 and parts[0] == "endpoint" and parts[1] in names:
            _delete_scaling_policies(autoscaling, target["ResourceId"])
            try:
                autoscaling.deregister_scalable_target(
                    ServiceNamespace="sagemaker",
                    ResourceId=target["ResourceId"],
                    ScalableDimension=SCALABLE_DIMENSION,
                )
            except autoscaling.exceptions.ObjectNotFoundException:
                continue  # deregistered meanwhile
            deregistered.append(target["ResourceId"])
    return deregistered


def _delete_each(delete: Any, name_field: str, names: list[str]) -> None:
    for name in names:
        try:
            delete(**{name_field: name})
        except ClientError as error:
            if not is_not_found(error):
                raise


def tear_down(sagemaker: Any, autoscaling: Any, owner: str) -> dict[str, list[str]]:
    """Remove what the owner's runs made, scaling first (a target outlives its endpoint otherwise)."""
    found = find_tagged(sagemaker, owner)
    scaling = deregister_scaling(autoscaling, found.endpoints)
    _delete_each(sagemaker.delete_endpoint, "EndpointName", found.endpoints)
    _delete_each(sagemaker.delete_endpoint_config, "EndpointConfigName", found.endpoint_configs)
    _delete_each(sagemaker.delete_model, "ModelName", found.models)
    return {"scalableTargets": scaling, **found.model_dump()}


def handle_request(event: CloudFormationCustomResourceEvent, sagemaker: Any, autoscaling: Any) -> Outcome:
    properties = {key: value for key, value in event.resource_properties.items() if key != "ServiceToken"}
    if event.request_type == "Delete":
        # A resource whose Create failed never got our id: nothing was made under its settings.
        if not event.physical_resource_id.startswith(PHYSICAL_ID_PREFIX):
            return Outcome("SUCCESS", event.physical_resource_id)
        settings = parse_document(TeardownSettings, properties, "the teardown resource's properties")
        if settings.OnStackDelete == "Retain":
            logger.info("OnStackDelete is Retain: the runs' SageMaker resources are kept")
            return Outcome("SUCCESS", event.physical_resource_id)
        removed = tear_down(sagemaker, autoscaling, settings.OwnerStackName)
        logger.info("Removed the runs' SageMaker resources", extra={"removed": removed})
        return Outcome("SUCCESS", event.physical_resource_id)
    try:
        settings = parse_document(TeardownSettings, properties, "the teardown resource's properties")
    except ValueError as error:
        logger.error("Teardown settings rejected", extra={"reason": str(error)})
        return Outcome("FAILED", event.physical_resource_id or event.logical_resource_id, str(error))
    return Outcome("SUCCESS", f"{PHYSICAL_ID_PREFIX}{settings.OwnerStackName}")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    request = CloudFormationCustomResourceEvent(event)
    outcome = respond_within_deadline(
        event,
        context,
        lambda _: handle_request(request, aws_client("sagemaker"), aws_client("application-autoscaling")),
        on_error=lambda error: logger.exception("Teardown failed", exc_info=error),
    )
    return {"Status": outcome.status, "PhysicalResourceId": outcome.physical_resource_id}
