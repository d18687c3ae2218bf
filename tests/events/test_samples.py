"""The sample events are what AWS sends: each one, as the tests build it, parses with Powertools' models of
that event, so a handler tested with them meets the same shape in AWS."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    CloudFormationCustomResourceCreateModel,
    CloudFormationCustomResourceDeleteModel,
    CloudFormationCustomResourceUpdateModel,
    EventBridgeModel,
    S3EventNotificationEventBridgeModel,
    S3Model,
    SnsModel,
)

from events import (
    DELETE,
    alarm_state_change,
    custom_resource_request,
    eventbridge_object_created,
    load_event,
    model_package_state_change,
    s3_object_created,
    sns_notification,
)

KEY = "manifests/titanic run/manifest.json"


def test_the_s3_notification_carries_the_upload_url_encoded() -> None:
    event = S3Model.model_validate(s3_object_created(KEY, bucket="other-bucket", records=2))
    assert [record.s3.bucket.name for record in event.Records] == ["other-bucket", "other-bucket"]
    assert unquote_plus(event.Records[0].s3.object.key) == KEY
    assert event.Records[0].s3.object.key != KEY


def test_the_eventbridge_event_carries_the_same_upload_unencoded() -> None:
    event = S3EventNotificationEventBridgeModel.model_validate(eventbridge_object_created(KEY))
    assert event.detail.object.key == KEY
    assert event.detail_type == "Object Created"


def test_the_sns_delivery_carries_the_stage_message_as_a_json_string_with_its_attributes() -> None:
    event = SnsModel.model_validate(sns_notification({"stage": "Failed"}, subject="failed"))
    [record] = event.Records
    assert (record.Sns.Message, record.Sns.Subject) == ('{"stage": "Failed"}', "failed")
    assert set(record.Sns.MessageAttributes or {}) == {"workflow", "stage", "status", "endpoint"}


@pytest.mark.parametrize(
    ("request_type", "model"),
    [
        ("Create", CloudFormationCustomResourceCreateModel),
        ("Update", CloudFormationCustomResourceUpdateModel),
        ("Delete", CloudFormationCustomResourceDeleteModel),
    ],
)
def test_custom_resource_requests_have_cloudformations_shape(request_type: str, model: type) -> None:
    physical_id = None if request_type == "Create" else "ssm-parameters:/ml-project"
    event = custom_resource_request(request_type, "http://127.0.0.1:9/response", physical_id, Revision="2")
    parsed = model.model_validate(event)
    assert parsed.request_type == request_type
    assert parsed.resource_properties["Revision"] == "2"


def test_overrides_set_and_remove_fields_by_dotted_path() -> None:
    event = load_event(
        "s3-object-created", {"Records.0.s3.object.size": 99, "Records.0.userIdentity": DELETE}
    )
    assert event["Records"][0]["s3"]["object"]["size"] == 99
    assert "userIdentity" not in event["Records"][0]
    assert load_event("s3-object-created")["Records"][0]["s3"]["object"]["size"] == 10


def test_the_model_package_event_is_eventbridges_envelope_around_the_version() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/survival-endpoint-1a2b3c4d/7"
    approval = EventBridgeModel.model_validate(model_package_state_change(arn))
    assert (approval.source, approval.detail_type, approval.resources) == (
        "aws.sagemaker",
        "SageMaker Model Package State Change",
        [arn],
    )
    assert approval.detail["ModelPackageVersion"] == 7
    assert approval.detail["UpdatedModelPackageFields"] == ["ModelApprovalStatus"]
    creation = EventBridgeModel.model_validate(
        model_package_state_change(arn, "Approved", updated_fields=None)
    )
    assert "UpdatedModelPackageFields" not in creation.detail


def test_the_alarm_event_carries_both_states_with_their_reason_data_as_json_text() -> None:
    raised = EventBridgeModel.model_validate(alarm_state_change())
    assert (raised.source, raised.detail_type) == ("aws.cloudwatch", "CloudWatch Alarm State Change")
    assert raised.resources == [
        f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{raised.detail['alarmName']}"
    ]
    assert (raised.detail["previousState"]["value"], raised.detail["state"]["value"]) == ("OK", "ALARM")
    assert json.loads(raised.detail["state"]["reasonData"])["recentDatapoints"] == [0.25]
    cleared = alarm_state_change("OK", previous="ALARM")["detail"]
    assert (cleared["previousState"]["value"], cleared["state"]["value"]) == ("ALARM", "OK")
