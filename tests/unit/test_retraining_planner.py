"""The retraining planner against moto: a tick with new data writes one manifest naming exactly the window's
objects; a tick without new data writes nothing; bad input is rejected with the field named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import retraining_planner
from cfnlint.decode import cfn_yaml
from events import BUCKET, load_event, minimal_ml_parameters
from moto import mock_aws
from moto.backends import get_backend
from workflow_common.parameter_store import write_documents

TICK = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
TEMPLATE = Path(__file__).parents[2] / "ml-parameter-provider" / "template.yaml"
ML_PARAMETERS = minimal_ml_parameters() | {
    "retraining": {
        "trainingDataPrefixes": [f"s3://{BUCKET}/titanic/training/"],
        "trainingWindowDays": 7,
        "validationS3Uri": f"s3://{BUCKET}/titanic/validation/validation.csv",
    },
}


def put_data(s3: Any, key: str, modified: datetime) -> None:
    """An object as if uploaded at ``modified`` (moto stamps the wall clock)."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n1,2\n")
    get_backend("s3")["123456789012"]["aws"].buckets[BUCKET].keys[key].last_modified = modified.replace(
        tzinfo=None
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3, sns, ssm, sqs = (boto3.client(name) for name in ("s3", "sns", "ssm", "sqs"))
        s3.create_bucket(Bucket=BUCKET)
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        write_documents(ssm, "/ml-project", {"ml-parameters": ML_PARAMETERS}, owner="stack")
        for name, value in {
            "PARAMETER_STORE_PATH": "/ml-project",
            "DATA_BUCKET_NAME": BUCKET,
            "MANIFEST_KEY_PREFIX": "manifests/",
            "MANIFEST_KEY_SUFFIX": "manifest.json",
            "NOTIFICATION_TOPIC_ARN": topic,
        }.items():
            monkeypatch.setenv(name, value)
        put_data(s3, "titanic/training/2026-11-20.csv", TICK - timedelta(days=11))  # before the window
        put_data(s3, "titanic/training/2026-11-28.csv", TICK - timedelta(days=3))
        put_data(s3, "titanic/training/late/2026-11-30.csv", TICK - timedelta(hours=5))
        put_data(s3, "titanic/training/2026-12-02.csv", TICK + timedelta(days=1))  # after the tick
        yield {"s3": s3, "ssm": ssm, "sqs": sqs, "queue": queue}


def tick(lambda_context: Any, at: datetime = TICK) -> dict[str, Any]:
    event = load_event("scheduler-tick", {"scheduledTime": f"{at:%Y-%m-%dT%H:%M:%SZ}"})
    result: dict[str, Any] = retraining_planner.lambda_handler(event, lambda_context)
    return result


def manifests(aws: dict[str, Any]) -> list[str]:
    listing = aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="manifests/")
    return [item["Key"] for item in listing.get("Contents", [])]


def notifications(aws: dict[str, Any]) -> list[dict[str, Any]]:
    messages = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def set_watermark(aws: dict[str, Any], value: datetime) -> None:
    aws["ssm"].put_parameter(Name="/ml-project/data-watermark", Value=value.isoformat(), Type="String")


def test_new_data_writes_a_manifest_of_exactly_the_window(aws: dict[str, Any], lambda_context: Any) -> None:
    result = tick(lambda_context)
    newest = TICK - timedelta(hours=5)
    assert result["status"] == "PLANNED"
    assert result["dataWatermark"] == newest.isoformat()
    folder = "manifests/scheduled/20261201T030000Z/"
    assert sorted(manifests(aws)) == [f"{folder}manifest.json", f"{folder}training-data.manifest"]
    manifest = json.loads(aws["s3"].get_object(Bucket=BUCKET, Key=f"{folder}manifest.json")["Body"].read())
    assert manifest == {
        "channels": [
            {
                "channelName": "training",
                "s3DataSource": {
                    "S3Uri": f"s3://{BUCKET}/{folder}training-data.manifest",
                    "S3DataType": "ManifestFile",
                },
            },
            {
                "channelName": "validation",
                "s3DataSource": {"S3Uri": f"s3://{BUCKET}/titanic/validation/validation.csv"},
            },
        ],
        "dataWatermark": newest.isoformat(),
    }
    file_list = json.loads(
        aws["s3"].get_object(Bucket=BUCKET, Key=f"{folder}training-data.manifest")["Body"].read()
    )
    assert file_list == [
        {"prefix": f"s3://{BUCKET}/"},
        "titanic/training/2026-11-28.csv",
        "titanic/training/late/2026-11-30.csv",
    ]
    with pytest.raises(aws["ssm"].exceptions.ParameterNotFound):  # the run records it, once it completes
        aws["ssm"].get_parameter(Name="/ml-project/data-watermark")


