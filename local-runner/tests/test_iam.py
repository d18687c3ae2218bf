"""IAM enforcement of the local run: the policy simulator, AWS's denials, trust and PassRole, and the grants the
templates give the state machines and functions (deployed by the local deployer, as SAM expands them)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from h2o_sagemaker_local import moto_patches
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.iam.enforcement import AccessControl, AccessDenied
from h2o_sagemaker_local.iam.requests import ApiCall, Authorization, integration_authorizations
from h2o_sagemaker_local.iam.simulator import PolicySimulator
from h2o_sagemaker_local.stack import ACCOUNT_ID, REGION, Deployer, FunctionRegistry
from moto import mock_aws

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:workflow-common:1"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture(scope="module")
def simulator() -> Iterator[PolicySimulator]:
    simulator = PolicySimulator()
    yield simulator
    simulator.close()


@pytest.fixture
def access(simulator: PolicySimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[AccessControl]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "administrator")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        control = AccessControl(simulator, ACCOUNT_ID, REGION)
        with enforcement.enforced(control):
            yield control


def role(name: str, statements: list[dict[str, Any]], trust: dict[str, Any] = LAMBDA_TRUST) -> str:
    iam = boto3.client("iam", region_name=REGION)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    return arn


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def simulation(
    action: str, resource: str, policy: dict[str, Any], context: dict[str, Any] | None = None
) -> Any:
    return {
        "request": {
            "principal": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/r/s",
            "action": action,
            "resource": {"resource": resource, "accountId": ACCOUNT_ID},
            "contextVariables": context or {},
        },
        "identityPolicies": [{"name": "inline", "policy": policy}],
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
    }


# --- the evaluator ----------------------------------------------------------------------------------------------


def test_the_simulator_evaluates_resources_conditions_and_denies_as_iam(simulator: PolicySimulator) -> None:
    endpoint = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:endpoint/titanic"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": "sagemaker:Describe*", "Resource": endpoint},
            {
                "Sid": "Pass",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
            {
                "Sid": "Never",
                "Effect": "Deny",
                "Action": "sagemaker:DescribeEndpoint",
                "Resource": f"{endpoint}-prod",
            },
        ],
    }
    role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/exec"

    assert simulator.evaluate(simulation("sagemaker:DescribeEndpoint", endpoint, policy)).allowed
    other = simulator.evaluate(simulation("sagemaker:DescribeEndpoint", f"{endpoint}-other", policy))
    assert other.decision == "ImplicitlyDenied"
    denied = simulator.evaluate(simulation("sagemaker:DescribeEndpoint", f"{endpoint}-prod", policy))
    assert denied.decision == "ExplicitlyDenied"
    passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    assert simulator.evaluate(simulation("iam:PassRole", role_arn, policy, passed)).allowed
    wrong_service = {"iam:PassedToService": "lambda.amazonaws.com"}
    assert not simulator.evaluate(simulation("iam:PassRole", role_arn, policy, wrong_service)).allowed
    unknown = simulator.evaluate(simulation("sagemaker:DescribeEndpoints", endpoint, policy))
    assert unknown.decision == "Error", "an action AWS does not have is an error, not a denial or an allow"


# --- denials as AWS sends them ------------------------------------------------------------------------------------


def test_a_denied_call_fails_with_awss_error_naming_principal_action_and_resource(
    access: AccessControl,
) -> None:
    arn = role("reader", [allow("s3:GetObject", "arn:aws:s3:::data/allowed/*")])
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="data")
    with enforcement.acting_as(arn, "lambda.amazonaws.com", "reader-function"):
        s3, sagemaker, sns = (boto3.client(name, region_name=REGION) for name in ("s3", "sagemaker", "sns"))
        with pytest.raises(ClientError) as s3_denied:
            s3.get_object(Bucket="data", Key="secret/x.csv")
        with pytest.raises(ClientError) as sagemaker_denied:
            sagemaker.describe_endpoint(EndpointName="Titanic")
        with pytest.raises(ClientError) as sns_denied:
            sns.publish(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:topic", Message="x")

    assert s3_denied.value.response["Error"]["Code"] == "AccessDenied"
    assert (
        "User: arn:aws:sts::123456789012:assumed-role/reader/reader-function is not authorized to perform: "
        "s3:GetObject on resource: arn:aws:s3:::data/secret/x.csv because no identity-based policy allows the "
        "s3:GetObject action"
    ) in str(s3_denied.value)
    assert sagemaker_denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:endpoint/titanic" in str(sagemaker_denied.value)
    assert sns_denied.value.response["Error"]["Code"] == "AuthorizationError"
    assert len(access.denials) == 3


def test_a_call_no_authorization_is_known_for_is_refused_to_roles_but_not_to_the_administrator(
    access: AccessControl,
) -> None:
    arn = role("everything", [allow("*", "*")])
    boto3.client("sqs", region_name=REGION).list_queues()  # the user: not checked
    with enforcement.acting_as(arn, "lambda.amazonaws.com", "f"), pytest.raises(ClientError) as refused:
        boto3.client("sqs", region_name=REGION).list_queues()
    assert "no authorization is known for sqs ListQueues" in str(refused.value)


def test_a_role_is_assumed_only_by_the_services_its_trust_policy_names(access: AccessControl) -> None:
    arn = role("lambda-only", [allow("s3:ListBucket", "*")])
    access.assume(arn, "lambda.amazonaws.com", "f")
    with pytest.raises(
        AccessDenied, match=r"sagemaker\.amazonaws\.com is not authorized to perform: sts:AssumeRole"
    ):
        access.assume(arn, "sagemaker.amazonaws.com", "SageMaker")


def test_tags_and_passed_roles_are_authorized_separately(access: AccessControl) -> None:
    call = ApiCall(
        "sagemaker",
        "CreateModel",
        {
            "ModelName": "Best",
            "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/exec",
            "Tags": [{"Key": "Environment", "Value": "test"}],
        },
        REGION,
        ACCOUNT_ID,
    )
    from h2o_sagemaker_local.iam.requests import authorizations

    model = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:model/best"
    assert authorizations(call) == [
        Authorization("sagemaker:CreateModel", model),
        Authorization("sagemaker:AddTags", model, {"aws:TagKeys": ["Environment"]}),
        Authorization(
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT_ID}:role/exec",
            {"iam:PassedToService": "sagemaker.amazonaws.com"},
        ),
    ]


# --- the templates' grants, as the local deployer creates them ------------------------------------------------------


@pytest.fixture
def deployed(access: AccessControl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployer]:
    """A deployer whose functions run in process: the templates' custom resources answer during deployment."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="data")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the registry puts code and layer folders on it
    registry = FunctionRegistry(log_dir=tmp_path / "logs")
    moto_patches.install(registry.resolve)
    try:
        yield Deployer(registry)
    finally:
        moto_patches.uninstall()
        registry.close()


