"""Post the workflow's stage notifications to Slack through an incoming webhook.

Subscribed to the stack's notification topic when the SlackWebhookSecretArn parameter is set. The webhook URL
is a secret (whoever holds it can post to the channel), so it is read from Secrets Manager and never logged: a
secret that cannot be read or holds no webhook URL, or a post Slack refuses, fails the invocation with a reason
that names neither, and SNS retries the delivery.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SnsModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

logger = Logger()
tracer = Tracer()

POST_TIMEOUT_SECONDS = 10
CAUSE_MAX_CHARACTERS = 1500  # a failure's cause can be a whole execution description: Slack shows the start
HEADLINES = {
    "RunStarted": ":arrow_forward: Run started",
    "TuningCompleted": ":white_check_mark: Tuning completed",
    "GateDecision": ":scales: Quality gate decision",
    "Deployed": ":rocket: Endpoint deployed",
    "NoNewData": ":zzz: No new data",
    "TransformCompleted": ":page_facing_up: Batch transform completed",
    "Failed": ":x: Failed",
    "AlarmRaised": ":rotating_light: Endpoint alarm fired",
    "AlarmCleared": ":large_green_circle: Endpoint alarm cleared",
}
# Named in the headline, or not for people.
NOT_LISTED = {"workflow", "stage", "status", "endpoint", "execution"}


class SlackDeliveryFailed(RuntimeError):
    """The message could not be posted; the reason names neither the secret's value nor the webhook URL."""


class InvalidNotification(ValueError):
    """The event is not an SNS notification carrying a stage message."""


def webhook_url(secret_arn: str) -> str:
    """The webhook URL the secret holds (its SecretString, as Slack shows it)."""
    try:
        secret = parameters.get_secret(secret_arn, max_age=300)
    except parameters.exceptions.GetParameterError as error:  # the service's message, never the value
        raise SlackDeliveryFailed(f"the webhook secret {secret_arn} could not be read: {error}") from None
    url = secret.strip() if isinstance(secret, str) else ""
    parts = urlsplit(url)
    # Slack's webhooks are https; plain http only to this machine, where a test's sink listens.
    local = parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}
    if not parts.netloc or not (parts.scheme == "https" or local):
        raise SlackDeliveryFailed(
            f"the webhook secret {secret_arn} holds no https webhook URL: set its value to the incoming-webhook URL"
        )
    return url


def slack_text(subject: str | None, message: dict[str, Any]) -> str:
    """A readable Slack message: the stage, endpoint and workflow, then each detail on its own line."""
    stage = str(message.get("stage", ""))
    headline = HEADLINES.get(stage, subject or stage or "Notification")
    lines = [f"*{headline}*: endpoint `{message.get('endpoint', '?')}` ({message.get('workflow', '?')})"]
    for name, value in message.items():
        if name in NOT_LISTED:
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if len(text) > CAUSE_MAX_CHARACTERS:
            text = text[:CAUSE_MAX_CHARACTERS] + " …"
        lines.append(f"• {name}: `{text}`" if name != "cause" else f"• cause: {text}")
    if "execution" in message:
        lines.append(f"• execution: {message['execution']}")
    return "\n".join(lines)


def stage_messages(event: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """Each record's subject and JSON message."""
    try:
        notification = parse(event=event, model=SnsModel)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidNotification(f"not an SNS notification: {field}: {first['msg']}") from None
    messages = []
    for record in notification.Records:
        try:
            # Typed for parser envelopes too; SNS sends a string.
            message = json.loads(str(record.Sns.Message))
        except json.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            raise InvalidNotification(f"message {record.Sns.MessageId} is not a JSON stage message")
        messages.append((record.Sns.Subject, message))
    return messages


def post(url: str, text: str) -> None:
    request = urllib.request.Request(  # the scheme is checked in webhook_url
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise SlackDeliveryFailed(f"Slack refused the message: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise SlackDeliveryFailed(f"the webhook could not be reached: {type(reason).__name__}") from None


def notify_slack(event: dict[str, Any], secret_arn: str) -> int:
    """Posts each record's message; returns how many were posted."""
    messages = stage_messages(event)
    url = webhook_url(secret_arn)
    for subject, message in messages:
        post(url, slack_text(subject, message))
        logger.info("Posted to Slack", stage=message.get("stage"), endpoint=message.get("endpoint"))
    return len(messages)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    try:
        return {"posted": notify_slack(event, os.environ["SLACK_WEBHOOK_SECRET_ARN"])}
    except (SlackDeliveryFailed, InvalidNotification) as error:
        logger.error("Slack delivery failed", reason=str(error))
        raise
