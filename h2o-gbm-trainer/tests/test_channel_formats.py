"""Channels of gzip-compressed CSV and of Parquet train the same model as plain CSV, with real H2O on Titanic."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job

pytestmark = pytest.mark.h2o

CHANNELS = ("training", "validation")
PARQUET = "application/x-parquet"


def _parquet_channel(channel: str, folder: Path) -> InputChannel:
    return InputChannel(
        channel, {path.name: path.read_bytes() for path in folder.iterdir()}, content_type=PARQUET
    )


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, jobs, parquet_folders: dict[str, Path]
) -> dict[str, object]:
    """The original hyperparameters trained on the same rows given four ways, the four jobs at once."""
    hyperparameters = jobs.original_hyperparameters() | {"ntrees": "20", "score_tree_interval": "5"}
    csv_files = dict(zip(CHANNELS, (jobs.train_csv, jobs.validation_csv), strict=True))

    plain = jobs.make(tmp_path_factory.mktemp("csv"), hyperparameters, csv_files)
    # Gzip as SageMaker declares it; the files named .csv.gz or anything at all.
    gzipped = lay_out_training_job(
        tmp_path_factory.mktemp("gzip"),
        hyperparameters,
        [
            InputChannel("training", {"train.csv.gz": gzip.compress(jobs.train_csv.read_bytes())}),
            InputChannel("validation", {"part-00000": gzip.compress(jobs.validation_csv.read_bytes())}),
        ],
    )
    for channel in CHANNELS:
        jobs.declare(gzipped, channel, CompressionType="Gzip")
    parquet = lay_out_training_job(
        tmp_path_factory.mktemp("parquet-job"),
        hyperparameters,
        [_parquet_channel(channel, parquet_folders[channel]) for channel in CHANNELS],
    )
    # Each channel in its own format: Parquet training rows, gzip-compressed CSV validation rows.
    mixed = lay_out_training_job(
        tmp_path_factory.mktemp("mixed"),
        hyperparameters,
        [
            _parquet_channel("training", parquet_folders["training"]),
            InputChannel(
                "validation", {"validation.csv.gz": gzip.compress(jobs.validation_csv.read_bytes())}
            ),
        ],
    )
    started = {name: (jobs.start(base_dir), base_dir) for name, base_dir in
               (("csv", plain), ("gzip", gzipped), ("parquet", parquet), ("mixed", mixed))}  # fmt: skip
    return {name: jobs.finish(process, base_dir) for name, (process, base_dir) in started.items()}


@pytest.mark.parametrize("kind", ["gzip", "parquet", "mixed"])
def test_the_channel_trains_the_same_model_as_plain_csv(runs: dict, kind: str) -> None:
    run, reference = runs[kind], runs["csv"]
    assert reference.returncode == 0, reference.stderr
    assert run.returncode == 0, run.stderr

    metadata, expected = run.metadata(), reference.metadata()
    for channel in CHANNELS:
        assert metadata["metrics"][channel].keys() == expected["metrics"][channel].keys()
        for name, value in expected["metrics"][channel].items():
            assert metadata["metrics"][channel][name] == pytest.approx(value, abs=1e-9), (channel, name)
    features = metadata["features"]
    if kind in ("parquet", "mixed"):
        # H2O's own Parquet writer (the fixture) stores a missing category as "" (Embarked is empty in two rows),
        # which reads back as a level of its own: the model scores the same (above), its domain lists "" too.
        embarked = next(feature for feature in features if feature["name"] == "Embarked")
        assert embarked["domain"][0] == ""
        embarked["domain"] = embarked["domain"][1:]
    assert features == expected["features"]
    assert metadata["input_columns"] == expected["input_columns"]
    assert metadata["target_domain"] == expected["target_domain"] == ["0", "1"]
    assert "training 712 rows x 12 columns, validation 179 rows" in run.stdout


def test_parquet_columns_are_checked_once_h2o_has_read_them(jobs, tmp_path: Path, parquet_folders) -> None:
    base_dir = lay_out_training_job(
        tmp_path,
        {"target": "Survival", "classification": "true"},
        [_parquet_channel("training", parquet_folders["training"])],
    )

    run = jobs.run(base_dir)

    assert run.returncode == 2, run.stderr
    assert "target 'Survival' is not a column of the training data" in (run.failure or "")
