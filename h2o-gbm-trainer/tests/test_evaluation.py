"""The `evaluate` entrypoint under SageMaker Processing's layout: a trained artifact scored on validation rows."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

EVALUATE_EXECUTABLE = Path(sys.executable).with_name("evaluate")
ENVIRONMENT = {"H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G", "PYTHONUNBUFFERED": "1"}


def lay_out(base_dir: Path, model_dir: Path | None, validation: Path | dict[str, bytes]) -> Path:
    """processing/input/model/model.tar.gz (as a training job uploads it: files at the archive's root) and
    processing/input/validation/ (a CSV file as validation.csv, or files by name)."""
    if model_dir is not None:
        archive = base_dir / "processing" / "input" / "model" / "model.tar.gz"
        archive.parent.mkdir(parents=True)
        with tarfile.open(archive, mode="w:gz") as tar:
            for path in sorted(model_dir.iterdir()):
                tar.add(path, arcname=path.name)
    folder = base_dir / "processing" / "input" / "validation"
    folder.mkdir(parents=True)
    if isinstance(validation, Path):
        shutil.copy(validation, folder / "validation.csv")
    else:
        for name, content in validation.items():
            (folder / name).write_bytes(content)
    return base_dir


def run_evaluate(base_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EVALUATE_EXECUTABLE)],
        env=os.environ | ENVIRONMENT | {"SAGEMAKER_BASE_DIR": str(base_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.h2o
def test_the_trainers_own_validation_metrics_are_reproduced_on_the_same_rows(
    tmp_path: Path, titanic_run, jobs, scrape_metrics
) -> None:
    base_dir = lay_out(tmp_path, titanic_run.model_dir, jobs.validation_csv)

    result = run_evaluate(base_dir)

    assert result.returncode == 0, result.stderr
    evaluation = json.loads((base_dir / "processing" / "evaluation" / "evaluation.json").read_text())
    trained = titanic_run.metadata()["metrics"]["validation"]
    with jobs.validation_csv.open() as csv_file:
        rows = sum(1 for _ in csv.reader(csv_file)) - 1
    assert evaluation["model_category"] == "Binomial"
    assert evaluation["rows"] == rows
    # Same MOJO, same rows, same metric code: the figures the trainer reported for the tuned model.
    assert evaluation["metrics"] == pytest.approx(
        {f"validation:{name}": value for name, value in trained.items()}
    )
    assert scrape_metrics(result.stdout) == pytest.approx(
        {name: float(f"{value:.10g}") for name, value in evaluation["metrics"].items()}
    )


@pytest.mark.h2o
@pytest.mark.parametrize("kind", ["gzip", "parquet"])
def test_gzip_and_parquet_validation_rows_give_the_same_figures(
    tmp_path: Path, titanic_run, jobs, parquet_folders, kind: str
) -> None:
    """The quality gate scores the deployed model on this run's validation channel, in whatever format it came."""
    if kind == "gzip":
        files = {"part-00000": gzip.compress(jobs.validation_csv.read_bytes())}
    else:
        files = {path.name: path.read_bytes() for path in parquet_folders["validation"].iterdir()}
    base_dir = lay_out(tmp_path, titanic_run.model_dir, files)

    result = run_evaluate(base_dir)

    assert result.returncode == 0, result.stderr
    evaluation = json.loads((base_dir / "processing" / "evaluation" / "evaluation.json").read_text())
    trained = titanic_run.metadata()["metrics"]["validation"]
    assert evaluation["metrics"] == pytest.approx(
        {f"validation:{name}": value for name, value in trained.items()}, abs=1e-9
    )


@pytest.mark.h2o
def test_validation_rows_without_a_model_column_are_refused_naming_it(
    tmp_path: Path, titanic_run, jobs
) -> None:
    with jobs.validation_csv.open() as source:
        rows = list(csv.reader(source))
    dropped = rows[0].index("Sex")
    without_sex = tmp_path / "without-sex.csv"
    with without_sex.open("w", newline="") as target:
        csv.writer(target).writerows([row[:dropped] + row[dropped + 1 :] for row in rows])
    base_dir = lay_out(tmp_path / "job", titanic_run.model_dir, without_sex)

    result = run_evaluate(base_dir)

    assert result.returncode == 2
    message = (base_dir / "output" / "message").read_text().strip()
    assert message == "channel 'validation' lacks the model's column 'Sex'"
    assert not (base_dir / "processing" / "evaluation" / "evaluation.json").exists()


def test_a_missing_artifact_is_bad_input_reported_as_the_exit_message(tmp_path: Path, jobs) -> None:
    base_dir = lay_out(tmp_path, None, jobs.validation_csv)

    result = run_evaluate(base_dir)

    assert result.returncode == 2
    message = (base_dir / "output" / "message").read_text().strip()
    assert message.startswith("missing ") and message.endswith(
        "processing/input/model/model.tar.gz (the model artifact to evaluate)"
    )
    assert "Traceback" not in result.stderr


def test_an_archive_that_is_not_a_model_of_this_trainer_is_refused(tmp_path: Path, jobs) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "model.pkl").write_bytes(b"not ours")
    base_dir = lay_out(tmp_path / "job", foreign, jobs.validation_csv)

    result = run_evaluate(base_dir)

    assert result.returncode == 2
    assert (
        (base_dir / "output" / "message")
        .read_text()
        .strip()
        .startswith("model.tar.gz holds no readable model-metadata.json of this trainer")
    )
