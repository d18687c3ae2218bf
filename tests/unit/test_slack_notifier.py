"""The Slack notifier against moto's Secrets Manager and a webhook sink on loopback: a stage message is posted
readably; a bad event, a missing or wrong secret and a refused post fail the invocation without the URL."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import boto3
import pytest
import slack_notifier
from aws_lambda_powertools.utilities import parameters
from events import load_event, sns_notification
from moto import mock_aws
from webhook_sink import WebhookSink

FAILED = {
    "workflow": "ModelTuning",
    "stage": "Failed",
    "execution": "arn:aws:states:us-east-1:123456789012:execution:ModelTuning:run-1",
    "endpoint": "survival-endpoint",
    "step": "TuneHyperparameters",
    "error": "States.TaskFailed",
    "cause": "x" * 5000,
}


@pytest.fixture
def secrets() -> Iterator[Any]:
    parameters.clear_caches()
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as running:
        yield running


def webhook_secret(secrets: Any, value: str) -> str:
    return secrets.create_secret(Name="slack-webhook", SecretString=value)["ARN"]


def test_a_stage_notification_is_posted_readably(
    secrets: Any, sink: WebhookSink, monkeypatch, lambda_context
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", webhook_secret(secrets, sink.url))

    assert slack_notifier.lambda_handler(load_event("sns-notification"), lambda_context) == {"posted": 1}

    [post] = sink.posts
    lines = post["text"].splitlines()
    assert lines[0] == "*:rocket: Endpoint deployed*: endpoint `survival-endpoint` (EndpointDeployment)"
    assert "• endpointConfigName: `survival-endpoint-12010000-ab12`" in lines
    assert "• instanceCount: `1`" in lines
    assert lines[-1].startswith("• execution: arn:aws:states:")


def test_a_failure_shows_its_step_and_error_and_the_start_of_a_long_cause(
    secrets: Any, sink: WebhookSink
) -> None:
    slack_notifier.notify_slack(sns_notification(FAILED, "failed"), webhook_secret(secrets, sink.url))

    text = sink.posts[0]["text"]
    assert text.startswith("*:x: Failed*: endpoint `survival-endpoint` (ModelTuning)")
    assert "• step: `TuneHyperparameters`" in text and "• error: `States.TaskFailed`" in text
    cause = next(line for line in text.splitlines() if line.startswith("• cause: "))
    assert len(cause) == len("• cause: ") + slack_notifier.CAUSE_MAX_CHARACTERS + 2


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"Records": [{"eventSource": "aws:s3"}]}, "not an SNS notification: Records.0"),
        (
            load_event("sns-notification", {"Records.0.Sns.Message": "deployed"}),
            "is not a JSON stage message",
        ),
        (load_event("sns-notification", {"Records.0.Sns.Message": "[1]"}), "is not a JSON stage message"),
    ],
)
def test_an_event_that_is_no_stage_notification_is_refused(
    secrets: Any, sink: WebhookSink, event: dict[str, Any], reason: str
) -> None:
    with pytest.raises(slack_notifier.InvalidNotification, match=reason):
        slack_notifier.notify_slack(event, webhook_secret(secrets, sink.url))
    assert sink.posts == []


def test_a_missing_secret_fails_naming_the_secret(secrets: Any) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-webhook-AbCdEf"
    with pytest.raises(
        slack_notifier.SlackDeliveryFailed, match=f"the webhook secret {missing} could not be read"
    ):
        slack_notifier.notify_slack(load_event("sns-notification"), missing)


@pytest.mark.parametrize(
    "value",
    [
        "not a url",
        "ftp://hooks.slack.com/services/T/B/secret-token",
        "http://hooks.slack.com/services/T/B/secret-token",
    ],
)
def test_a_secret_holding_no_https_webhook_fails_without_showing_it(secrets: Any, value: str) -> None:
    arn = webhook_secret(secrets, value)
    with pytest.raises(slack_notifier.SlackDeliveryFailed, match="holds no https webhook URL") as failed:
        slack_notifier.notify_slack(load_event("sns-notification"), arn)
    assert value not in str(failed.value)
    assert failed.value.__context__ is None


def test_a_post_slack_refuses_fails_the_invocation_so_sns_retries(
    secrets: Any, monkeypatch, lambda_context, caplog
) -> None:
    with WebhookSink(HTTPStatus.NOT_FOUND) as refusing:
        monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", webhook_secret(secrets, refusing.url))
        with pytest.raises(
            slack_notifier.SlackDeliveryFailed, match="Slack refused the message: HTTP 404"
        ) as failed:
            slack_notifier.lambda_handler(load_event("sns-notification"), lambda_context)
    assert len(refusing.posts) == 1
    assert refusing.url not in str(failed.value)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


def test_an_unreachable_webhook_fails_without_its_url(secrets: Any) -> None:
    with WebhookSink() as stopped:
        url = stopped.url  # nothing listens once the sink is closed
    with pytest.raises(
        slack_notifier.SlackDeliveryFailed, match="could not be reached: ConnectionRefusedError"
    ) as failed:
        slack_notifier.notify_slack(load_event("sns-notification"), webhook_secret(secrets, url))
    assert url not in str(failed.value)
