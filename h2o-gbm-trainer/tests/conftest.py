"""Job folders laid out like SageMaker's /opt/ml, and `train` runs as real processes against them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_CSV = REPO_ROOT / "examples" / "train.csv"
VALIDATION_CSV = REPO_ROOT / "examples" / "validation.csv"
ORIGINAL_HYPERPARAMETERS = REPO_ROOT / "tests" / "fixtures" / "original-examples" / "hyperparameters.json"
TUNER_ASL = REPO_ROOT / "sagemaker-model-tuner" / "statemachine" / "model-tuning.asl.json"
TRAIN_EXECUTABLE = Path(sys.executable).with_name("train")
# Small heap: two jobs run at once in some tests, next to the rest of the suite.
JOB_ENVIRONMENT = {"H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G", "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class JobRun:
    base_dir: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @property
    def failure(self) -> str | None:
        failure_file = self.base_dir / "output" / "failure"
        return failure_file.read_text() if failure_file.exists() else None

    def metadata(self) -> dict:
        return json.loads((self.model_dir / "model-metadata.json").read_text())


class Jobs:
    """Tests reach these helpers through the `jobs` fixture (importlib mode: conftest is not importable)."""

    train_csv = TRAIN_CSV
    validation_csv = VALIDATION_CSV

    @staticmethod
    def original_hyperparameters() -> dict[str, str]:
        return json.loads(ORIGINAL_HYPERPARAMETERS.read_text())["staticHyperParameters"]

    @staticmethod
    def make(
        base_dir: Path,
        hyperparameters: dict[str, str],
        channels: dict[str, Path],
        with_checkpoints: bool = False,
    ) -> Path:
        """A SAGEMAKER_BASE_DIR with the given hyperparameters and one CSV per channel."""
        return lay_out_training_job(
            base_dir,
            hyperparameters,
            [InputChannel.of(name, csv_file) for name, csv_file in channels.items()],
            checkpoints=with_checkpoints,
        )

    @staticmethod
    def declare(base_dir: Path, channel: str, **settings: str) -> None:
        """Set a channel's fields in inputdataconfig.json (ContentType, CompressionType, ...) as SageMaker writes it."""
        config_file = base_dir / "input" / "config" / "inputdataconfig.json"
        config = json.loads(config_file.read_text())
        config[channel] = config.get(channel, {}) | settings
        config_file.write_text(json.dumps(config))

    @staticmethod
    def start(base_dir: Path, environment: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(TRAIN_EXECUTABLE)],
            env=os.environ | JOB_ENVIRONMENT | (environment or {}) | {"SAGEMAKER_BASE_DIR": str(base_dir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so a test can signal the job like SageMaker does
        )

    @staticmethod
    def finish(process: subprocess.Popen[str], base_dir: Path, timeout: float = 120) -> JobRun:
        stdout, stderr = process.communicate(timeout=timeout)
        return JobRun(base_dir, process.returncode, stdout, stderr)

    def run(self, base_dir: Path, environment: dict[str, str] | None = None) -> JobRun:
        return self.finish(self.start(base_dir, environment), base_dir)


@pytest.fixture(scope="session")
def jobs() -> Jobs:
    return Jobs()


@pytest.fixture(scope="session")
def metric_definitions() -> dict[str, re.Pattern[str]]:
    """The tuner's MetricDefinitions, read from its state machine: the one place they live."""
    found: list[dict[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "MetricDefinitions":
                    found.extend(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(TUNER_ASL.read_text()))
    assert found, f"no MetricDefinitions in {TUNER_ASL}"
    return {definition["Name"]: re.compile(definition["Regex"]) for definition in found}


@pytest.fixture(scope="session")
def scrape_metrics(metric_definitions: dict[str, re.Pattern[str]]) -> Callable[[str], dict[str, float]]:
    """What SageMaker would record from a job's output as its final metrics: each definition's latest match
    (FinalMetricDataList). A definition matching another metric's lines matches more lines than its own."""

    def scrape(stdout: str) -> dict[str, float]:
        values: dict[str, float] = {}
        for name, pattern in metric_definitions.items():
            matches = pattern.findall(stdout)
            own_lines = [line for line in stdout.splitlines() if line.startswith(f"{name}=")]
            assert len(matches) == len(own_lines), (
                f"{name} matched {len(matches)} lines, {len(own_lines)} its own"
            )
            if matches:
                values[name] = float(matches[-1])
        return values

    return scrape


@pytest.fixture(scope="session")
def parquet_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example CSV files written as Parquet by H2O itself, with the types its parse guesses (Survived and Pclass
    as integers, Sex and Embarked as categories, stored as strings): per channel a folder of part files without an
    extension."""
    import h2o  # the test process's own H2O client, only where a test needs Parquet
    from h2o_gbm_trainer.cluster import local_h2o

    folder = tmp_path_factory.mktemp("parquet")
    with local_h2o(2**30):
        for channel, csv_file in (("training", TRAIN_CSV), ("validation", VALIDATION_CSV)):
            frame = h2o.import_file(str(csv_file), header=1)
            h2o.export_file(frame, str(folder / channel), format="parquet", write_checksum=False)
    return {"training": folder / "training", "validation": folder / "validation"}


@pytest.fixture(scope="session")
def titanic_run(tmp_path_factory: pytest.TempPathFactory, jobs: Jobs) -> JobRun:
    """The original system's hyperparameters on the example Titanic data, trained once for the session.

    With a checkpoint folder, as tuning jobs with spot training run: the GBM grows in several checkpointed steps.
    """
    hyperparameters = jobs.original_hyperparameters() | {
        "ntrees": "30",
        "score_tree_interval": "5",
        "checkpoint_interval_seconds": "0.2",
    }
    base_dir = jobs.make(
        tmp_path_factory.mktemp("titanic"),
        hyperparameters,
        {"training": TRAIN_CSV, "validation": VALIDATION_CSV},
        with_checkpoints=True,
    )
    run = jobs.run(base_dir)
    assert run.returncode == 0, f"train failed ({run.returncode}): {run.stderr}"
    return run
