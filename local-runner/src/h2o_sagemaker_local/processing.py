"""One SageMaker Processing job, run as a local process of the trainer image's command in its own /opt/ml.

SageMaker's contract: each ProcessingInput's S3 objects are downloaded to its ``LocalPath`` (under
``/opt/ml/processing/``), the container runs ``AppSpecification.ContainerEntrypoint`` (+ ``ContainerArguments``),
each ProcessingOutput's ``LocalPath`` is uploaded to its ``S3Uri`` at the end of the job, and the first 1 KB of
``/opt/ml/output/message`` becomes DescribeProcessingJob's ``ExitMessage``. Locally ``/opt/ml`` is the job's
folder (its ``SAGEMAKER_BASE_DIR``); data moves as the job's execution role, as SageMaker moves it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from h2o_sagemaker_local.containers import ContainerRuntime, container_name
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.training import processes_with_base_dir, split_s3_uri, training_environment

CONTAINER_ROOT = PurePosixPath("/opt/ml")
PROCESSING_ROOT = CONTAINER_ROOT / "processing"
# The trainer image's commands a Processing job may run: its console scripts, beside the runner's Python.
IMAGE_COMMANDS = ("evaluate",)
COMMAND_DIR = Path(sys.executable).parent
EXIT_MESSAGE_MAX_BYTES = 1024
DEFAULT_MAX_RUNTIME_SECONDS = 86400


class ProcessingRequestError(ValueError):
    """A CreateProcessingJob request SageMaker, or this emulation, refuses; the message is SageMaker's kind."""


def check_request(request: dict[str, Any]) -> None:
    entrypoint = request["AppSpecification"].get("ContainerEntrypoint") or []
    if entrypoint[:1] not in ([command] for command in IMAGE_COMMANDS):
        raise ProcessingRequestError(
            "local SageMaker runs the h2o-gbm-trainer image's commands in Processing jobs: "
            f"AppSpecification.ContainerEntrypoint must start with one of {list(IMAGE_COMMANDS)}, got {entrypoint}"
        )
    local_paths = [item["S3Input"]["LocalPath"] for item in request.get("ProcessingInputs", [])] + [
        item["S3Output"]["LocalPath"] for item in request.get("ProcessingOutputConfig", {}).get("Outputs", [])
    ]
    for local_path in local_paths:
        if PROCESSING_ROOT not in PurePosixPath(local_path).parents:
            # SageMaker's rule for ProcessingInputs and ProcessingOutputs alike.
            raise ProcessingRequestError(f"LocalPath {local_path} must be a path under {PROCESSING_ROOT}/")
    for item in request.get("ProcessingInputs", []):
        if "S3Input" not in item:
            raise ProcessingRequestError(f"input {item['InputName']}: local SageMaker reads S3Input only")


@dataclass
class ProcessingJob:
    """State of one job, shaped like DescribeProcessingJob."""

    name: str
    arn: str
    request: dict[str, Any]
    base_dir: Path
    status: str = "InProgress"
    failure_reason: str | None = None
    exit_message: str | None = None
    creation_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    start_time: datetime | None = None
    end_time: datetime | None = None
    process: subprocess.Popen[bytes] | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    container: ContainerRuntime | None = None  # run in the trainer image, else as a local process

    @property
    def log_path(self) -> Path:
        return self.base_dir / "processing.log"

    def host_path(self, local_path: str) -> Path:
        return self.base_dir / PurePosixPath(local_path).relative_to(CONTAINER_ROOT)

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {
            "ProcessingJobName": self.name,
            "ProcessingJobArn": self.arn,
            "ProcessingJobStatus": self.status,
            "ProcessingResources": self.request["ProcessingResources"],
            "AppSpecification": self.request["AppSpecification"],
            "RoleArn": self.request["RoleArn"],
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.end_time or self.start_time or self.creation_time,
        }
        optional = {
            "ProcessingInputs": self.request.get("ProcessingInputs"),
            "ProcessingOutputConfig": self.request.get("ProcessingOutputConfig"),
            "StoppingCondition": self.request.get("StoppingCondition"),
            "Environment": self.request.get("Environment"),
            "NetworkConfig": self.request.get("NetworkConfig"),
            "FailureReason": self.failure_reason,
            "ExitMessage": self.exit_message,
            "ProcessingStartTime": self.start_time,
            "ProcessingEndTime": self.end_time,
        }
        description.update({key: value for key, value in optional.items() if value is not None})
        return description

    def stop(self) -> None:
        """StopProcessingJob: SIGTERM to the container's command, as SageMaker stops a container."""
        self.stop_requested.set()
        if self.process and self.process.poll() is None:
            self.process.terminate()

    def kill(self) -> None:
        """Everything the job's container ran ends with it (the command and the H2O JVM it started)."""
        if self.container:
            self.container.remove(container_name("processing", self.name))
        for pid in processes_with_base_dir(self.base_dir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


class ProcessingFailed(Exception):
    """The job ended without its outputs; the message is its FailureReason."""


def _download_inputs(s3: Any, job: ProcessingJob) -> None:
    for item in job.request.get("ProcessingInputs", []):
        source = item["S3Input"]
        bucket, prefix = split_s3_uri(source["S3Uri"])
        target = job.host_path(source["LocalPath"])
        target.mkdir(parents=True, exist_ok=True)
        keys = [
            entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        ]
        files = [key for key in keys if not key.endswith("/")]
        if not files:
            raise ProcessingFailed(
                f'ClientError: No S3 objects found under S3 URL "{source["S3Uri"]}" given in input data source {item["InputName"]}'
            )
        for key in files:
            relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(destination))


