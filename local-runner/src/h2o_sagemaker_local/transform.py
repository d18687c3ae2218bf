"""One SageMaker batch transform job: the model's image serves on a loopback port as SageMaker runs it for batch
transform, and each input object goes through its /invocations in mini-batches into an ``.out`` object.

SageMaker's contract (your-algorithms-batch-code.html, API_CreateTransformJob, API_TransformInput,
API_TransformOutput):
- the container runs ``serve`` with the model's and the job's Environment, ``SAGEMAKER_BATCH=true``, and
  ``SAGEMAKER_MAX_PAYLOAD_IN_MB``, ``SAGEMAKER_BATCH_STRATEGY`` and ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS`` for
  the settings the job makes;
- once /ping answers 200, the settings the job leaves unset come from ``GET /execution-parameters``, if the
  container answers it, else MaxConcurrentTransforms 1 and MaxPayloadInMB 6 (BatchStrategy: MultiRecord, as the
  SageMaker SDK's local mode has it);
- every object under the S3Prefix is read (gunzipped with CompressionType Gzip) and split by SplitType (Line: a
  record per line; None: the object is one record); a mini-batch is one record (SingleRecord) or as many as fit in
  MaxPayloadInMB (MultiRecord; 0: no limit); each goes to POST /invocations with the ContentType and the Accept,
  MaxConcurrentTransforms at once;
- each object's responses, in order, become ``<S3OutputPath>/<object's path under the prefix>.out``: with
  AssembleWith Line each response is followed by a newline (its own trailing line break removed first, as the
  SageMaker SDK's local mode assembles them), with None they are joined as they are.

Data moves as the model's execution role, as SageMaker moves it. Locally one model server does the work of
every instance (the outputs are the same), a failed request fails the job at once (no InvocationsMaxRetries),
and what this emulation does not do is refused when the job is created: other S3DataTypes and SplitTypes, and
DataProcessing.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from h2o_sagemaker_local.containers import ContainerRuntime
from h2o_sagemaker_local.hosting import ModelServer, ModelServerFailed, download_model, loopback_request
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.training import split_s3_uri

MAX_PAYLOAD_LIMIT_MB = 100  # MaxPayloadInMB, and MaxConcurrentTransforms x MaxPayloadInMB, at most
DEFAULT_MAX_PAYLOAD_IN_MB = 6
DEFAULT_INVOCATIONS_TIMEOUT_SECONDS = 600  # ModelClientConfig's default
BATCH_STRATEGY_VARIABLES = {"SingleRecord": "SINGLE_RECORD", "MultiRecord": "MULTI_RECORD"}


class TransformRequestError(ValueError):
    """A CreateTransformJob request SageMaker, or this emulation, refuses; the message is SageMaker's kind."""


def check_request(request: dict[str, Any]) -> None:
    transform_input = request["TransformInput"]
    data_type = transform_input["DataSource"]["S3DataSource"]["S3DataType"]
    if data_type != "S3Prefix":
        raise TransformRequestError(f"local SageMaker reads S3DataType S3Prefix only, got {data_type}")
    split_type = transform_input.get("SplitType", "None")
    if split_type not in ("None", "Line"):
        raise TransformRequestError(
            f"local SageMaker splits by Line or None, got SplitType {split_type}; h2o-gbm-predictor reads CSV, "
            "JSON and JSON Lines"
        )
    if "BatchStrategy" in request and split_type == "None":
        raise TransformRequestError(
            "To enable the batch strategy (BatchStrategy), you must set SplitType to Line, RecordIO, or TFRecord"
        )
    payload_mb = request.get("MaxPayloadInMB")
    if payload_mb is not None and payload_mb > MAX_PAYLOAD_LIMIT_MB:
        raise TransformRequestError(f"MaxPayloadInMB cannot be greater than {MAX_PAYLOAD_LIMIT_MB} MB")
    if payload_mb and payload_mb * request.get("MaxConcurrentTransforms", 0) > MAX_PAYLOAD_LIMIT_MB:
        raise TransformRequestError(
            f"MaxConcurrentTransforms x MaxPayloadInMB cannot exceed {MAX_PAYLOAD_LIMIT_MB} MB"
        )
    if "DataProcessing" in request:
        raise TransformRequestError(
            "local SageMaker does not emulate DataProcessing (InputFilter, OutputFilter, JoinSource)"
        )


