"""Report a SageMaker endpoint's deployment state to the endpoint-deployment state machine.

Called before deploying (is the endpoint there, idle, how many instances does it run, which auto-scaling
targets would block the update, and what to register again if the update fails) and while polling the
deployment. It only reads; every change is made by the state machine. Situations a retry cannot fix raise a
named error that tells the user what to do; a blue/green update SageMaker rolled back is explained by the
rollback alarms that went into ALARM since the update began (SageMaker itself does not say which alarm tripped).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, model_validator
from workflow_common.aws_clients import AwsClients
from workflow_common.ml_parameters import ParameterFileError, parse_document
from workflow_common.sagemaker_names import RESOURCE_NAME_MAX_LENGTH
from workflow_common.service_errors import is_not_found, transient_errors_raised_as_unavailable

logger = Logger()
tracer = Tracer()

EndpointStatus = Literal[
    "NotFound",
    "OutOfService",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "InService",
    "Deleting",
    "Failed",
    "UpdateRollbackFailed",
]
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
aws_client = AwsClients()


class InvalidInspectionRequest(ValueError):
    """The state machine passed an input this function cannot use."""


class EndpointFailed(RuntimeError):
    """The endpoint is in a state only a person can resolve."""


# A rollback's message becomes the model version's ApprovalDescription, which SageMaker takes up to 1024 characters
# long with the endpoint's name (up to 63) and the time before it.
ROLLBACK_MESSAGE_MAX_LENGTH = 900


class EndpointUpdateRolledBack(RuntimeError):
    """SageMaker rolled the update back: the endpoint still serves its previous configuration."""


class EndpointDisappeared(RuntimeError):
    """The endpoint was deleted while this deployment waited for it."""


class EndpointKindChanged(RuntimeError):
    """The endpoint is serverless and the deployment is instance-based, or the other way round."""


class ScalingPolicyToRestore(BaseModel):
    """A target-tracking policy as PutScalingPolicy takes it back."""

    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)

    resource_id: str = Field(alias="ResourceId")
    policy_name: str = Field(alias="PolicyName")
    target_tracking_configuration: dict[str, Any] = Field(alias="TargetTrackingScalingPolicyConfiguration")


class ScalableTargetToRestore(BaseModel):
    """A scalable target as RegisterScalableTarget takes it back, with its target-tracking policies:
    deregistering a target deletes its policies."""

    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)

    resource_id: str = Field(alias="ResourceId")
    min_capacity: int = Field(alias="MinCapacity")
    max_capacity: int = Field(alias="MaxCapacity")
    suspended_state: dict[str, bool] = Field(alias="SuspendedState")
    scaling_policies: list[ScalingPolicyToRestore] = Field(alias="ScalingPolicies")


class RequestedVariant(BaseModel):
    """The variant the deployment makes: instances, or serverless (SageMaker's ProductionVariant fields)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    variant_name: str = Field(alias="VariantName", min_length=1, max_length=RESOURCE_NAME_MAX_LENGTH)
    instance_type: str | None = Field(default=None, alias="InstanceType", min_length=1)
    initial_instance_count: int | None = Field(default=None, alias="InitialInstanceCount", ge=1)
    serverless_config: dict[str, Any] | None = Field(default=None, alias="ServerlessConfig")

    @model_validator(mode="after")
    def _instances_or_serverless(self) -> RequestedVariant:
        instances = self.instance_type is not None and self.initial_instance_count is not None
        if instances == (self.serverless_config is not None):
            raise ValueError("give InstanceType and InitialInstanceCount, or ServerlessConfig")
        return self


class InspectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_name: str = Field(alias="endpointName", min_length=1, max_length=RESOURCE_NAME_MAX_LENGTH)
    variant: RequestedVariant
    # Set while polling a deployment: the configuration the endpoint must end up serving.
    expected_endpoint_config_name: str | None = Field(default=None, alias="expectedEndpointConfigName")
    # Set while polling an update: its DeploymentConfig (the rollback alarms) and when it began.
    deployment_config: dict[str, Any] | None = Field(default=None, alias="deploymentConfig")
    deployment_started_at: datetime | None = Field(default=None, alias="deploymentStartedAt")
    # What earlier inspections of this run recorded before their targets were deregistered: an inspection
    # after the detach no longer sees those targets.
    auto_scaling_to_restore: list[ScalableTargetToRestore] = Field(default=[], alias="autoScalingToRestore")

    @property
    def variant_name(self) -> str:
        return self.variant.variant_name

    @property
    def serverless(self) -> bool:
        return self.variant.serverless_config is not None

    @property
    def rollback_alarm_names(self) -> list[str]:
        alarms = (self.deployment_config or {}).get("AutoRollbackConfiguration", {}).get("Alarms", [])
        return [alarm["AlarmName"] for alarm in alarms if alarm.get("AlarmName")]


class Inspection(BaseModel):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True)

    exists: bool
    status: EndpointStatus
    failure_reason: str | None = Field(alias="failureReason")
    endpoint_arn: str | None = Field(alias="endpointArn")
    endpoint_config_name: str | None = Field(alias="endpointConfigName")
    instance_count: int | None = Field(alias="instanceCount")  # None: serverless
    scalable_target_registered: bool = Field(alias="scalableTargetRegistered")
    scalable_targets_to_deregister: list[str] = Field(alias="scalableTargetsToDeregister")
    # Every target this run deregistered or is about to, as it was: registered again if the update fails.
    auto_scaling_to_restore: list[ScalableTargetToRestore] = Field(alias="autoScalingToRestore")


