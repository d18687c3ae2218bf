"""The endpoint inspector against moto (real describe calls) and botocore stubs (statuses moto cannot reach)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import endpoint_inspector
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from endpoint_inspector import (
    ROLLBACK_MESSAGE_MAX_LENGTH,
    EndpointDisappeared,
    EndpointFailed,
    EndpointKindChanged,
    EndpointUpdateRolledBack,
    InspectionRequest,
    InvalidInspectionRequest,
    inspect_endpoint,
)
from moto import mock_aws
from workflow_common.aws_clients import AwsClients

ENDPOINT = "survival-endpoint"
ENDPOINT_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"
NEW_CONFIG = "survival-endpoint-11222100-a3f9"
OLD_CONFIG = "survival-endpoint-11211500-77b0"
TARGET = f"endpoint/{ENDPOINT}/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


INSTANCES = {"VariantName": "AllTraffic", "InstanceType": "ml.c5.2xlarge", "InitialInstanceCount": 1}
SERVERLESS = {"VariantName": "AllTraffic", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}


def request(count: int = 1, **changes: Any) -> InspectionRequest:
    """A request for an instance-based variant of ``count`` instances (``variant`` in changes: another)."""
    event = {"endpointName": ENDPOINT, "variant": INSTANCES | {"InitialInstanceCount": count}}
    return InspectionRequest.model_validate(event | changes)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model(
            ModelName="survival-model",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1"},
        )
        yield {"sagemaker": sagemaker, "autoscaling": boto3.client("application-autoscaling")}


def deploy(aws: dict[str, Any], variants: dict[str, tuple[str, int]], config: str = OLD_CONFIG) -> None:
    """An endpoint serving ``config`` with variants {name: (instance type, count)}."""
    aws["sagemaker"].create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": name,
                "ModelName": "survival-model",
                "InstanceType": instance_type,
                "InitialInstanceCount": count,
            }
            for name, (instance_type, count) in variants.items()
        ],
    )
    aws["sagemaker"].create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)


def register(aws: dict[str, Any], variant: str = "AllTraffic") -> None:
    aws["autoscaling"].register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{ENDPOINT}/variant/{variant}",
        ScalableDimension=DIMENSION,
        MinCapacity=1,
        MaxCapacity=4,
    )


def inspect(aws: dict[str, Any], count: int = 1, **changes: Any) -> dict[str, Any]:
    return inspect_endpoint(request(count, **changes), aws["sagemaker"], aws["autoscaling"]).model_dump()


def test_a_missing_endpoint_is_reported_with_the_requested_capacity(aws: dict[str, Any]) -> None:
    assert inspect(aws, count=2) == {
        "exists": False,
        "status": "NotFound",
        "failureReason": None,
        "endpointArn": None,
        "endpointConfigName": None,
        "instanceCount": 2,
        "scalableTargetRegistered": False,
        "scalableTargetsToDeregister": [],
        "autoScalingToRestore": [],
    }


def test_an_existing_endpoint_keeps_its_current_capacity(aws: dict[str, Any]) -> None:
    deploy(aws, {"AllTraffic": ("ml.c5.2xlarge", 3)})

    inspection = inspect(aws, count=1)

    assert inspection["exists"] is True
    assert inspection["status"] == "InService"
    assert inspection["endpointArn"] == ENDPOINT_ARN
    assert inspection["endpointConfigName"] == OLD_CONFIG
    assert inspection["instanceCount"] == 3
    assert inspection["scalableTargetRegistered"] is False


def test_auto_scaling_stays_attached_when_the_update_only_changes_the_model(aws: dict[str, Any]) -> None:
    deploy(aws, {"AllTraffic": ("ml.c5.2xlarge", 2)})
    register(aws)

    inspection = inspect(aws)

    assert inspection["scalableTargetRegistered"] is True
    assert inspection["scalableTargetsToDeregister"] == []
    assert inspection["autoScalingToRestore"] == []


def test_a_new_instance_type_detaches_auto_scaling_first(aws: dict[str, Any]) -> None:
    deploy(aws, {"AllTraffic": ("ml.m5.large", 2)})
    register(aws)

    inspection = inspect(aws)

    assert inspection["scalableTargetsToDeregister"] == [TARGET]
    assert inspection["instanceCount"] == 2


TARGET_TRACKING = {
    "TargetValue": 70.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    "ScaleInCooldown": 300,
    "ScaleOutCooldown": 60,
}


def put_policies(aws: dict[str, Any]) -> None:
    """A target-tracking policy and a step scaling one on the endpoint's variant."""
    step = {
        "AdjustmentType": "ChangeInCapacity",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    }
    for name, kind, configuration in (
        ("invocations-per-instance", "TargetTrackingScaling", TARGET_TRACKING),
        ("step", "StepScaling", step),
    ):
        aws["autoscaling"].put_scaling_policy(
            PolicyName=name,
            ServiceNamespace="sagemaker",
            ResourceId=TARGET,
            ScalableDimension=DIMENSION,
            PolicyType=kind,
            **{f"{kind}PolicyConfiguration": configuration},
        )


