"""The local model registry answers SageMaker's registry calls with its shapes and sends its state-change events
to the EventBridge rules that match them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from api_shapes import SAGEMAKER_API, assert_matches_api_shape
from botocore.exceptions import ClientError
from h2o_sagemaker_local import moto_patches
from h2o_sagemaker_local.sagemaker_emulator import LocalSageMaker
from moto import mock_aws

REGION = "us-east-1"
GROUP = "survival-endpoint-1a2b3c4d"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1"
PATTERN = {
    "source": ["aws.sagemaker"],
    "detail-type": ["SageMaker Model Package State Change"],
    "detail": {"ModelPackageGroupName": [GROUP], "ModelApprovalStatus": ["Approved"]},
}


@pytest.fixture
def sagemaker(tmp_path: Any) -> Iterator[Any]:
    with mock_aws():
        moto_patches.install(lambda name: lambda event, context: None)
        local = LocalSageMaker(tmp_path, region=REGION)
        local.install()
        try:
            client = boto3.client("sagemaker", region_name=REGION)
            client.create_model_package_group(
                ModelPackageGroupName=GROUP, ModelPackageGroupDescription="models"
            )
            yield client
        finally:
            local.shutdown()
            local.uninstall()
            moto_patches.uninstall()


def register(sagemaker: Any, status: str = "PendingManualApproval", token: str | None = None) -> str:
    return str(
        sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelPackageDescription="validation:auc=0.91",
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bucket/job/output/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelApprovalStatus=status,
            CustomerMetadataProperties={"modelName": "survival-model-1", "runId": "12020958-1f3a"},
            **({"ClientToken": token} if token else {}),
        )["ModelPackageArn"]
    )


def output_shape(operation: str) -> Any:
    return SAGEMAKER_API.operation_model(operation).output_shape


def test_versions_are_numbered_in_their_group_and_described_as_sagemaker_does(sagemaker: Any) -> None:
    first, second = register(sagemaker), register(sagemaker, "Approved")
    assert first.endswith(f":model-package/{GROUP}/1") and second.endswith(f"/{GROUP}/2")
    for arn in (first, second):
        description = sagemaker.describe_model_package(ModelPackageName=arn)
        description.pop("ResponseMetadata")
        assert_matches_api_shape(description, output_shape("DescribeModelPackage"))
    listed = sagemaker.list_model_packages(ModelPackageGroupName=GROUP, SortOrder="Descending")
    listed.pop("ResponseMetadata")
    assert_matches_api_shape(listed, output_shape("ListModelPackages"))
    assert [item["ModelPackageVersion"] for item in listed["ModelPackageSummaryList"]] == [2, 1]
    approved = sagemaker.list_model_packages(ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved")
    assert [item["ModelPackageArn"] for item in approved["ModelPackageSummaryList"]] == [second]
    group = sagemaker.describe_model_package_group(ModelPackageGroupName=GROUP)
    group.pop("ResponseMetadata")
    assert_matches_api_shape(group, output_shape("DescribeModelPackageGroup"))


def test_a_repeated_client_token_answers_the_version_it_made(sagemaker: Any) -> None:
    assert register(sagemaker, token="run-1") == register(sagemaker, token="run-1")
    assert register(sagemaker, token="run-2").endswith("/2")


def test_an_update_changes_only_what_it_names(sagemaker: Any) -> None:
    arn = register(sagemaker)
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sagemaker.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"deployment": "RolledBack"},
        CustomerMetadataPropertiesToRemove=["runId"],
    )
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == {
        "modelName": "survival-model-1",
        "deployment": "RolledBack",
    }
    assert described["LastModifiedTime"] >= described["CreationTime"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ModelPackageGroupName": "no-such-group"}, "does not exist"),
        ({"ModelApprovalStatus": "Maybe"}, "Member must satisfy enum value set"),
        ({"CustomerMetadataProperties": {"bad,key": "x"}}, "customerMetadataProperties"),
    ],
)
def test_bad_registrations_are_refused_as_sagemaker_refuses_them(
    sagemaker: Any, change: dict[str, Any], message: str
) -> None:
    request = {
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    } | change
    with pytest.raises(ClientError, match=message):
        sagemaker.create_model_package(**request)


def test_a_group_with_versions_is_not_deleted(sagemaker: Any) -> None:
    register(sagemaker)
    with pytest.raises(ClientError, match="has model packages"):
        sagemaker.delete_model_package_group(ModelPackageGroupName=GROUP)


def test_each_creation_and_update_reaches_the_matching_rules_as_sagemaker_sends_it(sagemaker: Any) -> None:
    """A rule like the stack's approval rule, with a queue target to read what arrives."""
    events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="approvals")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="approved", EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule="approved", Targets=[{"Id": "queue", "Arn": queue_arn}])

    registered_approved = register(sagemaker, "Approved")
    waiting = register(sagemaker)
    sagemaker.update_model_package(ModelPackageArn=waiting, ModelApprovalStatus="Rejected")
    sagemaker.update_model_package(ModelPackageArn=waiting, ModelApprovalStatus="Approved")

    received = []
    deadline = time.monotonic() + 5
    while len(received) < 2 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            received.append(json.loads(message["Body"]))
    creation, approval = received
    assert creation["detail"]["ModelPackageArn"] == registered_approved
    assert "UpdatedModelPackageFields" not in creation["detail"]  # a creation, not an update
    assert approval["detail"]["ModelPackageArn"] == waiting
    assert approval["detail"]["UpdatedModelPackageFields"] == ["ModelApprovalStatus"]
    assert approval["detail-type"] == "SageMaker Model Package State Change"
    assert approval["source"] == "aws.sagemaker" and approval["resources"] == [waiting]


def test_the_events_carry_awss_fields_and_times(sagemaker: Any, tmp_path: Any) -> None:
    local = LocalSageMaker(tmp_path, region=REGION)
    sent: list[dict[str, Any]] = []
    local.registry.send_event = sent.append
    local.registry.create_model_package_group({"ModelPackageGroupName": GROUP})
    arn = local.registry.create_model_package(
        {"ModelPackageGroupName": GROUP, "InferenceSpecification": {"Containers": [{"Image": IMAGE}]}}
    )["ModelPackageArn"]
    local.registry.update_model_package({"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"})
    local.shutdown()
    created, approved = sent
    assert set(created) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert created["time"].endswith("Z") and created["detail"]["CreationTime"].endswith("Z")
    assert created["detail"]["ModelApprovalStatus"] == "PendingManualApproval"
    assert approved["detail"]["ModelApprovalStatus"] == "Approved"
    assert created["id"] != approved["id"]
