"""Plan a scheduled retraining: start a run when data newer than the watermark has arrived.

EventBridge Scheduler invokes this on each tick of the stack's RetrainingSchedule with the tick's time
(``<aws.scheduler.scheduled-time>``), so a run depends on the schedule's clock, never on the wall clock. The
objects under ``retraining.trainingDataPrefixes`` (ml-parameters.json) are compared with the data watermark in
SSM (the newest object time of the last completed run):

- none newer: the tick ends ``NO_NEW_DATA`` with a notification; nothing is written.
- some newer: a manifest is written under the manifest prefix, so the run starts the way an uploaded manifest
  starts one (same trigger, same validation, same duplicate guard). Its training channel is a SageMaker
  ``ManifestFile`` listing exactly the objects of the training window; the candidate watermark goes in the
  manifest, and the parent state machine records it only when the run completes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from workflow_common.ml_parameters import (
    Manifest,
    MlParameters,
    ParameterFileError,
    Retraining,
    decode_json,
    parse_document,
)

logger = Logger()
tracer = Tracer()

WORKFLOW = "RetrainingPlanner"
# SageMaker reads a ManifestFile channel's S3Uri as the list of objects; named so no manifest suffix matches it.
TRAINING_FILE_LIST = "training-data.manifest"


class ScheduledTick(BaseModel):
    """The schedule target's Input, with Scheduler's context attribute filled in."""

    model_config = ConfigDict(extra="forbid")

    scheduled_time: AwareDatetime = Field(alias="scheduledTime")


@dataclass(frozen=True)
class Settings:
    parameter_store_path: str
    data_bucket: str
    manifest_key_prefix: str
    manifest_key_suffix: str
    notification_topic_arn: str

    @property
    def watermark_parameter(self) -> str:
        return f"{self.parameter_store_path}/data-watermark"

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            parameter_store_path=os.environ["PARAMETER_STORE_PATH"],
            data_bucket=os.environ["DATA_BUCKET_NAME"],
            manifest_key_prefix=os.environ["MANIFEST_KEY_PREFIX"],
            manifest_key_suffix=os.environ["MANIFEST_KEY_SUFFIX"],
            notification_topic_arn=os.environ["NOTIFICATION_TOPIC_ARN"],
        )


@dataclass(frozen=True)
class DataObject:
    key: str
    last_modified: datetime


def parse_tick(event: dict[str, Any]) -> datetime:
    return parse_document(ScheduledTick, event, "schedule input").scheduled_time


def load_retraining(ssm: Any, settings: Settings) -> tuple[MlParameters, Retraining]:
    name = f"{settings.parameter_store_path}/ml-parameters"
    document = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    params = parse_document(MlParameters, decode_json(document, "ml-parameters"), "ml-parameters")
    retraining = params.retraining
    if retraining is None:
        raise ParameterFileError(
            "ml-parameters: retraining is not set: give retraining.trainingDataPrefixes to retrain on a schedule"
        )
    for uri in [*retraining.training_data_prefixes, retraining.validation_s3_uri]:
        if uri and not uri.startswith(f"s3://{settings.data_bucket}/"):
            raise ParameterFileError(
                f"ml-parameters: retraining: {uri} is outside the data bucket s3://{settings.data_bucket}/"
            )
    return params, retraining


def read_watermark(ssm: Any, name: str) -> datetime | None:
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None  # no run has completed yet
    return datetime.fromisoformat(value)


def list_data(s3: Any, settings: Settings, prefixes: list[str]) -> list[DataObject]:
    """The data objects under the prefixes (folder markers and manifests left out), oldest first."""
    found: dict[str, DataObject] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for uri in prefixes:
        prefix = uri.removeprefix(f"s3://{settings.data_bucket}/")
        for page in paginator.paginate(Bucket=settings.data_bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/") or key.startswith(settings.manifest_key_prefix):
                    continue
                found[key] = DataObject(key, item["LastModified"])
    return sorted(found.values(), key=lambda item: (item.last_modified, item.key))


def training_window(objects: list[DataObject], tick: datetime, days: int) -> list[DataObject]:
    """The objects modified in the ``days`` before the tick; later ones belong to a later tick."""
    start = tick - timedelta(days=days)
    return [item for item in objects if start < item.last_modified <= tick]


def run_manifest(
    settings: Settings, retraining: Retraining, file_list_uri: str, watermark: datetime
) -> dict[str, Any]:
    channels: list[dict[str, Any]] = [
        {
            "channelName": "training",
            "s3DataSource": {"S3Uri": file_list_uri, "S3DataType": "ManifestFile"},
        }
    ]
    if retraining.validation_s3_uri:
        channels.append(
            {"channelName": "validation", "s3DataSource": {"S3Uri": retraining.validation_s3_uri}}
        )
    document = {"channels": channels, "dataWatermark": watermark.isoformat()}
    # The trigger validates it again; checked here too, so a bad setting fails the tick, not a later upload.
    parse_document(Manifest, document, "manifest.json").check_bucket(settings.data_bucket)
    return document


def notify(
    sns: Any, settings: Settings, stage: str, status: str, endpoint: str, body: dict[str, Any]
) -> None:
    """A stage message in the notification convention: JSON body, workflow/stage/status/endpoint attributes."""
    attributes = {"workflow": WORKFLOW, "stage": stage, "status": status, "endpoint": endpoint}
    sns.publish(
        TopicArn=settings.notification_topic_arn,
        Subject=f"ML workflow: retraining {status.replace('_', ' ').lower()}",
        Message=json.dumps({"workflow": WORKFLOW, "stage": stage, "status": status, **body}),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value or "-"} for name, value in attributes.items()
        },
    )


@tracer.capture_method
def plan(tick: datetime, settings: Settings, s3: Any, ssm: Any, sns: Any) -> dict[str, Any]:
    params, retraining = load_retraining(ssm, settings)
    endpoint = params.endpoint_name
    watermark = read_watermark(ssm, settings.watermark_parameter)
    window = training_window(
        list_data(s3, settings, retraining.training_data_prefixes), tick, retraining.training_window_days
    )
    if not window or (watermark is not None and window[-1].last_modified <= watermark):
        logger.info("No new data since the watermark; no run", extra={"watermark": str(watermark)})
        notify(
            sns,
            settings,
            "NoNewData",
            "NO_NEW_DATA",
            endpoint,
            {
                "scheduledTime": tick.isoformat(),
                "dataWatermark": watermark.isoformat() if watermark else None,
            },
        )
        return {"status": "NO_NEW_DATA", "dataWatermark": watermark.isoformat() if watermark else None}
    run_folder = f"{settings.manifest_key_prefix}scheduled/{tick:%Y%m%dT%H%M%SZ}/"
    manifest_key = f"{run_folder}{settings.manifest_key_suffix}"
    try:
        s3.head_object(Bucket=settings.data_bucket, Key=manifest_key)
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey"):
            raise
    else:  # Scheduler delivers at least once: this tick's run was already planned
        logger.info("Tick already planned; duplicate delivery ignored", extra={"manifest": manifest_key})
        return {"status": "ALREADY_PLANNED", "manifest": f"s3://{settings.data_bucket}/{manifest_key}"}
    file_list_key = f"{run_folder}{TRAINING_FILE_LIST}"
    file_list = [{"prefix": f"s3://{settings.data_bucket}/"}, *(item.key for item in window)]
    manifest = run_manifest(
        settings, retraining, f"s3://{settings.data_bucket}/{file_list_key}", window[-1].last_modified
    )
    s3.put_object(Bucket=settings.data_bucket, Key=file_list_key, Body=json.dumps(file_list).encode())
    # Last: its upload starts the run, so the file list it names is already there.
    s3.put_object(Bucket=settings.data_bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
    logger.info("Run planned", extra={"manifest": manifest_key, "files": len(window)})
    return {
        "status": "PLANNED",
        "manifest": f"s3://{settings.data_bucket}/{manifest_key}",
        "files": [item.key for item in window],
        "dataWatermark": manifest["dataWatermark"],
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = Settings.from_environment()
    s3, ssm, sns = boto3.client("s3"), boto3.client("ssm"), boto3.client("sns")
    try:
        tick = parse_tick(event)
        return plan(tick, settings, s3, ssm, sns)
    except ParameterFileError as error:
        logger.error("Retraining not planned", extra={"reason": str(error)})
        notify(sns, settings, "Failed", "REJECTED", "", {"error": str(error)})
        return {"status": "REJECTED", "reason": str(error)}
