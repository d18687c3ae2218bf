"""Notify when one of the endpoint's rollback alarms fires, and when it clears.

The alarms roll an endpoint update back; between updates they only change state, so an endpoint answering with
errors or slowly at night would go unnoticed. EventBridge delivers CloudWatch's "CloudWatch Alarm State Change"
events of the stack's two alarms: entering ALARM (rule AlarmRaised) and leaving it for OK (rule AlarmCleared).
Each is published on the topic as a stage notification (``AlarmRaised``/``AlarmCleared``, status the new state),
with what the endpoint serves at that moment (its status and endpoint configuration: ``Updating`` means a
deployment is under way, which SageMaker rolls back on these alarms).

Neither the alarm nor the rule can publish there themselves: the topic is encrypted with the AWS managed SNS key,
whose policy admits only principals of the account, not CloudWatch's or EventBridge's service principal.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError
from workflow_common.service_errors import is_not_found

logger = Logger()
tracer = Tracer()

WORKFLOW = "EndpointMonitoring"
STAGES = {"ALARM": "AlarmRaised", "OK": "AlarmCleared"}  # the new state -> the stage published


class InvalidAlarmEvent(ValueError):
    """The event is not a state change of a metric alarm; nothing was published."""


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: str
    reason: str
    timestamp: str
    # CloudWatch's reason data is a JSON document in a string; a new alarm's state has none.
    reason_data: Json[dict[str, Any]] | None = Field(default=None, alias="reasonData")


class MetricDefinition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str
    dimensions: dict[str, str] = Field(default_factory=dict)


class MetricStat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metric: MetricDefinition
    stat: str


class AlarmMetric(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metric_stat: MetricStat | None = Field(default=None, alias="metricStat")


class AlarmConfiguration(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: str | None = None
    metrics: list[AlarmMetric] = Field(default_factory=list)


class AlarmStateChange(BaseModel):
    """The event's detail, as much of it as the notification carries; CloudWatch sends more."""

    model_config = ConfigDict(extra="ignore")

    alarm_name: str = Field(alias="alarmName")
    state: AlarmState
    previous_state: AlarmState = Field(alias="previousState")
    configuration: AlarmConfiguration = Field(default_factory=AlarmConfiguration)

    @property
    def metric(self) -> MetricStat | None:
        """The metric a single-metric alarm watches (None for metric math)."""
        stats = [item.metric_stat for item in self.configuration.metrics if item.metric_stat is not None]
        return stats[0] if len(stats) == 1 else None


class AlarmStateChangeEvent(EventBridgeModel):
    detail: AlarmStateChange


def alarm_change(event: dict[str, Any]) -> AlarmStateChange:
    try:
        return parse(event=event, model=AlarmStateChangeEvent).detail
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidAlarmEvent(f"not a CloudWatch alarm state change: {field}: {first['msg']}") from None


def serving(sagemaker: Any, endpoint: str) -> dict[str, str | None]:
    """The endpoint's status and configuration now; ``NotFound`` when it no longer exists (or none is named)."""
    if not endpoint:
        return {"endpointStatus": "NotFound", "endpointConfigName": None}
    try:
        description = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        if not is_not_found(error):
            raise  # Lambda retries; the last failure reaches the topic (the on-failure destination)
        return {"endpointStatus": "NotFound", "endpointConfigName": None}
    return {
        "endpointStatus": description["EndpointStatus"],
        "endpointConfigName": description["EndpointConfigName"],
    }


def notification(change: AlarmStateChange, sagemaker: Any) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The subject, JSON message and message attributes of the change's stage notification."""
    stage = STAGES.get(change.state.value)
    if stage is None:
        raise InvalidAlarmEvent(
            f"alarm {change.alarm_name} went to {change.state.value}: only ALARM and OK are notified"
        )
    metric = change.metric
    endpoint = metric.metric.dimensions.get("EndpointName", "") if metric else ""
    reason_data = change.state.reason_data or {}
    message = {
        "workflow": WORKFLOW,
        "stage": stage,
        "status": change.state.value,
        "endpoint": endpoint,
        "alarmName": change.alarm_name,
        "alarmDescription": change.configuration.description,
        "metric": f"{metric.metric.namespace} {metric.metric.name} ({metric.stat})" if metric else None,
        "threshold": reason_data.get("threshold"),
        "recentDatapoints": reason_data.get("recentDatapoints"),
        "reason": change.state.reason,
        "previousState": change.previous_state.value,
        "since": change.state.timestamp,
        **serving(sagemaker, endpoint),
    }
    # At most 90 characters (an endpoint name has at most 63): SNS takes subjects under 100.
    subject = (
        f"ML workflow: {endpoint or 'endpoint'} alarm {'fired' if stage == 'AlarmRaised' else 'cleared'}"
    )
    attributes = {"workflow": WORKFLOW, "stage": stage, "status": change.state.value, "endpoint": endpoint}
    return subject, message, attributes


@tracer.capture_method
def publish(sns: Any, sagemaker: Any, topic_arn: str, change: AlarmStateChange) -> str:
    subject, message, attributes = notification(change, sagemaker)
    message_id: str = sns.publish(
        TopicArn=topic_arn,
        Subject=subject,
        Message=json.dumps(message),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value or "-"} for name, value in attributes.items()
        },
    )["MessageId"]
    logger.info(
        "Alarm state change notified",
        extra={"alarm": change.alarm_name, "stage": message["stage"], "endpoint": message["endpoint"]},
    )
    return message_id


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    try:
        change = alarm_change(event)
        message_id = publish(
            boto3.client("sns"), boto3.client("sagemaker"), os.environ["NOTIFICATION_TOPIC_ARN"], change
        )
    except InvalidAlarmEvent as error:
        logger.error("Alarm state change not notified", extra={"reason": str(error)})
        raise
    return {"alarmName": change.alarm_name, "state": change.state.value, "messageId": message_id}
