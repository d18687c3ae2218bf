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


@dataclass(frozen=True)
class Environment:
    base_dir: Path
    max_mem_size: str | None
    """The JVM heap as set in the environment; None: half of the machine's memory."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Environment:
        environ = dict(os.environ if environ is None else environ)
        return cls(
            base_dir=Path(environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR),
            max_mem_size=environ.get(MAX_MEM_SIZE_ENV) or None,
        )

    @property
    def max_mem_bytes(self) -> int:
        return _memory_size(self.max_mem_size) if self.max_mem_size else _half_of_physical_memory()

    @property
    def input_config_dir(self) -> Path:
        return self.base_dir / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.input_config_dir / "hyperparameters.json"

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
