"""A rollback alarm's state change is published as a stage notification naming the endpoint, what it serves, the
alarm and its reason; an event that is not an alarm's state change publishes nothing and fails (moto SNS, SQS,
SageMaker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from endpoint_alarm_notifier import InvalidAlarmEvent, lambda_handler
from events import DELETE, alarm_state_change, load_event, serving_endpoint
from moto import mock_aws

ENDPOINT = "survival-endpoint"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The topic's messages as a raw-delivery subscriber receives them: (body, attributes, subject)."""
    with mock_aws():
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", topic)
        serving_endpoint(
            boto3.client("sagemaker"),
            ENDPOINT,
            "survival-endpoint-v4-ab12",
            "survival-model-v4-ab12",
            {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1"},
        )

        def received() -> list[tuple[dict[str, Any], dict[str, str], str]]:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            envelopes = [json.loads(message["Body"]) for message in messages]
            return [
                (
                    json.loads(envelope["Message"]),
                    {name: value["Value"] for name, value in envelope["MessageAttributes"].items()},
                    envelope["Subject"],
                )
                for envelope in envelopes
            ]

        yield received


def test_an_alarm_that_fires_is_published_with_the_endpoint_the_metric_and_the_reason(
    inbox: Any, lambda_context: Any
) -> None:
    result = lambda_handler(alarm_state_change(), lambda_context)

    [(message, attributes, subject)] = inbox()
    assert attributes == {
        "workflow": "EndpointMonitoring",
        "stage": "AlarmRaised",
        "status": "ALARM",
        "endpoint": "survival-endpoint",
    }
    assert subject == "ML workflow: survival-endpoint alarm fired"
    assert message == {
        "workflow": "EndpointMonitoring",
        "stage": "AlarmRaised",
        "status": "ALARM",
        "endpoint": "survival-endpoint",
        "alarmName": "ml-stack-survival-endpoint-invocation-5xx-errors",
        "alarmDescription": (
            "Share of the endpoint's invocations answered with a 5xx by the model; rolls an update back."
        ),
        "metric": "AWS/SageMaker Invocation5XXErrors (Average)",
        "threshold": 0.01,
        "recentDatapoints": [0.25],
        "reason": (
            "Threshold Crossed: 1 out of the last 1 datapoints [0.25 (03/12/26 02:13:00)] was greater than the "
            "threshold (0.01) (minimum 1 datapoint for OK -> ALARM transition)."
        ),
        "previousState": "OK",
        "since": "2026-12-03T02:14:07.409+0000",
        "endpointStatus": "InService",
        "endpointConfigName": "survival-endpoint-v4-ab12",
    }
    assert result["alarmName"] == message["alarmName"]
    assert result["state"] == "ALARM"


def test_an_alarm_back_to_ok_is_published_as_cleared(inbox: Any, lambda_context: Any) -> None:
    lambda_handler(alarm_state_change("OK", previous="ALARM"), lambda_context)

    [(message, attributes, subject)] = inbox()
    assert (attributes["stage"], attributes["status"], message["previousState"]) == (
        "AlarmCleared",
        "OK",
        "ALARM",
    )
    assert subject == "ML workflow: survival-endpoint alarm cleared"


def test_a_state_without_reason_data_and_a_metric_math_alarm_are_published_without_those_fields(
    inbox: Any, lambda_context: Any
) -> None:
    event = load_event(
        "cloudwatch-alarm-state-change",
        {
            "detail.state.reasonData": DELETE,
            "detail.configuration.metrics": [
                {"expression": "m1 / m2", "id": "e1", "label": "error share", "returnData": True}
            ],
        },
    )

    lambda_handler(event, lambda_context)

    [(message, attributes, _)] = inbox()
    assert (message["metric"], message["threshold"], message["recentDatapoints"]) == (None, None, None)
    assert attributes["endpoint"] == "-"  # SNS refuses an empty attribute value
    assert (message["endpointStatus"], message["endpointConfigName"]) == ("NotFound", None)


def test_an_alarm_on_an_endpoint_deleted_since_says_so(inbox: Any, lambda_context: Any) -> None:
    boto3.client("sagemaker").delete_endpoint(EndpointName=ENDPOINT)

    lambda_handler(alarm_state_change("OK", previous="ALARM"), lambda_context)

    [(message, _, _)] = inbox()
    assert (message["endpoint"], message["endpointStatus"], message["endpointConfigName"]) == (
        ENDPOINT,
        "NotFound",
        None,
    )


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (load_event("eventbridge-object-created"), "not a CloudWatch alarm state change: detail.alarmName"),
        (
            alarm_state_change("INSUFFICIENT_DATA"),
            "went to INSUFFICIENT_DATA: only ALARM and OK are notified",
        ),
        (
            load_event("cloudwatch-alarm-state-change", {"detail.state.reasonData": "{not json"}),
            "not a CloudWatch alarm state change: detail.state.reasonData",
        ),
    ],
)
def test_an_event_that_is_no_alarm_change_fails_and_publishes_nothing(
    inbox: Any, lambda_context: Any, event: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidAlarmEvent, match=reason.replace("(", r"\(")):
        lambda_handler(event, lambda_context)

    assert inbox() == []
