"""Bad input ends the job with exit code 2, a one-line reason in output/failure and on stderr, no traceback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job

pytestmark = pytest.mark.h2o

TITANIC_SETTINGS = {"target": "Survived", "classification": "true", "ntrees": "5"}
PARQUET = "application/x-parquet"
FAKE_PARQUET = b"PAR1" + bytes(16)  # what a Parquet file starts with: refused before H2O reads further


def _assert_failed_with(run, reason: str) -> None:
    assert run.returncode == 2, run.stderr
    assert run.failure is not None and reason in run.failure
    assert run.failure.count("\n") == 1
    assert f"training failed: {run.failure.strip()}" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (run.model_dir / "model-metadata.json").exists()


@pytest.mark.parametrize(
    ("hyperparameters", "reason"),
    [
        (TITANIC_SETTINGS | {"ntrees": "abc"}, "invalid hyperparameter 'ntrees'='abc'"),
        (TITANIC_SETTINGS | {"max_dept": "3"}, "unknown hyperparameter 'max_dept'"),
        (
            {"training": "{'target': 'Survived', 'classification': 'yes please'}"},
            "'classification' (inside 'training')",
        ),
        (TITANIC_SETTINGS | {"target": "Survival"}, "target 'Survival' is not a column of the training data"),
        (TITANIC_SETTINGS | {"ignored_columns": "Name,Nmae"}, "ignored_columns: no such column 'Nmae'"),
    ],
)
def test_bad_hyperparameters(jobs, tmp_path: Path, hyperparameters: dict[str, str], reason: str) -> None:
    base_dir = jobs.make(tmp_path, hyperparameters, {"training": jobs.train_csv})

    _assert_failed_with(jobs.run(base_dir), reason)


def test_missing_training_channel(jobs, tmp_path: Path) -> None:
    base_dir = jobs.make(tmp_path, TITANIC_SETTINGS, {"validation": jobs.validation_csv})

    _assert_failed_with(jobs.run(base_dir), "the required channel 'training' is missing")


def test_an_empty_channel_folder(jobs, tmp_path: Path) -> None:
    base_dir = jobs.make(tmp_path, TITANIC_SETTINGS, {"training": jobs.train_csv})
    (base_dir / "input" / "data" / "validation").mkdir()

    _assert_failed_with(jobs.run(base_dir), "channel 'validation' has no files")


def test_an_unknown_channel(jobs, tmp_path: Path) -> None:
    base_dir = jobs.make(
        tmp_path, TITANIC_SETTINGS, {"training": jobs.train_csv, "test": jobs.validation_csv}
    )

    _assert_failed_with(jobs.run(base_dir), "unknown channel 'test'")


def test_validation_without_a_training_column(jobs, tmp_path: Path) -> None:
    narrow_csv = tmp_path / "narrow.csv"
    narrow_csv.write_text("PassengerId,Survived\n1,0\n2,1\n")
    base_dir = jobs.make(
        tmp_path / "job", TITANIC_SETTINGS, {"training": jobs.train_csv, "validation": narrow_csv}
    )

    _assert_failed_with(jobs.run(base_dir), "channel 'validation' lacks the training column 'Pclass'")


def test_missing_hyperparameters_file(jobs, tmp_path: Path) -> None:
    base_dir = jobs.make(tmp_path, TITANIC_SETTINGS, {"training": jobs.train_csv})
    (base_dir / "input" / "config" / "hyperparameters.json").unlink()

    _assert_failed_with(jobs.run(base_dir), "hyperparameters.json (the job's hyperparameters)")


def test_hyperparameters_that_are_not_json(jobs, tmp_path: Path) -> None:
    base_dir = jobs.make(tmp_path, TITANIC_SETTINGS, {"training": jobs.train_csv})
    (base_dir / "input" / "config" / "hyperparameters.json").write_text(json.dumps(TITANIC_SETTINGS)[:-1])

    _assert_failed_with(jobs.run(base_dir), "hyperparameters.json is not valid JSON")


def test_a_value_h2o_rejects_is_named(jobs, tmp_path: Path) -> None:
    """Only H2O knows the data is too small for min_rows: its reason is passed on, naming the parameter."""
    base_dir = jobs.make(tmp_path, TITANIC_SETTINGS | {"min_rows": "100000"}, {"training": jobs.train_csv})

    _assert_failed_with(
        jobs.run(base_dir), "H2O rejected the hyperparameters: min_rows: The dataset size is too small"
    )


@pytest.mark.parametrize(
    ("file_name", "content", "declared", "reason"),
    [
        ("train.csv", "csv", {"ContentType": "application/json"},
         "channel 'training': ContentType must be text/csv or application/x-parquet, got 'application/json'"),
        ("train.csv", "csv", {"CompressionType": "Bzip2"},
         "channel 'training': CompressionType must be None or Gzip, got 'Bzip2'"),
        ("train.parquet", "parquet", {"ContentType": PARQUET, "CompressionType": "Gzip"},
         "channel 'training': CompressionType Gzip does not go with ContentType application/x-parquet"),
        ("train.csv", "csv", {"ContentType": PARQUET},
         "channel 'training': ContentType is application/x-parquet but train.csv is not a Parquet file"),
        ("train.parquet.gz", "gzip parquet", {"ContentType": PARQUET},
         "train.parquet.gz is not a Parquet file (it is gzip-compressed"),
        ("train.csv", "csv", {"CompressionType": "Gzip"},
         "channel 'training': CompressionType is Gzip but train.csv is not gzip-compressed"),
        ("train.parquet", "parquet", {"ContentType": "text/csv"},
         "channel 'training': train.parquet is a Parquet file but ContentType is text/csv"),
        ("train.csv.gz", "cut gzip csv", {"CompressionType": "Gzip"},
         "channel 'training': cannot read the CSV header of train.csv.gz"),
        ("train.csv", "csv", {"TrainingInputMode": "Pipe"},
         "channel 'training': TrainingInputMode Pipe is not supported; the trainer reads files: use File or FastFile"),
    ],
)  # fmt: skip
def test_a_channel_whose_files_or_format_do_not_fit_is_named(
    jobs, tmp_path: Path, file_name: str, content: str, declared: dict[str, str], reason: str
) -> None:
    csv_bytes = jobs.train_csv.read_bytes()
    data = {
        "csv": csv_bytes,
        "parquet": FAKE_PARQUET,
        "gzip parquet": gzip.compress(FAKE_PARQUET),
        "cut gzip csv": gzip.compress(csv_bytes)[:40],
    }[content]
    base_dir = lay_out_training_job(tmp_path, TITANIC_SETTINGS, [InputChannel("training", {file_name: data})])
    jobs.declare(base_dir, "training", **declared)

    _assert_failed_with(jobs.run(base_dir), reason)