def _upload_outputs(s3: Any, job: ProcessingJob) -> None:
    for item in job.request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        output = item["S3Output"]
        bucket, prefix = split_s3_uri(output["S3Uri"])
        folder = job.host_path(output["LocalPath"])
        for path in sorted(entry for entry in folder.rglob("*") if entry.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder)}".lstrip("/")
            s3.upload_file(str(path), bucket, key)


def _command(job: ProcessingJob, environment: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    app = job.request["AppSpecification"]
    entrypoint, arguments = app["ContainerEntrypoint"], app.get("ContainerArguments", [])
    if job.container is None:
        return [str(COMMAND_DIR / entrypoint[0]), *entrypoint[1:], *arguments], environment
    isolated = job.request.get("NetworkConfig", {}).get("EnableNetworkIsolation", False)
    settings = [
        part for key in job.request.get("Environment", {}) for part in ("-e", f"{key}={environment[key]}")
    ]
    command = [
        job.container.engine, "run", "--rm", "--name", container_name("processing", job.name),
        *(["--network", "none"] if isolated else []), "-v", f"{job.base_dir}:/opt/ml", *settings,
        "--entrypoint", entrypoint[0], job.container.trainer_image, *entrypoint[1:], *arguments,
    ]  # fmt: skip
    return command, job.container.environment


def _exit_message(job: ProcessingJob) -> str | None:
    message_file = job.base_dir / "output" / "message"
    if not message_file.is_file():
        return None
    return message_file.read_bytes()[:EXIT_MESSAGE_MAX_BYTES].decode("utf-8", errors="replace").strip()


def run_processing_job(job: ProcessingJob) -> None:
    """Run the job to its end, updating ``job`` as SageMaker would; never raises."""
    job.start_time = datetime.now(UTC)
    timeout = float(
        job.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_SECONDS)
    )
    try:
        s3 = enforcement.role_client("s3", job.request["RoleArn"], "sagemaker.amazonaws.com", "SageMaker")
        try:
            _download_inputs(s3, job)
        except (ClientError, enforcement.AccessDenied) as error:
            raise ProcessingFailed(f"ClientError: Data download failed: {error}") from None
        (job.base_dir / "output").mkdir(parents=True, exist_ok=True)
        environment = training_environment(job.base_dir) | job.request.get("Environment", {})
        command, process_environment = _command(job, environment)
        with job.log_path.open("wb") as log:
            job.process = subprocess.Popen(
                command, env=process_environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            if job.stop_requested.is_set():
                job.process.terminate()
            try:
                returncode = job.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                job.process.kill()
                raise ProcessingFailed(
                    f"Processing job exceeded the MaxRuntimeInSeconds ({timeout:.0f}) of its StoppingCondition"
                ) from None
            finally:
                job.kill()
        job.exit_message = _exit_message(job)
        if job.stop_requested.is_set():
            job.status = "Stopped"
            return
        if returncode != 0:
            raise ProcessingFailed(
                f"AlgorithmError: {job.exit_message or f'exit code {returncode}'}; see {job.log_path}"
            )
        try:
            _upload_outputs(s3, job)
        except (ClientError, enforcement.AccessDenied) as error:
            raise ProcessingFailed(f"ClientError: Failed to upload the outputs: {error}") from None
        job.status = "Completed"
    except ProcessingFailed as error:
        job.status, job.failure_reason = "Failed", str(error)
    except Exception as error:  # an emulator fault must fail the job, not leave it InProgress
        job.status = "Failed"
        job.failure_reason = f"local emulation error: {type(error).__name__}: {error}"
    finally:
        job.end_time = datetime.now(UTC)
