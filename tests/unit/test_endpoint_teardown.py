"""The teardown custom resource against moto: Delete removes this stack's tagged SageMaker resources and their
auto scaling, nothing of another stack; Retain, Create and Update remove nothing; bad settings are refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import endpoint_teardown
import pytest
from aws_lambda_powertools.utilities.parser.models import CloudFormationCustomResourceDeleteModel
from events import DELETE, load_event
from moto import mock_aws

if TYPE_CHECKING:
    from conftest import CloudFormationResponses

ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"


def teardown_request(
    responses: CloudFormationResponses, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    return load_event(
        "cloudformation-endpoint-teardown-delete", {"ResponseURL": responses.url} | (overrides or {})
    )


def make_deployment(sagemaker: Any, autoscaling: Any, name: str, owner: str | None) -> None:
    """A model, endpoint configuration and auto-scaled endpoint named ``name``, tagged for ``owner``."""
    tags = [{"Key": "Environment", "Value": "test"}]
    if owner:
        tags.append({"Key": "h2o-sagemaker:stack", "Value": owner})
    sagemaker.create_model(
        ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "predictor:latest"}, Tags=tags
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
        Tags=tags,
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)
    resource_id = f"endpoint/{name}/variant/AllTraffic"
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    autoscaling.put_scaling_policy(
        PolicyName="invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
        },
    )


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        clients = {
            "sagemaker": boto3.client("sagemaker"),
            "autoscaling": boto3.client("application-autoscaling"),
        }
        make_deployment(clients["sagemaker"], clients["autoscaling"], "ml-run-1", "ml")
        make_deployment(clients["sagemaker"], clients["autoscaling"], "other-run-1", "other")
        make_deployment(clients["sagemaker"], clients["autoscaling"], "untagged-run-1", None)
        endpoint_teardown.aws_client._clients.clear()  # clients made inside this moto
        yield clients


def left(aws: dict[str, Any]) -> dict[str, list[str]]:
    sagemaker, autoscaling = aws["sagemaker"], aws["autoscaling"]
    return {
        "models": sorted(model["ModelName"] for model in sagemaker.list_models()["Models"]),
        "configs": sorted(
            item["EndpointConfigName"] for item in sagemaker.list_endpoint_configs()["EndpointConfigs"]
        ),
        "endpoints": sorted(item["EndpointName"] for item in sagemaker.list_endpoints()["Endpoints"]),
        "targets": sorted(
            target["ResourceId"].split("/")[1]
            for target in autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
                "ScalableTargets"
            ]
        ),
        "policies": sorted(
            policy["ResourceId"].split("/")[1]
            for policy in autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")[
                "ScalingPolicies"
            ]
        ),
    }


EVERYTHING = ["ml-run-1", "other-run-1", "untagged-run-1"]
OTHERS = ["other-run-1", "untagged-run-1"]


def test_the_sample_is_a_delete_request_cloudformation_sends(responses) -> None:
    CloudFormationCustomResourceDeleteModel.model_validate(teardown_request(responses))


def test_delete_removes_exactly_this_stacks_resources_and_their_auto_scaling(
    aws, responses, lambda_context
) -> None:
    endpoint_teardown.lambda_handler(teardown_request(responses), lambda_context)
    [answer] = responses.bodies
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "sagemaker-teardown:ml"
    assert left(aws) == {kind: OTHERS for kind in ("models", "configs", "endpoints", "targets", "policies")}


def test_delete_with_retain_keeps_everything(aws, responses, lambda_context) -> None:
    request = teardown_request(responses, {"ResourceProperties.OnStackDelete": "Retain"})
    endpoint_teardown.lambda_handler(request, lambda_context)
    assert [answer["Status"] for answer in responses.bodies] == ["SUCCESS"]
    assert left(aws) == {
        kind: EVERYTHING for kind in ("models", "configs", "endpoints", "targets", "policies")
    }


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_remove_nothing_and_name_the_owner(
    aws, responses, lambda_context, request_type: str
) -> None:
    overrides: dict[str, Any] = {"RequestType": request_type}
    if request_type == "Create":
        overrides["PhysicalResourceId"] = DELETE
    else:
        overrides["OldResourceProperties"] = {"OnStackDelete": "Retain", "OwnerStackName": "ml"}
    endpoint_teardown.lambda_handler(teardown_request(responses, overrides), lambda_context)
    [answer] = responses.bodies
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "sagemaker-teardown:ml")
    assert left(aws)["endpoints"] == EVERYTHING


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("OnStackDelete", "Remove", "OnStackDelete: Input should be 'Retain' or 'Delete'"),
        ("OwnerStackName", "", "OwnerStackName: String should have at least 1 character"),
        ("OwnerStackName", DELETE, "OwnerStackName: Field required"),
    ],
)
def test_bad_settings_fail_create_in_one_line_naming_the_field(
    aws, responses, lambda_context, field: str, value: Any, message: str
) -> None:
    overrides = {"RequestType": "Create", "PhysicalResourceId": DELETE, f"ResourceProperties.{field}": value}
    endpoint_teardown.lambda_handler(teardown_request(responses, overrides), lambda_context)
    [answer] = responses.bodies
    assert answer["Status"] == "FAILED"
    assert message in answer["Reason"] and "\n" not in answer["Reason"]
    assert left(aws)["endpoints"] == EVERYTHING


def test_delete_of_a_resource_whose_create_failed_removes_nothing(aws, responses, lambda_context) -> None:
    request = teardown_request(responses, {"PhysicalResourceId": "EndpointTeardown"})
    endpoint_teardown.lambda_handler(request, lambda_context)
    assert [answer["Status"] for answer in responses.bodies] == ["SUCCESS"]
    assert left(aws)["endpoints"] == EVERYTHING


def test_a_second_delete_finds_nothing_left_and_succeeds(aws, responses, lambda_context) -> None:
    endpoint_teardown.lambda_handler(teardown_request(responses), lambda_context)
    endpoint_teardown.lambda_handler(teardown_request(responses), lambda_context)
    assert [answer["Status"] for answer in responses.bodies] == ["SUCCESS", "SUCCESS"]
    assert left(aws)["endpoints"] == OTHERS