RESTORED_TARGET = {
    "ResourceId": TARGET,
    "MinCapacity": 1,
    "MaxCapacity": 4,
    "SuspendedState": {
        "DynamicScalingInSuspended": False,
        "DynamicScalingOutSuspended": False,
        "ScheduledScalingSuspended": False,
    },
    "ScalingPolicies": [
        {
            "ResourceId": TARGET,
            "PolicyName": "invocations-per-instance",
            "TargetTrackingScalingPolicyConfiguration": TARGET_TRACKING,
        }
    ],
}


def test_a_detached_target_is_recorded_as_registered_with_its_target_tracking_policies(
    aws: dict[str, Any],
) -> None:
    deploy(aws, {"AllTraffic": ("ml.m5.large", 2)})
    register(aws)
    put_policies(aws)

    inspection = inspect(aws)

    assert inspection["autoScalingToRestore"] == [RESTORED_TARGET]
    # The record is valid input to the next inspection (the state machine passes it back).
    assert request(autoScalingToRestore=inspection["autoScalingToRestore"]).auto_scaling_to_restore


def test_the_record_outlives_the_detach_and_is_not_doubled(aws: dict[str, Any]) -> None:
    """An endpoint found busy after the detach is inspected again: its targets are gone, the record stays."""
    deploy(aws, {"AllTraffic": ("ml.m5.large", 2)})
    register(aws)
    put_policies(aws)
    first = inspect(aws)["autoScalingToRestore"]

    assert inspect(aws, autoScalingToRestore=first)["autoScalingToRestore"] == first
    aws["autoscaling"].deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=TARGET, ScalableDimension=DIMENSION
    )
    again = inspect(aws, autoScalingToRestore=first)
    assert again["scalableTargetsToDeregister"] == []
    assert again["autoScalingToRestore"] == first


def test_nothing_is_restored_on_an_endpoint_that_is_gone(aws: dict[str, Any]) -> None:
    assert inspect(aws, autoScalingToRestore=[RESTORED_TARGET])["autoScalingToRestore"] == []


def test_replaced_variants_are_detached_and_their_capacity_carried_over(aws: dict[str, Any]) -> None:
    deploy(aws, {"Blue": ("ml.c5.2xlarge", 2), "Green": ("ml.c5.2xlarge", 1)})
    register(aws, "Blue")

    inspection = inspect(aws)

    assert inspection["scalableTargetsToDeregister"] == [f"endpoint/{ENDPOINT}/variant/Blue"]
    assert inspection["scalableTargetRegistered"] is False
    assert inspection["instanceCount"] == 3


def test_targets_of_other_endpoints_are_left_alone(aws: dict[str, Any]) -> None:
    deploy(aws, {"AllTraffic": ("ml.m5.large", 1)})
    aws["autoscaling"].register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/other-endpoint/variant/AllTraffic",
        ScalableDimension=DIMENSION,
        MinCapacity=1,
        MaxCapacity=2,
    )

    assert inspect(aws)["scalableTargetsToDeregister"] == []


def test_a_deleted_served_configuration_detaches_every_target(aws: dict[str, Any]) -> None:
    deploy(aws, {"AllTraffic": ("ml.c5.2xlarge", 2)})
    register(aws)
    aws["sagemaker"].delete_endpoint_config(EndpointConfigName=OLD_CONFIG)

    assert inspect(aws)["scalableTargetsToDeregister"] == [TARGET]


def deploy_serverless(aws: dict[str, Any], config: str = OLD_CONFIG) -> None:
    aws["sagemaker"].create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[SERVERLESS | {"ModelName": "survival-model"}],
    )
    aws["sagemaker"].create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)


def test_a_serverless_deployment_has_no_instance_count_and_no_target_to_detach(aws: dict[str, Any]) -> None:
    assert inspect(aws, variant=SERVERLESS)["instanceCount"] is None
    deploy_serverless(aws)

    inspection = inspect(aws, variant=SERVERLESS)

    assert (inspection["exists"], inspection["instanceCount"]) == (True, None)
    assert (inspection["scalableTargetsToDeregister"], inspection["autoScalingToRestore"]) == ([], [])


