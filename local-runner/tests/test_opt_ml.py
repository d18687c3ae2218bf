"""The /opt/ml tree every local job and every container test runs in is the one SageMaker lays out."""

from __future__ import annotations

import json
from pathlib import Path

from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_hosting, lay_out_training_job


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def test_a_training_job_gets_its_config_one_folder_per_channel_and_its_output_folders(tmp_path: Path) -> None:
    csv_file = tmp_path / "train.csv"
    csv_file.write_text("a,b\n1,2\n")
    base_dir = lay_out_training_job(
        tmp_path / "opt-ml",
        {"ntrees": "5"},
        [InputChannel.of("training", csv_file), InputChannel("validation", distribution="ShardedByS3Key")],
    )

    assert tree(base_dir) == {
        "input",
        "input/config",
        "input/config/hyperparameters.json",
        "input/config/inputdataconfig.json",
        "input/config/resourceconfig.json",
        "input/data",
        "input/data/training",
        "input/data/training/train.csv",
        "input/data/validation",
        "model",
        "output",
    }
    config = base_dir / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {"ntrees": "5"}
    assert json.loads((config / "inputdataconfig.json").read_text()) == {
        "training": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "validation": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "None",
        },
    }
    assert json.loads((config / "resourceconfig.json").read_text())["current_host"] == "algo-1"
    assert (base_dir / "input" / "data" / "training" / "train.csv").read_text() == "a,b\n1,2\n"


def test_a_checkpoint_folder_only_when_asked_and_existing_files_are_kept(tmp_path: Path) -> None:
    downloaded = tmp_path / "input" / "data" / "training" / "part-0.csv"
    downloaded.parent.mkdir(parents=True)
    downloaded.write_text("x\n1\n")

    lay_out_training_job(tmp_path, {}, [InputChannel("training")], checkpoints=True)

    assert downloaded.read_text() == "x\n1\n"
    assert (tmp_path / "checkpoints").is_dir()


def test_an_endpoint_gets_the_model_files_in_model(tmp_path: Path) -> None:
    base_dir = lay_out_hosting(tmp_path, {"model.zip": b"mojo", "model-metadata.json": b"{}"})

    assert tree(base_dir) == {"model", "model/model.zip", "model/model-metadata.json"}
    assert (base_dir / "model" / "model.zip").read_bytes() == b"mojo"
