"""The request constraints AWS checks and botocore does not (enums, maximum lengths and values, patterns), held on
the local run's SageMaker, Application Auto Scaling, Parameter Store and Step Functions calls with AWS's error
and wording."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from h2o_sagemaker_local import api_constraints
from moto import mock_aws

REGION = "us-east-1"
VARIANT = {
    "VariantName": "AllTraffic",
    "ModelName": "m",
    "InstanceType": "ml.c5.large",
    "InitialInstanceCount": 1,
}


@pytest.fixture
def constrained(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        api_constraints.install()
        try:
            yield
        finally:
            api_constraints.uninstall()


def refusal(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call(**params)
    error = refused.value.response["Error"]
    assert (error["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ValidationException",
        400,
    )
    return error["Message"]


def test_a_misspelt_instance_type_and_a_bad_name_are_refused_in_one_answer(constrained: None) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)

    message = refusal(
        sagemaker.create_endpoint_config,
        EndpointConfigName="bad_name!",
        ProductionVariants=[VARIANT | {"InstanceType": "ml.c5.larg"}],
    )

    first, second = message.removeprefix("2 validation errors detected: ").split("; ")
    assert first == (
        "Value 'bad_name!' at 'endpointConfigName' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    assert second.startswith(
        "Value 'ml.c5.larg' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member "
        "must satisfy enum value set: [ml.t2.medium, "
    )
    assert "ml.c5.large" in second


def test_maximum_lengths_and_values_are_held(constrained: None) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    too_long = refusal(sagemaker.describe_endpoint, EndpointName="e" * 64)
    assert too_long.startswith("2 validation errors detected: ")  # too long for the name's pattern too
    assert (
        f"Value '{'e' * 64}' at 'endpointName' failed to satisfy constraint: Member must have length less than or "
        "equal to 63; "
    ) in too_long
    autoscaling = boto3.client("application-autoscaling", region_name=REGION)
    resource_ids = [f"endpoint/e{index}/variant/AllTraffic" for index in range(51)]
    message = refusal(
        autoscaling.describe_scalable_targets, ServiceNamespace="sagemaker", ResourceIds=resource_ids
    )
    assert message.startswith("1 validation error detected: Value '[endpoint/e0/variant/AllTraffic, ")
    assert message.endswith(
        "at 'resourceIds' failed to satisfy constraint: Member must have length less than or equal to 50"
    )


def test_parameter_store_and_step_functions_requests_are_held_too(constrained: None) -> None:
    """The run's settings reach Parameter Store and a child execution's input: their limits hold locally."""
    ssm = boto3.client("ssm", region_name=REGION)
    assert refusal(ssm.put_parameter, Name="/ml/p", Value="v", Type="String", Tier="Advancd").startswith(
        "1 validation error detected: Value 'Advancd' at 'tier' failed to satisfy constraint: Member"
    )
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    arn = f"arn:aws:states:{REGION}:123456789012:stateMachine:m"
    assert refusal(stepfunctions.start_execution, stateMachineArn=arn, name="n" * 81).endswith(
        "at 'name' failed to satisfy constraint: Member must have length less than or equal to 80"
    )


def test_a_request_within_the_constraints_reaches_the_service(constrained: None) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1"},
    )
    sagemaker.create_endpoint_config(EndpointConfigName="good-name-1", ProductionVariants=[VARIANT])
    assert sagemaker.describe_endpoint_config(EndpointConfigName="good-name-1")["ProductionVariants"]


def test_a_pattern_python_cannot_read_is_not_held_against_the_request() -> None:
    """Java's surrogate ranges and \\p{...} classes: rather pass such a value than refuse one AWS accepts."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    key = model.shape_for("CustomerMetadataKey")
    assert "\\p{L}" in key.metadata["pattern"]
    assert api_constraints.violations(key, "stage") == []
    assert api_constraints.violations(key, "k" * 129) == [
        f"Value '{'k' * 129}' at '' failed to satisfy constraint: Member must have length less than or equal to 128"
    ]