def test_an_endpoint_keeps_its_kind_naming_what_to_do(aws: dict[str, Any]) -> None:
    deploy(aws, {"AllTraffic": ("ml.c5.2xlarge", 1)})
    with pytest.raises(
        EndpointKindChanged, match=r"is instance-based and this deployment is serverless.*delete-endpoint"
    ):
        inspect(aws, variant=SERVERLESS)
    aws["sagemaker"].delete_endpoint(EndpointName=ENDPOINT)
    deploy_serverless(aws, NEW_CONFIG)
    with pytest.raises(EndpointKindChanged, match="is serverless and this deployment is instance-based"):
        inspect(aws)
    # Polling a deployment does not ask again: the kind was checked before it began.
    assert inspect(aws, expectedEndpointConfigName=NEW_CONFIG)["status"] == "InService"


def test_the_handler_validates_its_input_and_returns_json(
    aws: dict[str, Any], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoint_inspector, "aws_client", AwsClients())
    deploy(aws, {"AllTraffic": ("ml.c5.2xlarge", 2)})
    event = {"endpointName": ENDPOINT, "variant": INSTANCES, "expectedEndpointConfigName": OLD_CONFIG}

    result = endpoint_inspector.lambda_handler(event, lambda_context)

    assert result["status"] == "InService"
    assert result["instanceCount"] == 2


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"variant": INSTANCES}, "endpointName"),
        (
            {"endpointName": ENDPOINT, "variant": INSTANCES | {"InitialInstanceCount": 0}},
            "InitialInstanceCount",
        ),
        ({"endpointName": ENDPOINT, "variant": INSTANCES | SERVERLESS}, "or ServerlessConfig"),
        ({"endpointName": ENDPOINT, "variant": {"VariantName": "AllTraffic"}}, "or ServerlessConfig"),
        ("not an object", "endpoint inspection input"),
    ],
)
def test_bad_input_is_named(event: Any, message: str, lambda_context: Any) -> None:
    with pytest.raises(InvalidInspectionRequest, match=message):
        endpoint_inspector.lambda_handler(event, lambda_context)


# Statuses moto never reaches, and AWS errors, come from stubbed clients.


@pytest.fixture
def stubbed() -> Iterator[dict[str, Any]]:
    sagemaker = boto3.client("sagemaker")
    autoscaling = boto3.client("application-autoscaling")
    with Stubber(sagemaker) as sagemaker_stub, Stubber(autoscaling) as autoscaling_stub:
        yield {
            "sagemaker": sagemaker,
            "autoscaling": autoscaling,
            "sagemaker_stub": sagemaker_stub,
            "autoscaling_stub": autoscaling_stub,
        }
        sagemaker_stub.assert_no_pending_responses()
        autoscaling_stub.assert_no_pending_responses()


def described(
    stubbed: dict[str, Any], status: str, config: str = OLD_CONFIG, reason: str | None = None
) -> None:
    """DescribeEndpoint answers ``status``; no auto-scaling target is registered."""
    response: dict[str, Any] = {
        "EndpointName": ENDPOINT,
        "EndpointArn": ENDPOINT_ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": "2026-11-22T21:00:00Z",
        "LastModifiedTime": "2026-11-22T21:05:00Z",
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "CurrentInstanceCount": 2, "DesiredInstanceCount": 2}
        ],
    }
    if reason:
        response["FailureReason"] = reason
    stubbed["sagemaker_stub"].add_response("describe_endpoint", response, {"EndpointName": ENDPOINT})
    stubbed["autoscaling_stub"].add_response("describe_scalable_targets", {"ScalableTargets": []})


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"])
def test_busy_statuses_are_reported_for_the_state_machine_to_wait(
    stubbed: dict[str, Any], status: str
) -> None:
    described(stubbed, status)
    assert inspect(stubbed, expectedEndpointConfigName=NEW_CONFIG)["status"] == status


def test_a_failed_endpoint_stops_the_run_and_says_what_to_do(stubbed: dict[str, Any]) -> None:
    described(stubbed, "Failed", reason="Image not found")
    with pytest.raises(
        EndpointFailed, match=r"Image not found.*delete-endpoint --endpoint-name survival-endpoint"
    ):
        inspect(stubbed)


