"""Stage notifications as a subscriber receives them, on a run that fails fast (its training data is absent, so
no job trains): a subscription filtering on the status attribute gets only the failure, and the Slack notifier
the stack subscribes when SlackWebhookSecretArn is set posts each stage to a webhook sink on loopback. Then a
rollback alarm is set to ALARM by hand, as an operator tests their paging, and CloudWatch's next evaluation
puts it back to OK: both changes are notified."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from h2o_sagemaker_local import events
from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.pipeline import LocalPipeline, RunResult
from h2o_sagemaker_local.stack import REGION
from polling import wait_until
from webhook_sink import WebhookSink

RUN_TIMEOUT = 300


@dataclass
class FailedRun:
    result: RunResult
    inbox: list[tuple[dict[str, Any], dict[str, str]]]
    failures_only: list[dict[str, Any]]
    slack_posts: list[dict[str, Any]]
    reported: list[events.NotificationPublished]
    alarm_name: str
    alarm_inbox: list[tuple[dict[str, Any], dict[str, str]]]
    alarm_slack_posts: list[dict[str, Any]]


def subscribe_queue(pipeline: LocalPipeline, topic_arn: str, name: str, filter_policy: dict[str, Any]) -> str:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pipeline.sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(filter_policy)},
    )
    return queue_url


def drain(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    received = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FailedRun]:
    options = parse_arguments(["run", "--max-jobs", "2", "--max-parallel", "2"])
    ml_parameters, hyperparameters, manifest = local_inputs(options)
    for channel in manifest["channels"]:  # data the run never uploads: every training job fails to read it
        channel["s3DataSource"]["S3Uri"] = channel["s3DataSource"]["S3Uri"].replace("titanic/", "absent/")
    progress: list[events.Event] = []
    with (
        WebhookSink() as sink,
        LocalPipeline(tmp_path_factory.mktemp("notifications"), listener=progress.append) as pipeline,
    ):
        secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="slack-webhook", SecretString=sink.url
        )["ARN"]
        stack = pipeline.deploy(ml_parameters, hyperparameters, {"SlackWebhookSecretArn": secret_arn})
        failures = subscribe_queue(
            pipeline, stack.outputs["NotificationTopicArn"], "failures-only", {"status": ["FAILED"]}
        )
        result = pipeline.run(manifest, {}, "manifests/absent-data/manifest.json", RUN_TIMEOUT)
        reported = [event for event in progress if isinstance(event, events.NotificationPublished)]
        inbox, slack_posts = pipeline.notifications_with_attributes(), list(sink.posts)

        [alarm_name, _] = stack.outputs["RollbackAlarmNames"].split(",")
        boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
            AlarmName=alarm_name, StateValue="ALARM", StateReason="Testing the on-call page"
        )
        alarm_inbox: list[tuple[dict[str, Any], dict[str, str]]] = []
        wait_until(
            lambda: alarm_inbox.extend(pipeline.notifications_with_attributes()) or len(alarm_inbox) >= 2,
            "the alarm's two notifications",
            timeout=30,
        )
        wait_until(lambda: len(sink.posts) >= len(slack_posts) + 2, "the alarm's Slack posts", timeout=30)
        yield FailedRun(
            result,
            inbox,
            drain(failures),
            slack_posts,
            reported,
            alarm_name,
            alarm_inbox,
            sink.posts[len(slack_posts) :],
        )


def test_each_stage_of_the_failed_run_is_published_once(failed_run: FailedRun) -> None:
    assert failed_run.result.status == "FAILED"
    stages = [
        (message["workflow"], message["stage"], attributes["status"])
        for message, attributes in failed_run.inbox
    ]
    assert stages == [("TuningWithDeployment", "RunStarted", "STARTED"), ("ModelTuning", "Failed", "FAILED")]
    failure = failed_run.inbox[1][0]
    assert (failure["step"], failure["error"]) == ("TuneHyperparameters", "States.TaskFailed")
    assert "no objects under" in failure["cause"]


def test_the_run_reports_each_notification_as_it_is_published(failed_run: FailedRun) -> None:
    """Reported while the run is followed (what `h2o-sagemaker-local run` prints), and still returned after."""
    assert [(event.message, event.attributes) for event in failed_run.reported] == failed_run.inbox


def test_a_filter_policy_on_the_status_delivers_only_the_failure(failed_run: FailedRun) -> None:
    assert failed_run.failures_only == [failed_run.inbox[1][0]]


def test_the_slack_notifier_posts_each_stage_to_the_webhook(failed_run: FailedRun) -> None:
    endpoint = failed_run.inbox[0][1]["endpoint"]
    texts = [post["text"] for post in failed_run.slack_posts]
    assert len(texts) == 2
    assert texts[0].startswith(f"*:arrow_forward: Run started*: endpoint `{endpoint}` (TuningWithDeployment)")
    assert texts[1].startswith(f"*:x: Failed*: endpoint `{endpoint}` (ModelTuning)")
    assert "• step: `TuneHyperparameters`" in texts[1]


def test_a_rollback_alarm_that_fires_and_clears_is_notified_each_time(failed_run: FailedRun) -> None:
    endpoint = failed_run.inbox[0][1]["endpoint"]
    assert [attributes for _, attributes in failed_run.alarm_inbox] == [
        {"workflow": "EndpointMonitoring", "stage": stage, "status": status, "endpoint": endpoint}
        for stage, status in (("AlarmRaised", "ALARM"), ("AlarmCleared", "OK"))
    ]
    raised, cleared = (message for message, _ in failed_run.alarm_inbox)
    assert (raised["alarmName"], raised["reason"], raised["previousState"]) == (
        failed_run.alarm_name,
        "Testing the on-call page",
        "OK",
    )
    assert raised["metric"] == "AWS/SageMaker Invocation5XXErrors (Average)"
    assert raised["endpointStatus"] == "NotFound"  # the run failed before deploying
    # No endpoint answered anything: CloudWatch's evaluation finds no data, which the alarm treats as not breaching.
    assert cleared["reason"].startswith("Threshold Crossed: no datapoints were received for ")
    assert cleared["previousState"] == "ALARM"
    texts = [post["text"] for post in failed_run.alarm_slack_posts]
    assert texts[0].startswith(
        f"*:rotating_light: Endpoint alarm fired*: endpoint `{endpoint}` (EndpointMonitoring)"
    )
    assert texts[1].startswith(f"*:large_green_circle: Endpoint alarm cleared*: endpoint `{endpoint}`")
