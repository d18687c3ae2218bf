"""An approval in the registry deploys the version; creations, rejections and repeated events start nothing
(moto SageMaker, SSM, Step Functions, SNS, SQS)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from events import (
    STACK_RESOURCES,
    STACK_RESOURCES_ENVIRONMENT,
    minimal_ml_parameters,
    model_package_state_change,
)
from model_approval_trigger import lambda_handler
from moto import mock_aws
from workflow_common.execution_input import DeploymentInput
from workflow_common.parameter_store import write_documents

GROUP = STACK_RESOURCES.model_package_group_name
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        sagemaker, sfn, ssm = boto3.client("sagemaker"), boto3.client("stepfunctions"), boto3.client("ssm")
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )
        machine = sfn.create_state_machine(
            name="endpoint-deployment",
            roleArn="arn:aws:iam::123456789012:role/deployer",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        )["stateMachineArn"]
        write_documents(ssm, "/ml-project", {"ml-parameters": minimal_ml_parameters()}, owner="stack")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        for name, value in {
            "PARAMETER_STORE_PATH": "/ml-project",
            "DEPLOYMENT_STATE_MACHINE_ARN": machine,
            "NOTIFICATION_TOPIC_ARN": topic,
            **STACK_RESOURCES_ENVIRONMENT,
        }.items():
            monkeypatch.setenv(name, value)
        yield {"sagemaker": sagemaker, "sfn": sfn, "ssm": ssm, "machine": machine, "sqs": sqs, "queue": queue}


def register(aws: dict[str, Any], status: str, metadata: dict[str, str] | None = None) -> str:
    return str(
        aws["sagemaker"].create_model_package(
            ModelPackageGroupName=GROUP,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://my-ml-bucket/a/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelApprovalStatus=status,
            CustomerMetadataProperties=metadata or {"modelName": "survival-model-12020958-1f3a"},
        )["ModelPackageArn"]
    )


def executions(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]


def test_approving_a_waiting_version_deploys_it(aws: dict[str, Any], lambda_context: Any) -> None:
    arn = register(aws, "PendingManualApproval")
    aws["sagemaker"].update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")

    result = lambda_handler(model_package_state_change(arn), lambda_context)

    assert result["status"] == "STARTED"
    [execution] = executions(aws)
    assert execution["name"].startswith("survival-endpoint-v1-")
    started = json.loads(aws["sfn"].describe_execution(executionArn=execution["executionArn"])["input"])
    deployment = DeploymentInput.model_validate(started)
    assert deployment.model_package_arn == arn
    assert (deployment.model_package_version, deployment.model_approval_status) == (1, "Approved")
    assert deployment.endpoint_name == "survival-endpoint"
    assert deployment.endpoint_config_name == execution["name"]
    alarms = started["deploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [alarm["AlarmName"] for alarm in alarms] == list(STACK_RESOURCES.rollback_alarm_names)


def test_a_repeated_event_starts_nothing_more(aws: dict[str, Any], lambda_context: Any) -> None:
    arn = register(aws, "PendingManualApproval")
    aws["sagemaker"].update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    first = lambda_handler(model_package_state_change(arn), lambda_context)
    again = lambda_handler(model_package_state_change(arn), lambda_context)
    assert first["executionArn"] == again["executionArn"]
    assert len(executions(aws)) == 1


@pytest.mark.parametrize(
    ("event_status", "updated_fields"),
    [
        ("Approved", None),  # a version registered Approved: its own run deploys it
        ("Rejected", ["ModelApprovalStatus"]),
        ("Approved", ["CustomerMetadataProperties"]),  # an approved version's metadata changed
    ],
)
def test_only_an_approval_deploys(
    aws: dict[str, Any], lambda_context: Any, event_status: str, updated_fields: list[str] | None
) -> None:
    arn = register(aws, "Approved")
    result = lambda_handler(model_package_state_change(arn, event_status, updated_fields), lambda_context)
    assert result["status"] == "IGNORED"
    assert executions(aws) == []


def test_a_late_event_for_a_version_rejected_since_starts_nothing(
    aws: dict[str, Any], lambda_context: Any
) -> None:
    arn = register(aws, "Rejected")
    result = lambda_handler(model_package_state_change(arn), lambda_context)
    assert (result["status"], result["reason"]) == ("IGNORED", "the version is Rejected now")
    assert executions(aws) == []


def test_another_groups_version_is_not_this_stacks(aws: dict[str, Any], lambda_context: Any) -> None:
    aws["sagemaker"].create_model_package_group(ModelPackageGroupName="other-endpoint-0000aaaa")
    event = model_package_state_change(
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/other-endpoint-0000aaaa/1"
    )
    assert lambda_handler(event, lambda_context)["status"] == "IGNORED"
    assert executions(aws) == []


def test_settings_that_no_longer_validate_are_reported_not_deployed(
    aws: dict[str, Any], lambda_context: Any
) -> None:
    broken = minimal_ml_parameters() | {"deployment": {"strategy": "Canary"}}
    write_documents(aws["ssm"], "/ml-project", {"ml-parameters": broken}, owner="stack")
    arn = register(aws, "PendingManualApproval")
    aws["sagemaker"].update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")

    result = lambda_handler(model_package_state_change(arn), lambda_context)

    assert result["status"] == "REJECTED"
    assert "the Canary strategy needs canarySize" in result["reason"]
    assert executions(aws) == []
    [message] = aws["sqs"].receive_message(QueueUrl=aws["queue"])["Messages"]
    notified = json.loads(message["Body"])
    assert notified["modelPackageArn"] == arn
    assert "canarySize" in notified["error"]
