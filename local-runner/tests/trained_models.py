"""Real models of the example for the local runner's tests: the real `train` on the example's data, packed as
SageMaker packs a training job's model/ folder into model.tar.gz."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from h2o_sagemaker_local import opt_ml

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
HYPERPARAMETERS = REPO_ROOT / "tests" / "fixtures" / "original-examples" / "hyperparameters.json"


@dataclass(frozen=True)
class TrainedModel:
    model_dir: Path  # the job's model/ folder, as `train` wrote it
    archive: bytes  # model.tar.gz

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads((self.model_dir / "model-metadata.json").read_text())


def train_models(folder_for: Callable[[str], Path], trees: dict[str, str]) -> dict[str, TrainedModel]:
    """One model per name, with that many trees, trained at once (one `train` per core); ``folder_for(name)``
    gives each job's folder."""
    static = json.loads(HYPERPARAMETERS.read_text())["staticHyperParameters"]
    channels = [
        opt_ml.InputChannel.of("training", EXAMPLES / "train.csv"),
        opt_ml.InputChannel.of("validation", EXAMPLES / "validation.csv"),
    ]
    jobs = {}
    for name, count in trees.items():
        job_dir = opt_ml.lay_out_training_job(folder_for(name), static | {"ntrees": count}, channels)
        environment = os.environ | {"SAGEMAKER_BASE_DIR": str(job_dir), "H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G"}
        train = subprocess.Popen(
            [str(Path(sys.executable).with_name("train"))], env=environment, stderr=subprocess.PIPE
        )
        jobs[name] = (job_dir, train)
    models = {}
    for name, (job_dir, train) in jobs.items():
        _, stderr = train.communicate(timeout=300)
        assert train.returncode == 0, stderr[-2000:]
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            for path in sorted((job_dir / "model").iterdir()):
                tar.add(path, arcname=path.name)
        models[name] = TrainedModel(job_dir / "model", archive.getvalue())
    return models