def test_an_update_rollback_failure_is_repaired_by_deploying_again(stubbed: dict[str, Any]) -> None:
    described(stubbed, "UpdateRollbackFailed", reason="rollback failed")
    stubbed["sagemaker_stub"].add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": OLD_CONFIG,
            "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{OLD_CONFIG}",
            "ProductionVariants": [INSTANCES | {"ModelName": "model"}],
            "CreationTime": "2026-11-22T21:00:00Z",
        },
        {"EndpointConfigName": OLD_CONFIG},
    )
    assert inspect(stubbed)["status"] == "UpdateRollbackFailed"


def test_an_update_rollback_failure_during_the_deployment_fails_it(stubbed: dict[str, Any]) -> None:
    described(stubbed, "UpdateRollbackFailed", config=NEW_CONFIG, reason="rollback failed")
    with pytest.raises(EndpointFailed, match="rollback failed"):
        inspect(stubbed, expectedEndpointConfigName=NEW_CONFIG)


def configs_created(stubbed: dict[str, Any], served_at: str, expected_at: str) -> None:
    """DescribeEndpointConfig of the served, then of the expected configuration."""
    for name, created in ((OLD_CONFIG, served_at), (NEW_CONFIG, expected_at)):
        stubbed["sagemaker_stub"].add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": name,
                "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}",
                "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "model"}],
                "CreationTime": created,
            },
            {"EndpointConfigName": name},
        )


def test_a_rolled_back_update_is_a_failure_not_a_success(stubbed: dict[str, Any]) -> None:
    described(stubbed, "InService", config=OLD_CONFIG, reason="health check failed")
    configs_created(stubbed, served_at="2026-11-22T21:00:00Z", expected_at="2026-11-22T21:10:00Z")
    with pytest.raises(EndpointUpdateRolledBack, match=f"health check failed.*still serves {OLD_CONFIG}"):
        inspect(stubbed, expectedEndpointConfigName=NEW_CONFIG)


ROLLBACK_ALARMS = ["stack-survival-endpoint-invocation-5xx-errors", "stack-survival-endpoint-model-latency"]
UPDATE_STARTED = "2026-11-22T21:10:05Z"


def state_update(old: str, new: str, reason: str, at: str) -> dict[str, Any]:
    """A DescribeAlarmHistory item as CloudWatch writes it."""
    return {
        "AlarmName": ROLLBACK_ALARMS[0],
        "AlarmType": "MetricAlarm",
        "Timestamp": at,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from {old} to {new}",
        "HistoryData": json.dumps(
            {
                "version": "1.0",
                "oldState": {"stateValue": old},
                "newState": {"stateValue": new, "stateReason": reason},
            }
        ),
    }


def test_a_rolled_back_update_names_the_rollback_alarms_that_fired_since_it_began(
    stubbed: dict[str, Any],
) -> None:
    described(stubbed, "InService", config=OLD_CONFIG)
    configs_created(stubbed, served_at="2026-11-22T21:00:00Z", expected_at="2026-11-22T21:10:00Z")
    cloudwatch = boto3.client("cloudwatch")
    reason = (
        "Threshold Crossed: 1 datapoint [0.25 (22/11/26 21:10:40)] was greater than the threshold (0.01)."
    )
    with Stubber(cloudwatch) as cloudwatch_stub:
        for name, items in (
            (ROLLBACK_ALARMS[0], [state_update("OK", "ALARM", reason, "2026-11-22T21:10:41Z")]),
            (ROLLBACK_ALARMS[1], []),  # the latency alarm stayed OK
        ):
            cloudwatch_stub.add_response(
                "describe_alarm_history",
                {"AlarmHistoryItems": items},
                {"AlarmName": name, "HistoryItemType": "StateUpdate", "StartDate": ANY},
            )
        config = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in ROLLBACK_ALARMS]}}
        with pytest.raises(EndpointUpdateRolledBack) as rolled_back:
            inspect_endpoint(
                request(
                    expectedEndpointConfigName=NEW_CONFIG,
                    deploymentConfig=config,
                    deploymentStartedAt=UPDATE_STARTED,
                ),
                stubbed["sagemaker"],
                stubbed["autoscaling"],
                cloudwatch,
            )
        cloudwatch_stub.assert_no_pending_responses()
    assert str(rolled_back.value) == (
        f"SageMaker rolled back the update of endpoint {ENDPOINT} to configuration {NEW_CONFIG}: rollback alarm "
        f"{ROLLBACK_ALARMS[0]} ({reason}) fired. The endpoint still serves {OLD_CONFIG}."
    )