@dataclass
class TransformJob:
    """State of one job, shaped like DescribeTransformJob."""

    name: str
    arn: str
    request: dict[str, Any]
    model: dict[str, Any]  # DescribeModel of the job's model
    base_dir: Path
    container: ContainerRuntime | None = None  # serve in the predictor image, else as a local `serve` process
    status: str = "InProgress"
    failure_reason: str | None = None
    creation_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    start_time: datetime | None = None
    end_time: datetime | None = None
    # The settings in force: the request's, else the container's /execution-parameters, else SageMaker's defaults.
    settings: dict[str, Any] = field(default_factory=dict)
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        request = self.request
        description: dict[str, Any] = {
            "TransformJobName": self.name,
            "TransformJobArn": self.arn,
            "TransformJobStatus": self.status,
            "ModelName": request["ModelName"],
            "TransformInput": request["TransformInput"],
            "TransformOutput": request["TransformOutput"],
            "TransformResources": request["TransformResources"],
            "CreationTime": self.creation_time,
        }
        optional = {
            "FailureReason": self.failure_reason,
            "ModelClientConfig": request.get("ModelClientConfig"),
            "Environment": request.get("Environment"),
            "TransformStartTime": self.start_time,
            "TransformEndTime": self.end_time,
        }
        description |= {key: value for key, value in optional.items() if value is not None}
        return description | {
            key: self.settings.get(key, request.get(key))
            for key in ("MaxConcurrentTransforms", "MaxPayloadInMB", "BatchStrategy")
            if key in self.settings or key in request
        }

    def stop(self) -> None:
        """StopTransformJob: no mini-batch is sent after it."""
        self.stop_requested.set()
        if self.status == "InProgress":
            self.status = "Stopping"


class TransformFailed(Exception):
    """The job ended without all its outputs; the message is its FailureReason."""


def _container_environment(job: TransformJob) -> dict[str, str]:
    request = job.request
    environment = {**job.model["PrimaryContainer"].get("Environment", {}), **request.get("Environment", {})}
    environment["SAGEMAKER_BATCH"] = "true"
    if "MaxPayloadInMB" in request:
        environment["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(request["MaxPayloadInMB"])
    if "BatchStrategy" in request:
        environment["SAGEMAKER_BATCH_STRATEGY"] = BATCH_STRATEGY_VARIABLES[request["BatchStrategy"]]
    if request.get("MaxConcurrentTransforms"):
        environment["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(request["MaxConcurrentTransforms"])
    return environment


def _settings(job: TransformJob, server: ModelServer) -> dict[str, Any]:
    """MaxConcurrentTransforms (0 is unset), MaxPayloadInMB and BatchStrategy as the job runs with them."""
    status, body, _ = loopback_request(server.port, "GET", "/execution-parameters", b"", {})
    offered = json.loads(body) if status == 200 else {}
    offered_strategy = {value: key for key, value in BATCH_STRATEGY_VARIABLES.items()}.get(
        offered.get("BatchStrategy", ""), "MultiRecord"
    )
    request = job.request
    return {
        "MaxConcurrentTransforms": request.get("MaxConcurrentTransforms")
        or int(offered.get("MaxConcurrentTransforms", 1)),
        "MaxPayloadInMB": request.get(
            "MaxPayloadInMB", int(offered.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_IN_MB))
        ),
        "BatchStrategy": request.get("BatchStrategy", offered_strategy),
    }


def _input_objects(s3: Any, uri: str) -> list[tuple[str, str, str]]:
    """(bucket, key, path of the output under S3OutputPath) of every object under the S3Prefix."""
    bucket, prefix = split_s3_uri(uri)
    folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")
    ]
    if not keys:
        raise TransformFailed(
            f'ClientError: No S3 objects found under S3 URL "{uri}" given in TransformInput'
        )
    return [(bucket, key, key[len(folder) :].lstrip("/")) for key in keys]


def mini_batches(
    data: bytes, split_type: str, batch_strategy: str, max_payload_bytes: int | None
) -> Iterator[bytes]:
    """The request bodies of one input object, in order; ``max_payload_bytes`` None is no limit."""
    records = data.splitlines(keepends=True) if split_type == "Line" else [data]
    batch: list[bytes] = []
    size = 0
    for record in records:
        if max_payload_bytes is not None and len(record) > max_payload_bytes:
            raise TransformFailed(
                f"ClientError: a record of {len(record)} bytes is larger than MaxPayloadInMB "
                f"({max_payload_bytes // (1024 * 1024)} MB)"
            )
        full = max_payload_bytes is not None and size + len(record) > max_payload_bytes
        if batch and (batch_strategy == "SingleRecord" or full):
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield b"".join(batch)


