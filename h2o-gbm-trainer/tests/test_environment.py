"""The /opt/ml layout, moved by SAGEMAKER_BASE_DIR, and the JVM heap setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from h2o_gbm_trainer.data import read_input_data_config
from h2o_gbm_trainer.environment import Environment
from h2o_gbm_trainer.errors import TrainingInputError
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job


def test_paths_follow_the_sagemaker_layout_under_opt_ml_by_default() -> None:
    env = Environment.from_env({})

    assert env.hyperparameters_file == Path("/opt/ml/input/config/hyperparameters.json")
    assert env.input_data_config_file == Path("/opt/ml/input/config/inputdataconfig.json")
    assert env.channel_dir("training") == Path("/opt/ml/input/data/training")
    assert env.model_dir == Path("/opt/ml/model")
    assert env.failure_file == Path("/opt/ml/output/failure")
    assert env.checkpoint_dir == Path("/opt/ml/checkpoints")


def test_sagemaker_base_dir_moves_the_root(tmp_path: Path) -> None:
    env = Environment.from_env({"SAGEMAKER_BASE_DIR": str(tmp_path)})

    assert env.model_dir == tmp_path / "model"
    assert env.channel_dir("validation") == tmp_path / "input" / "data" / "validation"


@pytest.mark.parametrize(
    ("text", "size"), [("4G", 4 * 2**30), ("512m", 512 * 2**20), ("100000000", 100_000_000)]
)
def test_heap_size_is_read_in_jvm_notation(text: str, size: int) -> None:
    assert Environment.from_env({"H2O_GBM_TRAINER_MAX_MEM_SIZE": text}).max_mem_bytes == size


@pytest.mark.parametrize("text", ["1M", "lots", "4T"])
def test_a_bad_heap_size_is_named(text: str) -> None:
    env = Environment.from_env({"H2O_GBM_TRAINER_MAX_MEM_SIZE": text})

    with pytest.raises(TrainingInputError, match="H2O_GBM_TRAINER_MAX_MEM_SIZE"):
        _ = env.max_mem_bytes


@pytest.mark.parametrize("mode", ["File", "FastFile"])
def test_file_and_fastfile_channels_are_read_as_files(tmp_path: Path, mode: str) -> None:
    """FastFile shows the S3 objects at the File mode paths; inputdataconfig.json names the channel's mode."""
    lay_out_training_job(
        tmp_path, {}, [InputChannel("training", {"train.csv": b"a,b\n1,2\n"}, input_mode=mode)]
    )

    declared = read_input_data_config(Environment.from_env({"SAGEMAKER_BASE_DIR": str(tmp_path)}))

    assert declared["training"].content_type == "text/csv"