def test_a_rollback_message_fits_the_versions_approval_description(stubbed: dict[str, Any]) -> None:
    """It becomes the ApprovalDescription (1024 characters at most, the endpoint and the time before it)."""
    long_reason = "Failed to start the new fleet: " + "health check failed; " * 80
    described(stubbed, "InService", config=OLD_CONFIG, reason=long_reason)
    configs_created(stubbed, served_at="2026-11-22T21:00:00Z", expected_at="2026-11-22T21:10:00Z")
    with pytest.raises(EndpointUpdateRolledBack) as rolled_back:
        inspect(stubbed, expectedEndpointConfigName=NEW_CONFIG)
    message = str(rolled_back.value)
    assert len(message) == ROLLBACK_MESSAGE_MAX_LENGTH
    assert message.startswith(
        f"SageMaker rolled back the update of endpoint {ENDPOINT} to configuration {NEW_CONFIG}"
    )
    assert message.endswith(f"…. The endpoint still serves {OLD_CONFIG}.")


def test_a_rollback_no_alarm_explains_says_so(stubbed: dict[str, Any]) -> None:
    described(stubbed, "InService", config=OLD_CONFIG)
    configs_created(stubbed, served_at="2026-11-22T21:00:00Z", expected_at="2026-11-22T21:10:00Z")
    cloudwatch = boto3.client("cloudwatch")
    with Stubber(cloudwatch) as cloudwatch_stub:
        cloudwatch_stub.add_response(
            "describe_alarm_history",
            {
                "AlarmHistoryItems": [
                    state_update("INSUFFICIENT_DATA", "OK", "no data", "2026-11-22T21:10:20Z")
                ]
            },
        )
        config = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ROLLBACK_ALARMS[0]}]}}
        with pytest.raises(
            EndpointUpdateRolledBack, match="no rollback alarm went into ALARM during the update"
        ):
            inspect_endpoint(
                request(expectedEndpointConfigName=NEW_CONFIG, deploymentConfig=config),
                stubbed["sagemaker"],
                stubbed["autoscaling"],
                cloudwatch,
            )


def test_an_update_superseded_by_a_later_run_is_a_success(stubbed: dict[str, Any]) -> None:
    # Our update finished, then a later run updated the endpoint to its newer configuration.
    described(stubbed, "InService", config=OLD_CONFIG)
    configs_created(stubbed, served_at="2026-11-22T21:20:00Z", expected_at="2026-11-22T21:10:00Z")
    assert inspect(stubbed, expectedEndpointConfigName=NEW_CONFIG)["status"] == "InService"


def test_the_deployed_configuration_in_service_is_a_success(stubbed: dict[str, Any]) -> None:
    described(stubbed, "InService", config=NEW_CONFIG)
    inspection = inspect(stubbed, expectedEndpointConfigName=NEW_CONFIG)
    assert (inspection["status"], inspection["instanceCount"]) == ("InService", 2)


def test_an_endpoint_deleted_during_the_deployment_fails_it(stubbed: dict[str, Any]) -> None:
    stubbed["sagemaker_stub"].add_client_error(
        "describe_endpoint", "ValidationException", f"Could not find endpoint '{ENDPOINT_ARN}'."
    )
    with pytest.raises(EndpointDisappeared):
        inspect(stubbed, expectedEndpointConfigName=NEW_CONFIG)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ThrottlingException", "Rate exceeded"),
        ("AccessDeniedException", "not authorized to perform: sagemaker:DescribeEndpoint"),
        ("ValidationException", "1 validation error detected: Value at 'endpointName' failed"),
    ],
)
def test_only_a_missing_endpoint_means_not_found(stubbed: dict[str, Any], code: str, message: str) -> None:
    stubbed["sagemaker_stub"].add_client_error("describe_endpoint", code, message)
    with pytest.raises(ClientError, match=code):
        inspect(stubbed)


def test_auto_scaling_errors_propagate(stubbed: dict[str, Any]) -> None:
    stubbed["sagemaker_stub"].add_response(
        "describe_endpoint",
        {
            "EndpointName": ENDPOINT,
            "EndpointArn": ENDPOINT_ARN,
            "EndpointConfigName": OLD_CONFIG,
            "EndpointStatus": "InService",
            "CreationTime": "2026-11-22T21:00:00Z",
            "LastModifiedTime": "2026-11-22T21:05:00Z",
        },
    )
    stubbed["autoscaling_stub"].add_client_error(
        "describe_scalable_targets", "AccessDeniedException", "denied"
    )
    with pytest.raises(ClientError, match="AccessDeniedException"):
        inspect(stubbed)
