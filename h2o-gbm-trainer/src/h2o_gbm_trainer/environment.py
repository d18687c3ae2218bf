"""The SageMaker training contract as one object: every path under the `/opt/ml` root and every setting read
from the environment, so the training code never builds a path itself and tests can pass a temporary root."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import TrainingInputError

BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
DEFAULT_BASE_DIR = "/opt/ml"
# Heap for the job's H2O JVM, in the JVM's notation ("4G", "512M"); default: half of the machine's memory.
MAX_MEM_SIZE_ENV = "H2O_GBM_TRAINER_MAX_MEM_SIZE"
# Set by SageMaker in every training container: the cluster of a multi-instance job is named after it.
JOB_NAME_ENV = "TRAINING_JOB_NAME"
# Several instances: host i (sorted order) serves H2O's REST API on base + 2 * i and talks to the others on the port
# after it, so the same ports work when all hosts are one machine (the local emulation gives each job its own base).
CLUSTER_PORT_ENV = "H2O_GBM_TRAINER_CLUSTER_PORT"
DEFAULT_CLUSTER_PORT = 54321  # H2O's own default
# Several instances: how long each waits for all of them to form one H2O cluster before it fails the job.
JOIN_TIMEOUT_ENV = "H2O_GBM_TRAINER_JOIN_TIMEOUT_SECONDS"
DEFAULT_JOIN_TIMEOUT_SECONDS = 300.0
_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}

TRAINING_CHANNEL = "training"
VALIDATION_CHANNEL = "validation"
CHANNELS = (TRAINING_CHANNEL, VALIDATION_CHANNEL)


def _half_of_physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def _memory_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    size = int(match[1]) * _SIZE_UNITS[match[2]] if match else 0
    if size < 2**25:
        raise TrainingInputError(
            f"{MAX_MEM_SIZE_ENV} must be a size of at least 32M such as 512M or 4G, got {text!r}"
        )
    return size


def _cluster_port(text: str) -> int:
    if not text.strip().isdigit() or not 1024 <= int(text) <= 65000:
        raise TrainingInputError(f"{CLUSTER_PORT_ENV} must be a port number from 1024 to 65000, got {text!r}")
    return int(text)


def _join_timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise TrainingInputError(f"{JOIN_TIMEOUT_ENV} must be a number of seconds above 0, got {text!r}")
    return seconds


@dataclass(frozen=True)
class Environment:
    base_dir: Path
    max_mem_size: str | None
    """The JVM heap as set in the environment; None: half of the machine's memory."""
    job_name: str | None = None
    """TRAINING_JOB_NAME, which SageMaker sets; None when run by hand."""
    cluster_port: str | None = None
    """The first H2O port of a multi-instance job as set in the environment; None: 54321."""
    join_timeout: str | None = None
    """How long the instances of a multi-instance job wait for each other, as set; None: 300 s."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Environment:
        environ = dict(os.environ if environ is None else environ)
        return cls(
            base_dir=Path(environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR),
            max_mem_size=environ.get(MAX_MEM_SIZE_ENV) or None,
            job_name=environ.get(JOB_NAME_ENV) or None,
            cluster_port=environ.get(CLUSTER_PORT_ENV) or None,
            join_timeout=environ.get(JOIN_TIMEOUT_ENV) or None,
        )

    @property
    def max_mem_bytes(self) -> int:
        return _memory_size(self.max_mem_size) if self.max_mem_size else _half_of_physical_memory()

    @property
    def cluster_base_port(self) -> int:
        return _cluster_port(self.cluster_port) if self.cluster_port else DEFAULT_CLUSTER_PORT

    @property
    def join_timeout_seconds(self) -> float:
        return _join_timeout(self.join_timeout) if self.join_timeout else DEFAULT_JOIN_TIMEOUT_SECONDS

    @property
    def input_config_dir(self) -> Path:
        return self.base_dir / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.input_config_dir / "hyperparameters.json"

    @property
    def resource_config_file(self) -> Path:
        """The job's hosts (SageMaker writes it for every job; optional locally: one host)."""
        return self.input_config_dir / "resourceconfig.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.input_config_dir / "inputdataconfig.json"

    @property
    def input_data_dir(self) -> Path:
        return self.base_dir / "input" / "data"

    def channel_dir(self, channel: str) -> Path:
        return self.input_data_dir / channel

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def checkpoint_dir(self) -> Path:
        """SageMaker creates and syncs this folder only when the job has a CheckpointConfig."""
        return self.base_dir / "checkpoints"
