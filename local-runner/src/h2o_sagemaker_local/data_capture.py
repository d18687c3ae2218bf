"""Endpoint data capture as SageMaker does it: an endpoint configuration's DataCaptureConfig makes the endpoint
record a sample of its requests and responses as JSON Lines in S3, written as the model's execution role.

The record and the object key follow SageMaker's documented format (model-monitor-data-capture-endpoint.html,
the capture files Model Monitor reads)::

    <DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-fff>-<uuid>.jsonl
    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "...",
     "encoding": "CSV"}, "endpointOutput": {...}}, "eventMetadata": {"eventId": "<uuid>",
     "inferenceTime": "2026-12-03T10:00:00Z"}, "eventVersion": "0"}

A body is kept as text (``CSV`` or ``JSON``) when its media type is among CaptureContentTypeHeader's CSV or JSON
content types, else base64-encoded (``BASE64``), SageMaker's default. The proxy only queues what it sampled; the
records are encoded and written off the request path, by the flusher that publishes the endpoint's metrics, and
once more when the endpoint stops. Only answered requests (200) are captured here: what SageMaker captures of a
failed invocation is not documented.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from botocore.exceptions import ClientError

from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.training import split_s3_uri


def endpoint_folder(destination: str, endpoint_name: str) -> str:
    """Where an endpoint's captured data goes under a DestinationS3Uri (its variants' folders below)."""
    return f"{destination.rstrip('/')}/{endpoint_name}"


@dataclass(frozen=True)
class CaptureSettings:
    """One endpoint configuration's DataCaptureConfig, for the endpoint and variant it serves."""

    endpoint_name: str
    variant_name: str
    destination: str  # DestinationS3Uri, without a trailing slash
    sampling_percentage: int
    modes: frozenset[str]  # Input, Output
    csv_content_types: frozenset[str]
    json_content_types: frozenset[str]
    role_arn: str | None  # the model's execution role, which writes the captured data

    @classmethod
    def of(cls, endpoint_name: str, config: dict[str, Any], model: dict[str, Any]) -> CaptureSettings | None:
        """The configuration's capture settings; None when it captures nothing."""
        capture = config.get("DataCaptureConfig") or {}
        if not capture or not capture.get("EnableCapture", True):  # EnableCapture defaults to true
            return None
        modes = {option["CaptureMode"] for option in capture["CaptureOptions"]}
        if "InputAndOutput" in modes:
            modes |= {"Input", "Output"}
        headers = capture.get("CaptureContentTypeHeader") or {}
        return cls(
            endpoint_name=endpoint_name,
            variant_name=config["ProductionVariants"][0]["VariantName"],
            destination=capture["DestinationS3Uri"].rstrip("/"),
            sampling_percentage=capture["InitialSamplingPercentage"],
            modes=frozenset(modes & {"Input", "Output"}),
            csv_content_types=frozenset(headers.get("CsvContentTypes", ())),
            json_content_types=frozenset(headers.get("JsonContentTypes", ())),
            role_arn=model.get("ExecutionRoleArn"),
        )

    def sampled(self) -> bool:
        """Whether this request is captured: SageMaker samples requests at random."""
        return random.random() * 100 < self.sampling_percentage

    def payload(self, mode: str, body: bytes, content_type: str) -> dict[str, str]:
        media_type = content_type.split(";", 1)[0].strip().lower()
        as_text = (
            "CSV"
            if media_type in self.csv_content_types
            else "JSON"
            if media_type in self.json_content_types
            else None
        )
        data, encoding = _encoded(body, as_text)
        return {"observedContentType": content_type, "mode": mode.upper(), "data": data, "encoding": encoding}


def _encoded(body: bytes, as_text: str | None) -> tuple[str, str]:
    """The body and its encoding: as text (``as_text``) when its content type is listed and it is UTF-8, else
    base64-encoded."""
    if as_text is not None:
        with contextlib.suppress(UnicodeDecodeError):
            return body.decode("utf-8"), as_text
    return base64.b64encode(body).decode("ascii"), "BASE64"


@dataclass(frozen=True)
class CapturedInvocation:
    """What the proxy queues for a sampled request: encoded and written later."""

    settings: CaptureSettings
    received: datetime  # UTC
    request: bytes
    request_content_type: str
    response: bytes
    response_content_type: str
    inference_id: str | None = None  # the request's InferenceId

    def record(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if "Input" in self.settings.modes:
            data["endpointInput"] = self.settings.payload("Input", self.request, self.request_content_type)
        if "Output" in self.settings.modes:
            data["endpointOutput"] = self.settings.payload(
                "Output", self.response, self.response_content_type
            )
        metadata = {"eventId": str(uuid.uuid4())}
        if self.inference_id is not None:
            metadata["inferenceId"] = self.inference_id
        metadata["inferenceTime"] = self.received.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}

    @property
    def folder(self) -> str:
        """The object's folder: the configuration's destination, endpoint, variant and the request's hour."""
        settings = self.settings
        return (
            f"{endpoint_folder(settings.destination, settings.endpoint_name)}/{settings.variant_name}/"
            f"{self.received:%Y/%m/%d/%H}"
        )


def write(captured: Iterable[CapturedInvocation], now: datetime) -> list[str]:
    """One JSON Lines object per folder, written as the model's execution role; the reasons of failed writes
    (the requests were served all the same, as on SageMaker, and their capture is lost)."""
    failures = []

    def writer(invocation: CapturedInvocation) -> tuple[str, str]:
        return invocation.folder, invocation.settings.role_arn or ""

    ordered = sorted(captured, key=lambda invocation: (writer(invocation), invocation.received))
    for (folder, _), group in groupby(ordered, key=writer):
        invocations = list(group)
        bucket, prefix = split_s3_uri(folder)
        key = f"{prefix}/{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
        body = "".join(json.dumps(invocation.record()) + "\n" for invocation in invocations)
        try:
            s3 = enforcement.role_client(
                "s3", invocations[0].settings.role_arn, "sagemaker.amazonaws.com", "SageMaker"
            )
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        except (ClientError, enforcement.AccessDenied) as error:
            failures.append(
                f"{len(invocations)} captured request(s) not written to s3://{bucket}/{key}: {error}"
            )
    return failures
