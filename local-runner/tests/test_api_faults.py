"""API faults on demand: real error responses per protocol, retried by the SDK as on AWS, and a whole run under
faults that ends SUCCEEDED or FAILED with a notification, with no process left and at most one endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from h2o_sagemaker_local import api_faults
from h2o_sagemaker_local.api_faults import ApiFaults
from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.iam.enforcement import AccessControl
from h2o_sagemaker_local.iam.simulator import PolicySimulator
from h2o_sagemaker_local.pipeline import LocalPipeline, PipelineError
from h2o_sagemaker_local.stack import ACCOUNT_ID, REGION
from moto import mock_aws
from process_watch import no_process_left

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture
def function_role() -> Iterator[str]:
    """A role a Lambda function acts as, allowed everything these tests call, with IAM enforced."""
    with mock_aws():
        simulator = PolicySimulator()
        control = AccessControl(simulator, ACCOUNT_ID, REGION)
        iam = boto3.client("iam", region_name=REGION)
        arn = iam.create_role(RoleName="function", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"][
            "Arn"
        ]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_role_policy(RoleName="function", PolicyName="all", PolicyDocument=json.dumps(policy))
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="data")
        try:
            with enforcement.enforced(control):
                yield arn
        finally:
            api_faults.uninstall()
            simulator.close()


@pytest.mark.parametrize(
    ("service", "call", "codes"),
    [
        (
            "sagemaker",
            lambda client: client.describe_endpoint(EndpointName="e"),
            {"ThrottlingException", "InternalFailure"},
        ),
        (
            "sns",
            lambda client: client.publish(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:t", Message="m"),
            {"Throttled", "InternalError"},
        ),
        ("s3", lambda client: client.get_object(Bucket="data", Key="k"), {"SlowDown", "InternalError"}),
        (
            "lambda",
            lambda client: client.invoke(FunctionName="f"),
            {"TooManyRequestsException", "ServiceException"},
        ),
    ],
)
def test_a_fault_is_the_services_own_error_as_its_protocol_writes_it(
    function_role: str, service: str, call, codes: set[str]
) -> None:
    faults = ApiFaults(rate=0.999999, seed=3)
    api_faults.install(faults)
    seen = set()
    with enforcement.acting_as(function_role, "lambda.amazonaws.com", "f"):
        client = boto3.client(service, region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
        for _ in range(12):
            with pytest.raises(ClientError) as failed:
                call(client)
            seen.add(failed.value.response["Error"]["Code"])
    assert seen == codes
    assert all(caller == "function" for caller, _, _ in faults.injected)


def test_the_sdk_retries_a_throttled_call_as_on_aws(function_role: str) -> None:
    """Faults are per HTTP attempt: a client in standard retry mode gets through a rate of one in two."""
    faults = ApiFaults(rate=0.5, seed=1)
    api_faults.install(faults)
    with enforcement.acting_as(function_role, "lambda.amazonaws.com", "f"):
        s3 = boto3.client(
            "s3", region_name=REGION, config=Config(retries={"mode": "standard", "max_attempts": 10})
        )
        for index in range(20):
            s3.put_object(Bucket="data", Key=f"k{index}", Body=b"x")
    assert sum(faults.injected.values()) >= 5, "faults were injected and retried"
    assert faults.attempts == 20 + sum(faults.injected.values())


def test_a_faulted_call_has_no_side_effect(function_role: str) -> None:
    faults = ApiFaults(rate=0.999999, seed=4)
    api_faults.install(faults)
    with enforcement.acting_as(function_role, "lambda.amazonaws.com", "f"):
        s3 = boto3.client("s3", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
        with pytest.raises(ClientError):
            s3.put_object(Bucket="data", Key="refused", Body=b"x")
    api_faults.uninstall()
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket="data")
    assert "Contents" not in listed, "the refused request was served"


def test_the_administrators_calls_are_never_faulted(function_role: str) -> None:
    faults = ApiFaults(rate=0.99, seed=2)
    api_faults.install(faults)
    for index in range(10):
        boto3.client("s3", region_name=REGION).put_object(Bucket="data", Key=f"k{index}", Body=b"x")
    assert faults.attempts == 0


def test_the_rate_is_a_fraction() -> None:
    with pytest.raises(ValueError, match="at least 0 and below 1"):
        ApiFaults(rate=1.0)


@pytest.mark.h2o
def test_a_run_under_api_faults_succeeds_or_fails_with_a_notification_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    options = parse_arguments(["run", "--max-jobs", "2", "--max-parallel", "2", "--api-faults", "0.3"])
    ml_parameters, hyperparameters, manifest = local_inputs(options)
    with LocalPipeline(tmp_path, seed=5, api_fault_rate=options.api_faults) as pipeline:
        pipeline.deploy(ml_parameters, hyperparameters)
        try:
            result = pipeline.run(
                manifest,
                {"training": options.train, "validation": options.validation},
                "manifests/faulty/manifest.json",
            )
            status, notified = result.status, bool(pipeline.notifications())
        except PipelineError as error:  # the trigger's event failed every retry: notified on the topic
            status, notified = "NOT STARTED", "notified on the topic" in str(error)
        endpoints = boto3.client("sagemaker", region_name=REGION).list_endpoints()["Endpoints"]
        faults = pipeline.api_faults
        assert faults is not None and sum(faults.injected.values()) > 0, "no fault was injected"
    assert status == "SUCCEEDED" or notified, status
    assert len(endpoints) <= 1
    assert no_process_left(tmp_path)
