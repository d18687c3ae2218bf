"""Endpoint data capture: SageMaker's DataCaptureConfig read as SageMaker reads it, records in its capture format,
and one JSON Lines object per endpoint, variant and hour written to the destination."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from h2o_sagemaker_local.data_capture import CapturedInvocation, CaptureSettings, write
from moto import mock_aws

ROLE = "arn:aws:iam::123456789012:role/model"
CSV, JSON = "text/csv", "application/json"


def config(**capture: object) -> dict:
    data_capture = {
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://bucket/data-capture/",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": [CSV], "JsonContentTypes": [JSON]},
    } | capture
    return {"ProductionVariants": [{"VariantName": "AllTraffic"}], "DataCaptureConfig": data_capture}


def settings(**capture: object) -> CaptureSettings:
    read = CaptureSettings.of("survival-endpoint", config(**capture), {"ExecutionRoleArn": ROLE})
    assert read is not None
    return read


def captured(
    capture: CaptureSettings, received: datetime, request: bytes = b"1,2\n", request_type: str = CSV
) -> CapturedInvocation:
    return CapturedInvocation(capture, received, request, request_type, b"0.25\n", "text/csv; charset=utf-8")


def test_a_configuration_without_capture_or_with_it_disabled_captures_nothing() -> None:
    model = {"ExecutionRoleArn": ROLE}
    assert CaptureSettings.of("e", {"ProductionVariants": [{"VariantName": "v"}]}, model) is None
    assert (
        CaptureSettings.of("e", {"ProductionVariants": [], "DataCaptureConfig": {}}, model) is None
    )  # moto's
    assert CaptureSettings.of("e", config(EnableCapture=False), model) is None
    enabled = settings()  # EnableCapture defaults to true
    assert (enabled.destination, enabled.variant_name, enabled.role_arn) == (
        "s3://bucket/data-capture",
        "AllTraffic",
        ROLE,
    )
    assert settings(CaptureOptions=[{"CaptureMode": "InputAndOutput"}]).modes == {"Input", "Output"}


def test_sampling_takes_the_percentage_of_the_requests() -> None:
    assert not any(settings(InitialSamplingPercentage=0).sampled() for _ in range(1000))
    assert all(settings(InitialSamplingPercentage=100).sampled() for _ in range(1000))
    taken = sum(settings(InitialSamplingPercentage=30).sampled() for _ in range(10_000))
    assert 2500 < taken < 3500


def test_a_record_has_sagemakers_capture_format() -> None:
    record = captured(settings(), datetime(2026, 12, 3, 10, 4, 5, 678000, tzinfo=UTC)).record()
    assert record["captureData"] == {
        "endpointInput": {"observedContentType": CSV, "mode": "INPUT", "data": "1,2\n", "encoding": "CSV"},
        # The media type decides, whatever its parameters.
        "endpointOutput": {
            "observedContentType": "text/csv; charset=utf-8",
            "mode": "OUTPUT",
            "data": "0.25\n",
            "encoding": "CSV",
        },
    }
    assert record["eventMetadata"]["inferenceTime"] == "2026-12-03T10:04:05Z"
    assert len(record["eventMetadata"]["eventId"]) == 36
    assert "inferenceId" not in record["eventMetadata"]
    assert record["eventVersion"] == "0"
    identified = CapturedInvocation(settings(), datetime.now(UTC), b"1\n", CSV, b"0\n", CSV, "passenger-713")
    assert identified.record()["eventMetadata"]["inferenceId"] == "passenger-713"


@pytest.mark.parametrize(
    ("capture", "body", "content_type", "encoding"),
    [
        ({}, b'{"Age": 3}', JSON, "JSON"),
        ({}, b"\x00\xff", "application/x-parquet", "BASE64"),  # not a listed type
        ({}, b"\xff,1\n", CSV, "BASE64"),  # not UTF-8: kept as bytes
        ({"CaptureContentTypeHeader": None}, b"1,2\n", CSV, "BASE64"),  # SageMaker's default without types
    ],
)
def test_bodies_are_text_for_the_listed_content_types_else_base64(
    capture: dict, body: bytes, content_type: str, encoding: str
) -> None:
    payload = captured(settings(**capture), datetime.now(UTC), body, content_type).record()["captureData"][
        "endpointInput"
    ]
    assert payload["encoding"] == encoding
    decoded = base64.b64decode(payload["data"]) if encoding == "BASE64" else payload["data"].encode()
    assert decoded == body


def test_the_capture_options_choose_what_is_kept() -> None:
    output_only = settings(CaptureOptions=[{"CaptureMode": "Output"}])
    assert list(captured(output_only, datetime.now(UTC)).record()["captureData"]) == ["endpointOutput"]


@pytest.fixture
def s3() -> Iterator:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bucket")
        yield client


def test_one_object_per_endpoint_variant_and_hour_under_the_destination(s3) -> None:
    capture = settings()
    ten, eleven = datetime(2026, 12, 3, 10, 59, tzinfo=UTC), datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    invocations = [
        captured(capture, ten, b"1,2\n"),
        captured(capture, eleven),
        captured(capture, ten, b"3,4\n"),
    ]

    assert write(invocations, datetime(2026, 12, 3, 11, 0, 1, 234000, tzinfo=UTC)) == []

    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="bucket")["Contents"])
    assert [key.rsplit("/", 1)[0] for key in keys] == [
        "data-capture/survival-endpoint/AllTraffic/2026/12/03/10",
        "data-capture/survival-endpoint/AllTraffic/2026/12/03/11",
    ]
    assert all(key.rsplit("/", 1)[1].startswith("00-01-234-") and key.endswith(".jsonl") for key in keys)
    lines = s3.get_object(Bucket="bucket", Key=keys[0])["Body"].read().decode().splitlines()
    assert [json.loads(line)["captureData"]["endpointInput"]["data"] for line in lines] == ["1,2\n", "3,4\n"]


def test_a_write_that_fails_loses_the_capture_and_says_why(s3) -> None:
    lost = settings(DestinationS3Uri="s3://no-such-bucket/capture")
    [reason] = write([captured(lost, datetime.now(UTC))], datetime.now(UTC))
    assert reason.startswith(
        "1 captured request(s) not written to s3://no-such-bucket/capture/survival-endpoint/"
    )
    assert "NoSuchBucket" in reason