def assemble(responses: list[bytes], assemble_with: str) -> bytes:
    if assemble_with == "Line":
        return b"".join(response.rstrip(b"\r\n") + b"\n" for response in responses)
    return b"".join(responses)


def _transform_object(job: TransformJob, server: ModelServer, s3: Any, bucket: str, key: str) -> bytes:
    transform_input, output = job.request["TransformInput"], job.request["TransformOutput"]
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if transform_input.get("CompressionType") == "Gzip":
        data = gzip.decompress(data)
    headers = {"Content-Type": transform_input["ContentType"]} if "ContentType" in transform_input else {}
    if "Accept" in output:
        headers["Accept"] = output["Accept"]
    timeout = job.request.get("ModelClientConfig", {}).get(
        "InvocationsTimeoutInSeconds", DEFAULT_INVOCATIONS_TIMEOUT_SECONDS
    )

    failed = threading.Event()  # the mini-batches queued behind a failed one are not sent

    def invoke(body: bytes) -> bytes:
        if job.stop_requested.is_set() or failed.is_set():
            return b""
        try:
            status, answer, _ = loopback_request(server.port, "POST", "/invocations", body, headers, timeout)
        except TimeoutError:
            failed.set()
            raise TransformFailed(
                f"ClientError: /invocations did not answer within InvocationsTimeoutInSeconds ({timeout} s) "
                f"for a mini-batch of s3://{bucket}/{key}"
            ) from None
        if status != 200:
            failed.set()
            raise TransformFailed(
                f"ClientError: /invocations answered {status} for a mini-batch of s3://{bucket}/{key}: "
                f"{answer[:500].decode(errors='replace')}; see {server.log_path}"
            )
        return answer

    settings = job.settings
    max_payload_bytes = settings["MaxPayloadInMB"] * 1024 * 1024 or None
    bodies = mini_batches(
        data, transform_input.get("SplitType", "None"), settings["BatchStrategy"], max_payload_bytes
    )
    with ThreadPoolExecutor(max_workers=settings["MaxConcurrentTransforms"]) as pool:
        responses = list(pool.map(invoke, bodies))
    return assemble(responses, output.get("AssembleWith", "None"))


def run_transform_job(job: TransformJob) -> None:
    """Run the job to its end, updating ``job`` as SageMaker would; never raises."""
    job.start_time = datetime.now(UTC)
    server: ModelServer | None = None
    try:
        role_arn = job.model.get("ExecutionRoleArn")
        s3 = enforcement.role_client("s3", role_arn, "sagemaker.amazonaws.com", "SageMaker")
        try:
            objects = _input_objects(s3, job.request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
        except (ClientError, enforcement.AccessDenied) as error:
            raise TransformFailed(f"ClientError: Could not read the input data: {error}") from None
        download_model(job.model["PrimaryContainer"]["ModelDataUrl"], job.base_dir / "model", role_arn)
        server = ModelServer(
            job.base_dir, "batch-transform", container=job.container, environment=_container_environment(job)
        )
        server.start()
        server.wait_ready()
        job.settings = _settings(job, server)
        output_bucket, output_prefix = split_s3_uri(job.request["TransformOutput"]["S3OutputPath"])
        for bucket, key, path in objects:
            output = _transform_object(job, server, s3, bucket, key)
            if job.stop_requested.is_set():
                break
            try:
                s3.put_object(
                    Bucket=output_bucket,
                    Key=f"{output_prefix.rstrip('/')}/{path}.out".lstrip("/"),
                    Body=output,
                )
            except (ClientError, enforcement.AccessDenied) as error:
                raise TransformFailed(f"ClientError: Could not write the output: {error}") from None
        job.status = "Stopped" if job.stop_requested.is_set() else "Completed"
    except (TransformFailed, ModelServerFailed) as error:
        job.status, job.failure_reason = "Failed", str(error)
    except Exception as error:  # an emulator fault must fail the job, not leave it InProgress
        job.status = "Failed"
        job.failure_reason = f"local emulation error: {type(error).__name__}: {error}"
    finally:
        if server is not None:
            server.stop()
        job.end_time = datetime.now(UTC)
