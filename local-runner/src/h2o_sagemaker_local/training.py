"""One SageMaker training job, run as a local `train` process in its own SAGEMAKER_BASE_DIR.

The container contract is SageMaker's: channels under ``input/data/<channel>/``, string hyperparameters in
``input/config/hyperparameters.json``, the model written to ``model/``, a one-line reason in
``output/failure``. The model folder is tarred to ``model.tar.gz`` under the job's S3 output path, so the
rest of the workflow finds the artifact exactly where SageMaker would put it.

A job with ``ResourceConfig.InstanceCount`` N > 1 runs N `train` processes, hosts ``algo-1`` ... ``algo-N``, each
with its own SAGEMAKER_BASE_DIR (``algo-1``'s is the job's folder, the others' are ``algo-<i>/`` inside it), its
channels (all of each FullyReplicated channel; a ShardedByS3Key channel's objects dealt out among the hosts) and a
resourceconfig.json naming it. As processes, the host names resolve to 127.0.0.1 (nss_wrapper:
``opt_ml.loopback_hosts_environment``) and all hosts share a block of free ports (H2O_GBM_TRAINER_CLUSTER_PORT); in
containers, each host is a container on the job's own network, reachable by its host name, as on SageMaker.
As on SageMaker the job is Completed once every host exited 0, and fails with the reason of the first host that
failed, whose exit stops the others; its model and metrics are the first host's (the trainer's leader).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from h2o_sagemaker_local import opt_ml
from h2o_sagemaker_local.containers import ContainerRuntime, container_name
from h2o_sagemaker_local.iam import enforcement

TRAIN_EXECUTABLE = Path(sys.executable).with_name("train")
CLUSTER_PORT_ENV = "H2O_GBM_TRAINER_CLUSTER_PORT"  # the trainer's: host i of a job serves H2O on base + 2 * i
POLL_SECONDS = 0.05


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@dataclass
class TrainingHost:
    """One instance of a training job: its name in resourceconfig.json, its /opt/ml, its `train` process."""

    name: str
    base_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.base_dir / "training.log"

    @property
    def failure_file(self) -> Path:
        return self.base_dir / "output" / "failure"


@dataclass
class TrainingJob:
    """State of one job, shaped like DescribeTrainingJob."""

    name: str
    arn: str
    request: dict[str, Any]
    tuning_job_arn: str | None
    tuned_hyperparameters: dict[str, str]
    base_dir: Path
    status: str = "InProgress"
    secondary_status: str = "Starting"
    failure_reason: str | None = None
    creation_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    start_time: datetime | None = None
    end_time: datetime | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    model_artifact: str | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    interruption_requested: threading.Event = field(default_factory=threading.Event)
    interruptions: int = 0  # managed spot interruptions the job was restarted after
    secondary_status_transitions: list[dict[str, Any]] = field(default_factory=list)
    container: ContainerRuntime | None = None  # run in the trainer image, else as a local `train` process
    checkpoint_dir: Path | None = None

    hosts: list[TrainingHost] = field(default_factory=list)
    """Every instance, algo-1 (the trainer's leader, whose folder is the job's) first; set by ``run_training_job``."""

    @property
    def instance_count(self) -> int:
        return int(self.request["ResourceConfig"].get("InstanceCount", 1))

    @property
    def log_path(self) -> Path:
        """The job's log: its first host's."""
        return self.base_dir / "training.log"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The first host's `train` (the trainer's leader, the only one of a single-instance job)."""
        return self.hosts[0].process if self.hosts else None

    def running(self) -> bool:
        return any(host.process is not None and host.process.poll() is None for host in self.hosts)

    def _terminate(self) -> None:
        for host in self.hosts:
            if host.process and host.process.poll() is None:
                host.process.terminate()

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "SecondaryStatusTransitions": self.secondary_status_transitions,
            "HyperParameters": self.request["HyperParameters"],
            "AlgorithmSpecification": self.request["AlgorithmSpecification"],
            "RoleArn": self.request.get("RoleArn", "arn:aws:iam::123456789012:role/local"),
            "InputDataConfig": self.request["InputDataConfig"],
            "OutputDataConfig": self.request["OutputDataConfig"],
            "ResourceConfig": self.request["ResourceConfig"],
            "StoppingCondition": self.request["StoppingCondition"],
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.end_time or self.start_time or self.creation_time,
            "EnableNetworkIsolation": self.request.get("EnableNetworkIsolation", False),
            "EnableManagedSpotTraining": self.request.get("EnableManagedSpotTraining", False),
            "FinalMetricDataList": [
                {"MetricName": name, "Value": value, "Timestamp": self.end_time or self.creation_time}
                for name, value in self.metrics.items()
            ],
            "ModelArtifacts": {"S3ModelArtifacts": self.model_artifact or ""},
        }
        optional = {
            "TuningJobArn": self.tuning_job_arn,
            "FailureReason": self.failure_reason,
            "TrainingStartTime": self.start_time,
            "TrainingEndTime": self.end_time,
            "CheckpointConfig": self.request.get("CheckpointConfig"),
        }
        description.update({key: value for key, value in optional.items() if value is not None})
        return description

    def stop(self) -> None:
        """StopTrainingJob: SIGTERM to every host's entrypoint, as SageMaker stops a container (the trainer saves
        its checkpoint and takes its JVM down)."""
        self.stop_requested.set()
        self._terminate()

    def enter(self, secondary_status: str, message: str = "") -> None:
        """Move to a SecondaryStatus, recorded in SecondaryStatusTransitions as DescribeTrainingJob shows them."""
        now = datetime.now(UTC)
        if self.secondary_status_transitions:
            self.secondary_status_transitions[-1]["EndTime"] = now
        self.secondary_status_transitions.append({"Status": secondary_status, "StartTime": now})
        if message:
            self.secondary_status_transitions[-1]["StatusMessage"] = message
        self.secondary_status = secondary_status

    def interrupt(self) -> None:
        """A managed spot interruption: SIGTERM to the entrypoint (the trainer keeps its last checkpoint), after
        which ``run_training_job`` starts the job again with the same checkpoint folder."""
        self.interruption_requested.set()
        self._terminate()

    def kill(self) -> None:
        """SIGKILL to everything the job's containers run, as when its instances end: the process group of each
        host's `train`, and the processes that left that group but carry a host's SAGEMAKER_BASE_DIR (the
        trainer starts its H2O JVM in a session of its own, so a killed `train` would leave its JVM running)."""
        for host in self.hosts:
            if host.process:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(host.process.pid, signal.SIGKILL)
        if self.container:
            for host in self.hosts:
                self.container.remove(host_container_name(self, host))
        for base_dir in [self.base_dir, *(host.base_dir for host in self.hosts[1:])]:
            for pid in processes_with_base_dir(base_dir):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def host_container_name(job: TrainingJob, host: TrainingHost) -> str:
    return container_name("training", job.name if len(job.hosts) == 1 else f"{job.name}-{host.name}")


