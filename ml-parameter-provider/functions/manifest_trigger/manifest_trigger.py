"""Start a tuning-and-deployment run when a manifest.json lands under the manifest prefix.

Works with both ways S3 can deliver the event: an S3 event notification (used by the local pipeline) and an
EventBridge "Object Created" event (used by the deployed stack, so other notifications on the bucket stay
untouched). A manifest or parameter file that does not validate is rejected with a notification naming the
field; nothing is started. AWS errors propagate so Lambda's asynchronous retries can handle them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from workflow_common.execution_input import RunIdentity, StackResources, build_execution_input
from workflow_common.ml_parameters import (
    Hyperparameters,
    Manifest,
    MlParameters,
    ParameterFileError,
    decode_json,
    parse_document,
)
from workflow_common.warm_start import find_parents

logger = Logger()
tracer = Tracer()


@dataclass(frozen=True)
class Settings:
    parameter_store_path: str
    state_machine_arn: str
    data_bucket: str
    notification_topic_arn: str
    stack: StackResources
    owner_stack_name: str  # the tag value on the stack's tuning jobs: where warm start parents are found

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            parameter_store_path=os.environ["PARAMETER_STORE_PATH"],
            state_machine_arn=os.environ["TARGET_STATE_MACHINE_ARN"],
            data_bucket=os.environ["DATA_BUCKET_NAME"],
            notification_topic_arn=os.environ["NOTIFICATION_TOPIC_ARN"],
            stack=StackResources.from_environment(),
            owner_stack_name=os.environ["OWNER_STACK_NAME"],
        )


def manifest_uploads(event: dict[str, Any]) -> list[RunIdentity]:
    """The uploaded manifest objects, from either event shape."""
    if "Records" in event:
        return [
            RunIdentity(
                bucket=record.s3.bucket.name,
                key=unquote_plus(record.s3.get_object.key),  # S3 URL-encodes keys in notifications
                object_version=record.s3.get_object.version_id or record.s3.get_object.sequencer,
                event_time=datetime.fromisoformat(record.event_time.replace("Z", "+00:00")),
            )
            for record in S3Event(event).records
        ]
    notification = S3EventBridgeNotificationEvent(event)
    s3_object = notification.detail.object
    return [
        RunIdentity(
            bucket=notification.detail.bucket.name,
            key=s3_object.key,  # Powertools already unquotes EventBridge keys
            object_version=s3_object.get("version-id") or s3_object.sequencer,
            event_time=datetime.fromisoformat(notification.time.replace("Z", "+00:00")),
        )
    ]


def load_manifest(s3: Any, run: RunIdentity, data_bucket: str) -> Manifest:
    body = s3.get_object(Bucket=run.bucket, Key=run.key)["Body"].read()
    manifest = parse_document(Manifest, decode_json(body, run.key), run.key)
    manifest.check_bucket(data_bucket)
    return manifest


def load_parameters(path: str) -> tuple[MlParameters, Hyperparameters]:
    documents = parameters.get_parameters(path, max_age=0)
    missing = [name for name in ("ml-parameters", "hyperparameters") if name not in documents]
    if missing:
        raise ParameterFileError(
            f"no {' or '.join(missing)} under SSM path {path}: deploy the ml-parameter-provider stack "
            "with the parameter files in S3 first"
        )
    return (
        parse_document(
            MlParameters, decode_json(documents["ml-parameters"], "ml-parameters"), "ml-parameters"
        ),
        parse_document(
            Hyperparameters,
            decode_json(documents["hyperparameters"], "hyperparameters"),
            "hyperparameters",
        ),
    )


def add_warm_start(
    sagemaker: Any, execution_input: dict[str, Any], ml_parameters: MlParameters, owner_stack_name: str
) -> None:
    """With ml-parameters' warmStart, the run's tuning starts from the stack's latest compatible tuning jobs."""
    if ml_parameters.warm_start is None:
        return
    tuning = execution_input["tuning"]
    search = find_parents(
        sagemaker, tuning, execution_input["runId"], owner_stack_name, ml_parameters.warm_start.max_parents
    )
    for name, reason in search.skipped.items():
        logger.info(
            "Tuning job not used as a warm start parent", extra={"tuning_job": name, "reason": reason}
        )
    config = search.warm_start_config()
    if config:
        tuning["warmStartConfig"] = config
    logger.info("Warm start", extra={"parents": search.parents, "run_id": execution_input["runId"]})


def start_run(sfn: Any, state_machine_arn: str, execution_input: dict[str, Any]) -> str:
    """Start the run; a duplicate delivery of the same upload finds its run already started."""
    name = execution_input["tuning"]["hyperParameterTuningJobName"]
    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        logger.info(
            "Run already started for this upload; duplicate event ignored", extra={"execution_arn": arn}
        )
        return arn
    return response["executionArn"]


def notify_rejection(sns: Any, topic_arn: str, run: RunIdentity, reason: str) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject="ML workflow: manifest rejected",
        Message=json.dumps(
            {"workflow": "ml-parameter-provider", "manifest": f"s3://{run.bucket}/{run.key}", "error": reason}
        ),
    )


@tracer.capture_method
def handle_upload(
    run: RunIdentity, settings: Settings, s3: Any, sfn: Any, sns: Any, sagemaker: Any
) -> dict[str, str]:
    try:
        manifest = load_manifest(s3, run, settings.data_bucket)
        ml_parameters, hyperparameters = load_parameters(settings.parameter_store_path)
        execution_input = build_execution_input(ml_parameters, hyperparameters, manifest, run, settings.stack)
    except ParameterFileError as error:
        logger.error("Manifest rejected; no run started", extra={"key": run.key, "reason": str(error)})
        notify_rejection(sns, settings.notification_topic_arn, run, str(error))
        return {"manifest": f"s3://{run.bucket}/{run.key}", "status": "REJECTED", "reason": str(error)}
    add_warm_start(sagemaker, execution_input, ml_parameters, settings.owner_stack_name)
    execution_arn = start_run(sfn, settings.state_machine_arn, execution_input)
    logger.info("Run started", extra={"execution_arn": execution_arn, "run_id": execution_input["runId"]})
    return {"manifest": f"s3://{run.bucket}/{run.key}", "status": "STARTED", "executionArn": execution_arn}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    settings = Settings.from_environment()
    s3, sfn, sns = boto3.client("s3"), boto3.client("stepfunctions"), boto3.client("sns")
    sagemaker = boto3.client("sagemaker")
    return {
        "runs": [handle_upload(run, settings, s3, sfn, sns, sagemaker) for run in manifest_uploads(event)]
    }