def test_data_newer_than_the_watermark_plans_a_run_with_the_whole_window(
    aws: dict[str, Any], lambda_context: Any
) -> None:
    set_watermark(aws, TICK - timedelta(days=1))
    result = tick(lambda_context)
    assert result["status"] == "PLANNED"
    assert result["files"] == ["titanic/training/2026-11-28.csv", "titanic/training/late/2026-11-30.csv"]


def test_no_data_newer_than_the_watermark_writes_nothing_and_notifies(
    aws: dict[str, Any], lambda_context: Any
) -> None:
    watermark = TICK - timedelta(hours=5)
    set_watermark(aws, watermark)
    assert tick(lambda_context) == {"status": "NO_NEW_DATA", "dataWatermark": watermark.isoformat()}
    assert manifests(aws) == []
    assert aws["ssm"].get_parameter(Name="/ml-project/data-watermark")["Parameter"]["Value"] == (
        watermark.isoformat()
    )
    [notification] = notifications(aws)
    assert json.loads(notification["Message"])["stage"] == "NoNewData"
    assert {name: value["Value"] for name, value in notification["MessageAttributes"].items()} == {
        "workflow": "RetrainingPlanner",
        "stage": "NoNewData",
        "status": "NO_NEW_DATA",
        "endpoint": "survival-endpoint",
    }


def test_a_tick_delivered_twice_writes_its_manifest_once(aws: dict[str, Any], lambda_context: Any) -> None:
    assert tick(lambda_context)["status"] == "PLANNED"
    assert tick(lambda_context)["status"] == "ALREADY_PLANNED"
    versions = aws["s3"].list_object_versions(Bucket=BUCKET, Prefix="manifests/").get("Versions", [])
    assert len(versions) == 2  # the manifest and its file list, each written once


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "schedule input: scheduledTime: Field required"),
        ({"scheduledTime": "yesterday"}, "schedule input: scheduledTime: Input should be a valid datetime"),
        (
            {"scheduledTime": "2026-12-01T03:00:00"},
            "schedule input: scheduledTime: Input should have timezone",
        ),
    ],
)
def test_a_bad_tick_is_rejected_naming_the_field(
    aws: dict[str, Any], lambda_context: Any, event: dict[str, Any], message: str
) -> None:
    result = retraining_planner.lambda_handler(event, lambda_context)
    assert result["status"] == "REJECTED"
    assert result["reason"].startswith(message)
    assert "\n" not in result["reason"]
    assert manifests(aws) == []
    [notification] = notifications(aws)
    assert json.loads(notification["Message"])["error"] == result["reason"]


@pytest.mark.parametrize(
    ("retraining", "message"),
    [
        (None, "ml-parameters: retraining is not set"),
        (
            {"trainingDataPrefixes": []},
            "ml-parameters: retraining.trainingDataPrefixes: List should have at least 1",
        ),
        (
            {"trainingDataPrefixes": ["s3://other-bucket/data/"], "validationS3Uri": f"s3://{BUCKET}/v.csv"},
            "ml-parameters: retraining: s3://other-bucket/data/ is outside the data bucket",
        ),
        (
            {"trainingDataPrefixes": [f"s3://{BUCKET}/d/"], "trainingWindowDays": 0},
            "ml-parameters: retraining.trainingWindowDays: Input should be greater than or equal to 1",
        ),
        (
            {"trainingDataPrefixes": [f"s3://{BUCKET}/d/"]},
            "ml-parameters: retraining.validationS3Uri is needed: the objective validation:auc is measured on",
        ),
    ],
)
def test_bad_retraining_settings_are_rejected_naming_the_field(
    aws: dict[str, Any], lambda_context: Any, retraining: dict[str, Any] | None, message: str
) -> None:
    document = {key: value for key, value in ML_PARAMETERS.items() if key != "retraining"}
    if retraining is not None:
        document["retraining"] = retraining
    write_documents(aws["ssm"], "/ml-project", {"ml-parameters": document}, owner="stack")
    result = tick(lambda_context)
    assert result["status"] == "REJECTED"
    assert result["reason"].startswith(message)
    assert manifests(aws) == []


def test_the_schedule_sends_the_tick_time_in_the_shape_the_planner_reads() -> None:
    schedule = cfn_yaml.load(str(TEMPLATE))["Resources"]["RetrainingScheduleTrigger"]["Properties"]
    sent = schedule["Target"]["Input"].replace("<aws.scheduler.scheduled-time>", "2026-12-01T03:00:00Z")
    assert json.loads(sent) == load_event("scheduler-tick")
    assert retraining_planner.parse_tick(json.loads(sent)) == TICK