def principal_of(access: AccessControl, role_arn: str, service: str) -> Any:
    return access.principal(access.assume(role_arn, service, "test").access_key)


def test_the_selector_may_describe_this_accounts_algorithms_only(
    access: AccessControl, deployed: Deployer
) -> None:
    """algorithmARN names an algorithm of this account: the parameter import refuses another account's."""
    stack = deployed.deploy(
        "tuner",
        REPO_ROOT / "sagemaker-model-tuner" / "template.yaml",
        {"SharedLayerArn": LAYER_ARN, "DataBucketName": "data"},
    )
    selector = principal_of(access, stack.resources["BestModelSelectorRole"]["Arn"], "lambda.amazonaws.com")
    own = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:algorithm/h2o-gbm"
    access.authorize(selector, [Authorization("sagemaker:DescribeAlgorithm", own)])
    marketplace = f"arn:aws:sagemaker:{REGION}:865070037744:algorithm/h2o-gbm-marketplace"
    with pytest.raises(AccessDenied):
        access.authorize(selector, [Authorization("sagemaker:DescribeAlgorithm", marketplace)])


@pytest.mark.parametrize(
    ("template", "machine", "resource", "parameters"),
    [
        (
            "sagemaker-model-deployer",
            "EndpointDeploymentStateMachine",
            "createEndpointConfig",
            {"EndpointConfigName": "c1"},
        ),
        (
            "sagemaker-model-deployer",
            "EndpointDeploymentStateMachine",
            "createEndpoint",
            {"EndpointName": "e1"},
        ),
        ("sagemaker-model-tuner", "ModelTuningStateMachine", "createModel", {"ModelName": "m1"}),
        (
            "sagemaker-model-tuner",
            "ModelTuningStateMachine",
            "createHyperParameterTuningJob.sync",
            {"HyperParameterTuningJobName": "t1"},
        ),
    ],
)
def test_the_state_machines_may_do_what_their_sagemaker_integrations_do(
    access: AccessControl,
    deployed: Deployer,
    template: str,
    machine: str,
    resource: str,
    parameters: dict[str, Any],
) -> None:
    """ListTags beside each SageMaker task, and the stop action and managed rule of .sync, as AWS's generated
    policies for the SageMaker integrations grant them."""
    stack_parameters = {"SharedLayerArn": LAYER_ARN} | (
        {"DataBucketName": "data"}
        if template == "sagemaker-model-tuner"
        else {}  # the deployer has no bucket
    )
    stack = deployed.deploy(template, REPO_ROOT / template / "template.yaml", stack_parameters)
    role_arn = stack.resources[f"{machine}Role"]["Arn"]
    needed = integration_authorizations(
        f"arn:aws:states:::sagemaker:{resource}", parameters, REGION, ACCOUNT_ID
    )
    assert any(item.action == "sagemaker:ListTags" for item in needed)
    access.authorize(principal_of(access, role_arn, "states.amazonaws.com"), needed)