def processes_with_base_dir(base_dir: Path) -> list[int]:
    """Processes whose environment has SAGEMAKER_BASE_DIR=``base_dir`` (Linux's /proc; elsewhere none found)."""
    marker = f"\0SAGEMAKER_BASE_DIR={base_dir}\0".encode()
    found = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker in b"\0" + (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours
                continue
    return found


class TrainingFailed(Exception):
    """The job ended without a model; the message is its FailureReason."""


def _shard(items: list[str], host_index: int, host_count: int, distribution: str) -> list[str]:
    """A host's objects of a channel: all of a FullyReplicated one, every N-th of a ShardedByS3Key one."""
    if distribution == "ShardedByS3Key" and host_count > 1:
        return items[host_index::host_count]
    return items


def _download_channels(s3: Any, job: TrainingJob, host_index: int) -> None:
    """Each host downloads its channels, as each instance does on SageMaker."""
    host = job.hosts[host_index]
    for channel in job.request["InputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        distribution = source.get("S3DataDistributionType", "FullyReplicated")
        bucket, prefix = split_s3_uri(source["S3Uri"])
        target = host.base_dir / "input" / "data" / channel["ChannelName"]
        target.mkdir(parents=True, exist_ok=True)
        if source.get("S3DataType") == "ManifestFile":
            share = functools.partial(
                _shard, host_index=host_index, host_count=len(job.hosts), distribution=distribution
            )
            _download_manifest_file(s3, bucket, prefix, target, share)
            continue
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        files = [key for key in keys if not key.endswith("/")]
        if not files:
            raise TrainingFailed(f"channel {channel['ChannelName']}: no objects under {source['S3Uri']}")
        for key in _shard(files, host_index, len(job.hosts), distribution):
            # An S3Prefix may name a single object or a folder; keep the path below the prefix.
            relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(destination))


def _download_manifest_file(
    s3: Any, bucket: str, key: str, target: Path, share: Callable[[list[str]], list[str]]
) -> None:
    """A ManifestFile channel: ``[{"prefix": "s3://bucket/path/"}, "relative/key", ...]``, each object (of this
    host's ``share``) downloaded to its relative key under the channel (SageMaker's format)."""
    try:
        entries = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        prefix_bucket, prefix = split_s3_uri(entries[0]["prefix"])
        relative_keys = [str(entry) for entry in entries[1:]]
    except (ValueError, KeyError, IndexError, TypeError):
        raise TrainingFailed(f"s3://{bucket}/{key} is not a SageMaker manifest file") from None
    if not relative_keys:
        raise TrainingFailed(f"manifest file s3://{bucket}/{key} lists no objects")
    for relative in share(relative_keys):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(prefix_bucket, prefix + relative, str(destination))


def channel_input_mode(definition: dict[str, Any], channel: dict[str, Any]) -> str:
    """The channel's InputMode, else the job's TrainingInputMode (API_Channel: "If you don't set a value for
    InputMode, SageMaker uses the value set for TrainingInputMode")."""
    return str(
        channel.get("InputMode", definition["AlgorithmSpecification"].get("TrainingInputMode", "File"))
    )


def _write_config(job: TrainingJob, host: TrainingHost) -> None:
    """The rest of the host's /opt/ml around the downloaded channels."""
    opt_ml.lay_out_training_job(
        host.base_dir,
        job.request["HyperParameters"],
        [
            opt_ml.InputChannel(
                channel["ChannelName"],
                content_type=channel.get("ContentType", "text/csv"),
                distribution=channel["DataSource"]["S3DataSource"].get(
                    "S3DataDistributionType", "FullyReplicated"
                ),
                input_mode=channel_input_mode(job.request, channel),
            )
            for channel in job.request["InputDataConfig"]
        ],
        current_host=host.name,
        hosts=[item.name for item in job.hosts],
        network_interface_name="lo" if job.container is None else "eth0",
    )


def parse_metrics(output: str, definitions: list[dict[str, str]]) -> dict[str, float]:
    """The last value each MetricDefinitions regex finds in the job's output, as SageMaker reports them."""
    metrics = {}
    for definition in definitions:
        values = re.findall(definition["Regex"], output)
        if values:
            metrics[definition["Name"]] = float(values[-1])
    return metrics


def _upload_model(s3: Any, job: TrainingJob) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted((job.base_dir / "model").iterdir()):
            archive.add(path, arcname=path.name)
    bucket, prefix = split_s3_uri(job.request["OutputDataConfig"]["S3OutputPath"])
    key = f"{prefix.rstrip('/')}/{job.name}/output/model.tar.gz".lstrip("/")
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


def _upload_checkpoints(s3: Any, job: TrainingJob, checkpoint_dir: Path) -> None:
    """SageMaker copies the checkpoint folder to CheckpointConfig.S3Uri (as the execution role)."""
    config = job.request.get("CheckpointConfig")
    if not config:
        return
    bucket, prefix = split_s3_uri(config["S3Uri"])
    for path in sorted(item for item in checkpoint_dir.rglob("*") if item.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(checkpoint_dir)}".lstrip("/")
        s3.upload_file(str(path), bucket, key)


def training_environment(base_dir: Path) -> dict[str, str]:
    """The job's environment. Unless the user set JAVA_TOOL_OPTIONS, H2O's JVM runs without the C2 compiler and
    with the serial GC: local jobs are short and share the machine's cores, and two parallel Titanic jobs took
    8.9 s instead of 14.6 s (C2 compiler threads competed for the cores of both jobs)."""
    environment = os.environ | {"SAGEMAKER_BASE_DIR": str(base_dir), "PYTHONUNBUFFERED": "1"}
    environment.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    return environment


def _exit_reason(host: TrainingHost, returncode: int) -> str:
    if host.failure_file.exists() and host.failure_file.read_text().strip():
        return host.failure_file.read_text().strip()
    if returncode < 0:
        return f"train was killed by {signal.Signals(-returncode).name}; see {host.log_path}"
    return f"train exited with code {returncode}; see {host.log_path}"


_reserved_ports: set[int] = set()
_ports_lock = threading.Lock()


@contextlib.contextmanager
def _cluster_ports(count: int) -> Iterator[int]:
    """A free block of ``count`` ports on loopback for one job's hosts, kept from this process's other jobs until
    the job ends; its first port."""
    with _ports_lock:
        try:
            base = opt_ml.free_port_block(count, avoid=_reserved_ports)
        except opt_ml.NoFreePorts as error:
            raise TrainingFailed(str(error)) from None
        block = set(range(base, base + count))
        _reserved_ports.update(block)
    try:
        yield base
    finally:
        with _ports_lock:
            _reserved_ports.difference_update(block)


def _host_environments(job: TrainingJob, base_port: int | None) -> list[dict[str, str]]:
    """Each host's environment: the job's name (which SageMaker sets) and, with several hosts, their ports and
    the host names resolving to 127.0.0.1."""
    shared = {"TRAINING_JOB_NAME": job.name}
    if base_port is not None:
        names = [host.name for host in job.hosts]
        shared |= {CLUSTER_PORT_ENV: str(base_port)}
        shared |= opt_ml.loopback_hosts_environment(names, job.base_dir / "network")
    return [training_environment(host.base_dir) | shared for host in job.hosts]


def _start_hosts(
    job: TrainingJob, environments: list[dict[str, str]], restart: bool, network: str | None
) -> None:
    for host, environment in zip(job.hosts, environments, strict=True):
        # A restarted spot job gets new containers: only the checkpoint folder carries over.
        host.failure_file.unlink(missing_ok=True)
        command = [str(TRAIN_EXECUTABLE)]
        if job.container is not None:
            assert job.checkpoint_dir is not None
            command = job.container.train_command(
                host_container_name(job, host),
                host.base_dir,
                job.checkpoint_dir,
                network=network,
                environment={key: environment[key] for key in ("JAVA_TOOL_OPTIONS", "TRAINING_JOB_NAME")},
                host=host.name if len(job.hosts) > 1 else None,
            )
            environment = job.container.environment
        with host.log_path.open("ab" if restart else "wb") as log:
            host.process = subprocess.Popen(
                command,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches the runner, which stops jobs itself
            )


def _wait_for_hosts(job: TrainingJob, deadline: float, timeout_seconds: float) -> tuple[int, TrainingHost]:
    """Until every host exited 0, or one failed: then the others are stopped (SIGTERM, as SageMaker ends the
    instances of a job one of whose instances failed). The first failing host and its exit code, or the first
    host and 0."""
    while True:
        failed = [
            host for host in job.hosts if host.process is not None and host.process.poll() not in (None, 0)
        ]
        if failed:
            job._terminate()
            first = failed[0]
            assert first.process is not None
            return first.process.returncode, first
        if not job.running():
            return 0, job.hosts[0]
        if time.monotonic() > deadline:
            raise TrainingFailed(f"MaxRuntimeInSeconds ({timeout_seconds:.0f}) exceeded")
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def _container_network(job: TrainingJob) -> Iterator[str | None]:
    """The network the job's containers join: none with network isolation, the engine's default for one instance,
    one of the job's own for several (internal with network isolation), removed when the job ends."""
    assert job.container is not None
    isolated = bool(job.request.get("EnableNetworkIsolation", False))
    if len(job.hosts) == 1:
        yield "none" if isolated else None
        return
    name = container_name("network", job.name)
    job.container.create_network(name, internal=isolated)
    try:
        yield name
    finally:  # after _run_hosts killed the containers: a network in use cannot be removed
        job.container.remove_network(name)


def _run_hosts(
    job: TrainingJob, deadline: float, timeout_seconds: float, restart: bool
) -> tuple[int, TrainingHost]:
    """One run of every host's entrypoint until ``deadline`` (monotonic); a restart appends to the logs."""
    with contextlib.ExitStack() as stack:
        base_port = network = None
        if len(job.hosts) > 1 and job.container is None:
            base_port = stack.enter_context(_cluster_ports(2 * len(job.hosts)))
        environments = _host_environments(job, base_port)
        if job.container is not None:
            network = stack.enter_context(_container_network(job))
        try:
            _start_hosts(job, environments, restart, network)
            # stop() or interrupt() may have come while there was no process yet to signal
            if job.stop_requested.is_set() or job.interruption_requested.is_set():
                job._terminate()
            if len(job.hosts) == 1:
                process = job.hosts[0].process
                assert process is not None
                try:
                    return process.wait(timeout=max(deadline - time.monotonic(), 0)), job.hosts[0]
                except subprocess.TimeoutExpired:
                    raise TrainingFailed(f"MaxRuntimeInSeconds ({timeout_seconds:.0f}) exceeded") from None
            return _wait_for_hosts(job, deadline, timeout_seconds)
        finally:
            job.kill()


def _lay_out_hosts(job: TrainingJob, s3: Any, checkpoint_dir: Path) -> None:
    """Every host's /opt/ml: the first host's is the job's folder, the others' are algo-<i>/ inside it."""
    names = opt_ml.host_names(job.instance_count)
    job.hosts = [
        TrainingHost(name, job.base_dir if index == 0 else job.base_dir / name)
        for index, name in enumerate(names)
    ]
    for index, host in enumerate(job.hosts):
        host.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            _download_channels(s3, job, index)
        except (ClientError, enforcement.AccessDenied) as error:
            raise TrainingFailed(f"ClientError: Data download failed: {error}") from None
        _write_config(job, host)
        if job.container is None:  # a container gets the folder mounted at /opt/ml/checkpoints instead
            # Every instance syncs the same CheckpointConfig.S3Uri; only the trainer's leader writes there.
            (host.base_dir / "checkpoints").unlink(missing_ok=True)
            (host.base_dir / "checkpoints").symlink_to(checkpoint_dir, target_is_directory=True)


def run_training_job(job: TrainingJob, checkpoint_dir: Path, timeout_seconds: float) -> None:
    """Run the job to its end, updating ``job`` as SageMaker would; never raises.

    A managed spot job interrupted by ``job.interrupt()`` stays InProgress and runs again with the same
    checkpoint folder (SecondaryStatus Interrupted, then Restarting), as SageMaker restarts it."""
    job.start_time = datetime.now(UTC)
    deadline = time.monotonic() + timeout_seconds
    try:
        job.enter("Downloading")
        # SageMaker reads the channels and writes the model as the job's execution role.
        s3 = enforcement.role_client("s3", job.request.get("RoleArn"), "sagemaker.amazonaws.com", "SageMaker")
        # The SageMaker checkpoint folder: kept per job name, so a restarted job finds its checkpoints.
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        job.checkpoint_dir = checkpoint_dir
        _lay_out_hosts(job, s3, checkpoint_dir)
        restart = False
        while True:
            job.enter("Training")
            returncode, exited = _run_hosts(job, deadline, timeout_seconds, restart)
            try:
                _upload_checkpoints(s3, job, checkpoint_dir)
            except ClientError as error:
                raise TrainingFailed(f"ClientError: Failed to upload the checkpoints: {error}") from None
            if job.stop_requested.is_set():
                job.status = "Stopped"
                job.enter("Stopped")
                return
            if returncode == 0 or not job.interruption_requested.is_set():
                break
            job.interruption_requested.clear()
            job.interruptions += 1
            job.enter("Interrupted", "the spot instance was interrupted")
            job.enter("Restarting", f"restart {job.interruptions} after a spot interruption")
            restart = True
        if returncode != 0:
            raise TrainingFailed(_exit_reason(exited, returncode))
        job.metrics = parse_metrics(
            job.log_path.read_text(errors="replace"),
            job.request["AlgorithmSpecification"].get("MetricDefinitions", []),
        )
        job.enter("Uploading")
        try:
            job.model_artifact = _upload_model(s3, job)
        except ClientError as error:
            raise TrainingFailed(f"ClientError: Failed to upload the model artifacts: {error}") from None
        job.status = "Completed"
        job.enter("Completed")
    except TrainingFailed as error:
        job.status, job.failure_reason = "Failed", str(error)
        job.enter("Failed", str(error))
    except Exception as error:  # an emulator fault must fail the job, not hang the tuning job
        job.status = "Failed"
        job.failure_reason = f"local emulation error: {type(error).__name__}: {error}"
        with contextlib.suppress(OSError), job.log_path.open("a") as log:  # the whole story, where users look
            log.write(f"\n[local SageMaker] {job.failure_reason}\n{traceback.format_exc()}")
        job.enter("Failed", job.failure_reason)
    finally:
        job.end_time = datetime.now(UTC)