def resource_id(endpoint_name: str, variant_name: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def describe_endpoint(sagemaker: Any, endpoint_name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when (and only when) SageMaker says the endpoint does not exist."""
    try:
        return sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def deployed_variants(sagemaker: Any, endpoint_config_name: str) -> list[dict[str, Any]] | None:
    """The variants of the configuration the endpoint serves; None if that config was deleted."""
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint_config_name)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise
    return list(config["ProductionVariants"])


def instance_types(variants: list[dict[str, Any]] | None) -> dict[str, str] | None:
    """Instance type per variant (serverless variants have none); None when the variants are unknown."""
    if variants is None:
        return None
    return {
        variant["VariantName"]: variant["InstanceType"] for variant in variants if "InstanceType" in variant
    }


def check_same_kind(request: InspectionRequest, variants: list[dict[str, Any]] | None) -> None:
    """SageMaker refuses to update an instance-based endpoint to serverless
    (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-create-invoke-update-delete.html);
    the other way round is a one-way change this workflow does not make either."""
    if not variants:
        return
    deployed_serverless = any("ServerlessConfig" in variant for variant in variants)
    if deployed_serverless == request.serverless:
        return
    name = request.endpoint_name
    kinds = ("serverless", "instance-based") if deployed_serverless else ("instance-based", "serverless")
    raise EndpointKindChanged(
        f"Endpoint {name} is {kinds[0]} and this deployment is {kinds[1]}: an endpoint keeps its kind. Deploy to "
        f"another endpointName, or delete the endpoint (aws sagemaker delete-endpoint --endpoint-name {name}) "
        "and deploy again."
    )


def registered_targets(autoscaling: Any, resource_ids: list[str]) -> dict[str, dict[str, Any]]:
    """DescribeScalableTargets' answer for each of these resources that is registered."""
    paginator = autoscaling.get_paginator("describe_scalable_targets")
    return {
        target["ResourceId"]: target
        for page in paginator.paginate(
            ServiceNamespace="sagemaker", ResourceIds=resource_ids, ScalableDimension=SCALABLE_DIMENSION
        )
        for target in page["ScalableTargets"]
    }


def target_tracking_policies(autoscaling: Any, resource_id: str) -> list[ScalingPolicyToRestore]:
    """The target's target-tracking policies. Step scaling policies are left out: their CloudWatch alarms
    invoke them by ARN, which a policy made again does not keep."""
    paginator = autoscaling.get_paginator("describe_scaling_policies")
    return [
        ScalingPolicyToRestore(
            ResourceId=resource_id,
            PolicyName=policy["PolicyName"],
            TargetTrackingScalingPolicyConfiguration=policy["TargetTrackingScalingPolicyConfiguration"],
        )
        for page in paginator.paginate(
            ServiceNamespace="sagemaker", ResourceId=resource_id, ScalableDimension=SCALABLE_DIMENSION
        )
        for policy in page["ScalingPolicies"]
        if policy["PolicyType"] == "TargetTrackingScaling" and policy["ResourceId"] == resource_id
    ]


def to_restore(autoscaling: Any, target: dict[str, Any]) -> ScalableTargetToRestore:
    suspended = target.get("SuspendedState", {})
    return ScalableTargetToRestore(
        ResourceId=target["ResourceId"],
        MinCapacity=target["MinCapacity"],
        MaxCapacity=target["MaxCapacity"],
        SuspendedState={
            flag: bool(suspended.get(flag))
            for flag in (
                "DynamicScalingInSuspended",
                "DynamicScalingOutSuspended",
                "ScheduledScalingSuspended",
            )
        },
        ScalingPolicies=target_tracking_policies(autoscaling, target["ResourceId"]),
    )


def current_instance_count(variants: list[dict[str, Any]], request: InspectionRequest) -> int | None:
    """The capacity the new configuration must start with so that deploying never scales the endpoint in.

    The requested variant's own count if it exists; otherwise the sum over the variants being replaced,
    whose traffic all moves to the requested one. None for a serverless deployment: it has no instances.
    """
    if request.serverless:
        return None

    def count(variant: dict[str, Any]) -> int:
        return int(variant.get("CurrentInstanceCount") or variant.get("DesiredInstanceCount") or 0)

    same_variant = [variant for variant in variants if variant["VariantName"] == request.variant_name]
    total = sum(count(variant) for variant in same_variant or variants)
    return total or request.variant.initial_instance_count


def targets_blocking_update(
    registered: Iterable[str], instance_types: dict[str, str] | None, request: InspectionRequest
) -> list[str]:
    """Auto-scaling targets SageMaker would refuse to update: a removed variant or a changed instance type.

    When the served configuration was deleted its instance types are unknown, so every target is detached.
    """
    blocking = []
    for target in sorted(registered):
        variant_name = target.rsplit("/", 1)[-1]
        kept_as_is = (
            variant_name == request.variant_name
            and instance_types is not None
            and instance_types.get(variant_name) == request.variant.instance_type
        )
        if not kept_as_is:
            blocking.append(target)
    return blocking


def created_later(sagemaker: Any, config_name: str, than_config_name: str) -> bool:
    """Whether ``config_name`` was created after ``than_config_name`` (False if either is gone)."""
    try:
        created = [
            sagemaker.describe_endpoint_config(EndpointConfigName=name)["CreationTime"]
            for name in (config_name, than_config_name)
        ]
    except ClientError:
        return False
    return created[0] > created[1]


def fired_alarms(cloudwatch: Any, request: InspectionRequest) -> list[str]:
    """'<alarm> (<reason>)' for each rollback alarm that went into ALARM since the deployment began."""
    fired = []
    for name in request.rollback_alarm_names:
        history = cloudwatch.describe_alarm_history(
            AlarmName=name,
            HistoryItemType="StateUpdate",
            **({"StartDate": request.deployment_started_at} if request.deployment_started_at else {}),
        )["AlarmHistoryItems"]
        reasons = [
            data.get("newState", {}).get("stateReason", item.get("HistorySummary", ""))
            for item in history
            for data in [json.loads(item.get("HistoryData") or "{}")]
            if data.get("newState", {}).get("stateValue") == "ALARM"
        ]
        if reasons:
            fired.append(f"{name} ({reasons[-1]})")
    return fired


def check_deployment_outcome(
    request: InspectionRequest,
    inspection: Inspection,
    superseded: bool = False,
    alarms: list[str] | None = None,
) -> None:
    """Raise when the state seen cannot lead to a working deployment (retrying would not help).

    ``superseded``: the endpoint serves a configuration created after ours, i.e. a later run updated it after
    our update: ours was deployed, not rolled back."""
    name = request.endpoint_name
    reason = inspection.failure_reason or "SageMaker gave no reason"
    if inspection.status == "Failed":
        raise EndpointFailed(
            f"Endpoint {name} is Failed: {reason}. SageMaker only allows deleting a failed endpoint: fix the "
            f"cause, delete it (aws sagemaker delete-endpoint --endpoint-name {name}) and start the run again."
        )
    expected = request.expected_endpoint_config_name
    if expected is None:
        return
    if inspection.status == "UpdateRollbackFailed":
        raise EndpointFailed(
            f"Endpoint {name} is UpdateRollbackFailed: {reason}. It serves a mix of the old and new "
            "configurations; start the run again to deploy a new configuration, or update it by hand."
        )
    if not inspection.exists:
        raise EndpointDisappeared(f"Endpoint {name} was deleted while deploying configuration {expected}.")
    if inspection.status == "InService" and inspection.endpoint_config_name != expected and not superseded:
        cause = (
            f"rollback alarm {' and '.join(alarms)} fired"
            if alarms
            else f"{reason}; no rollback alarm went into ALARM during the update (a failed new fleet, or "
            "MaximumExecutionTimeoutInSeconds reached)"
        )
        message = (
            f"SageMaker rolled back the update of endpoint {name} to configuration {expected}: {cause}. "
            f"The endpoint still serves {inspection.endpoint_config_name}."
        )
        if len(message) > ROLLBACK_MESSAGE_MAX_LENGTH:  # the alarms' reasons and SageMaker's are unbounded
            kept = len(cause) - (len(message) - ROLLBACK_MESSAGE_MAX_LENGTH) - 1
            message = message.replace(cause, cause[:kept] + "…")
        raise EndpointUpdateRolledBack(message)


@tracer.capture_method
def inspect_endpoint(
    request: InspectionRequest, sagemaker: Any, autoscaling: Any, cloudwatch: Any | None = None
) -> Inspection:
    endpoint = describe_endpoint(sagemaker, request.endpoint_name)
    served: list[dict[str, Any]] | None = None  # the variants of the configuration it serves, when read
    if endpoint is None:
        inspection = Inspection(
            exists=False,
            status="NotFound",
            failureReason=None,
            endpointArn=None,
            endpointConfigName=None,
            instanceCount=request.variant.initial_instance_count,
            scalableTargetRegistered=False,
            scalableTargetsToDeregister=[],
            autoScalingToRestore=[],  # deleting an endpoint deregisters its targets: nothing to restore
        )
    else:
        variants = endpoint.get("ProductionVariants", [])
        candidate_targets = sorted(
            {resource_id(request.endpoint_name, variant["VariantName"]) for variant in variants}
            | {resource_id(request.endpoint_name, request.variant_name)}
        )
        registered = registered_targets(autoscaling, candidate_targets)
        served = deployed_variants(sagemaker, endpoint["EndpointConfigName"]) if registered else None
        blocking = targets_blocking_update(registered, instance_types(served), request) if registered else []
        recorded = {target.resource_id for target in request.auto_scaling_to_restore}
        inspection = Inspection(
            exists=True,
            status=endpoint["EndpointStatus"],
            failureReason=endpoint.get("FailureReason"),
            endpointArn=endpoint["EndpointArn"],
            endpointConfigName=endpoint["EndpointConfigName"],
            instanceCount=current_instance_count(variants, request),
            scalableTargetRegistered=resource_id(request.endpoint_name, request.variant_name) in registered,
            scalableTargetsToDeregister=blocking,
            autoScalingToRestore=[
                *request.auto_scaling_to_restore,
                *(
                    to_restore(autoscaling, registered[target])
                    for target in blocking
                    if target not in recorded
                ),
            ],
        )
    logger.info("Endpoint inspected", extra={"inspection": inspection.model_dump()})
    expected = request.expected_endpoint_config_name
    superseded = (
        inspection.status == "InService"
        and expected is not None
        and inspection.endpoint_config_name not in (None, expected)
        and created_later(sagemaker, inspection.endpoint_config_name, expected)
    )
    rolled_back = (
        inspection.status == "InService"
        and expected is not None
        and inspection.endpoint_config_name != expected
        and not superseded
    )
    alarms = fired_alarms(cloudwatch, request) if rolled_back and cloudwatch is not None else []
    check_deployment_outcome(request, inspection, superseded, alarms)
    if expected is None and inspection.endpoint_config_name is not None:  # before deploying to it
        check_same_kind(request, served or deployed_variants(sagemaker, inspection.endpoint_config_name))
    return inspection


def parse_request(event: Any) -> InspectionRequest:
    try:
        return parse_document(InspectionRequest, event, "endpoint inspection input")
    except ParameterFileError as error:
        raise InvalidInspectionRequest(str(error)) from None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event)
    with transient_errors_raised_as_unavailable():
        return inspect_endpoint(
            request, aws_client("sagemaker"), aws_client("application-autoscaling"), aws_client("cloudwatch")
        ).model_dump()
