"""The ``/opt/ml`` tree SageMaker lays out for a container (its ``SAGEMAKER_BASE_DIR``).

A training job gets ``input/config/`` (hyperparameters.json with string values, inputdataconfig.json,
resourceconfig.json), one ``input/data/<channel>/`` folder per channel, ``model/`` and ``output/`` to write
to, and ``checkpoints/`` when the job has a CheckpointConfig. An endpoint's container gets ``model/``.

The local runner lays out its jobs with this, and the trainer's, the predictor's and the images' tests lay out
theirs with it, so every one of them sees the tree SageMaker makes. Standard library only: the container
packages' tests import it without the emulator's dependencies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The one host of a single-instance job, as SageMaker names it; the local job's network is the loopback.
RESOURCE_CONFIG = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"}


@dataclass(frozen=True)
class InputChannel:
    """One channel of a training job; ``files`` (name -> content) go into its ``input/data/<name>/`` folder."""

    name: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    content_type: str = "text/csv"
    distribution: str = "FullyReplicated"

    @classmethod
    def of(cls, name: str, *paths: Path) -> InputChannel:
        """A channel holding copies of these files under their own names."""
        return cls(name, {path.name: path.read_bytes() for path in paths})

    def data_config(self) -> dict[str, str]:
        return {
            "ContentType": self.content_type,
            "TrainingInputMode": "File",
            "S3DistributionType": self.distribution,
            "RecordWrapperType": "None",
        }


def lay_out_training_job(
    base_dir: Path,
    hyperparameters: Mapping[str, str],
    channels: Iterable[InputChannel],
    checkpoints: bool = False,
) -> Path:
    """``base_dir`` as SageMaker lays out /opt/ml for a training job; folders already there are kept."""
    channels = list(channels)
    config = base_dir / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))
    (config / "inputdataconfig.json").write_text(
        json.dumps({channel.name: channel.data_config() for channel in channels})
    )
    (config / "resourceconfig.json").write_text(json.dumps(RESOURCE_CONFIG))
    for channel in channels:
        folder = base_dir / "input" / "data" / channel.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in channel.files.items():
            (folder / name).write_bytes(content)
    for output_folder in ("model", "output", *(["checkpoints"] if checkpoints else [])):
        (base_dir / output_folder).mkdir(exist_ok=True)
    return base_dir


def lay_out_hosting(base_dir: Path, model_files: Mapping[str, bytes]) -> Path:
    """``base_dir`` as SageMaker lays out /opt/ml for an endpoint's container: the model's files in model/."""
    model_dir = base_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, content in model_files.items():
        (model_dir / name).write_bytes(content)
    return base_dir
