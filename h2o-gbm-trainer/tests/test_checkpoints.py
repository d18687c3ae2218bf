"""Managed spot training: an interrupted job resumes from its last checkpoint instead of starting over."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest
from h2o_gbm_trainer.environment import Environment
from h2o_gbm_trainer.training import train

pytestmark = pytest.mark.h2o

NTREES = 150
SETTINGS = {
    "target": "Survived",
    "classification": "true",
    "ignored_columns": "PassengerId,Name,Ticket,Cabin",
    "ntrees": str(NTREES),
    "checkpoint_interval_seconds": "0.2",
    "seed": "1",
}


def _mojo_trees(model_dir: Path) -> int:
    with zipfile.ZipFile(model_dir / "model.zip") as mojo:
        lines = mojo.read("model.ini").decode().splitlines()
    return int(next(line.split(" = ")[1] for line in lines if line.startswith("n_trees = ")))


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)


def _interrupted_job(jobs, base_dir: Path):
    """Start a job, stop it with SIGTERM (as SageMaker does on a spot interruption) after its first checkpoint."""
    process = jobs.start(base_dir)
    _wait_for(base_dir / "checkpoints" / "checkpoint.json", timeout=60)
    os.kill(process.pid, signal.SIGTERM)
    run = jobs.finish(process, base_dir)
    with pytest.raises(ProcessLookupError):  # the job's JVM went down with it
        os.killpg(process.pid, 0)
    return run


def test_an_interrupted_job_resumes_from_its_checkpoint_and_finishes(jobs, tmp_path: Path, caplog) -> None:
    base_dir = jobs.make(tmp_path, SETTINGS, {"training": jobs.train_csv}, with_checkpoints=True)

    interrupted = _interrupted_job(jobs, base_dir)

    assert interrupted.returncode == 1
    assert "stopped by SIGTERM" in (interrupted.failure or "")
    assert not (base_dir / "model" / "model.zip").exists()
    assert json.loads((base_dir / "checkpoints" / "checkpoint.json").read_text())["finished"] is False

    (
        base_dir / "output" / "failure"
    ).unlink()  # SageMaker starts the restarted job with a fresh output folder
    resumed = jobs.run(base_dir)

    assert resumed.returncode == 0, resumed.stderr
    resumed_from = [line for line in resumed.stdout.splitlines() if "resumed from checkpoint:" in line]
    assert len(resumed_from) == 1
    trees_before = int(resumed_from[0].split("resumed from checkpoint: ")[1].split()[0])
    assert 10 <= trees_before < NTREES
    assert _mojo_trees(base_dir / "model") == NTREES
    assert json.loads((base_dir / "checkpoints" / "checkpoint.json").read_text())["finished"] is True

    # A restart of the finished job builds no tree: the checkpoint is the model. (In process, to read the report.)
    with caplog.at_level(logging.INFO, logger="h2o_gbm_trainer"):
        report = train(Environment(base_dir=base_dir, max_mem_size="1G"))

    assert (report.resumed_from_trees, report.trees) == (NTREES, NTREES)
    assert "checkpoint saved" not in caplog.text
    assert _mojo_trees(base_dir / "model") == NTREES


def test_a_checkpoint_from_other_settings_is_ignored(jobs, tmp_path: Path, caplog) -> None:
    base_dir = jobs.make(tmp_path, SETTINGS, {"training": jobs.train_csv}, with_checkpoints=True)
    _interrupted_job(jobs, base_dir)
    (base_dir / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps(SETTINGS | {"ntrees": "20", "learn_rate": "0.05"})
    )

    with caplog.at_level(logging.INFO, logger="h2o_gbm_trainer"):
        report = train(Environment(base_dir=base_dir, max_mem_size="1G"))

    assert "ignoring the checkpoint" in caplog.text and "other data, settings or H2O version" in caplog.text
    assert (report.resumed_from_trees, report.trees) == (0, 20)
    assert _mojo_trees(base_dir / "model") == 20


def test_a_finished_checkpoint_of_fewer_trees_is_grown_on_not_taken(jobs, tmp_path: Path, caplog) -> None:
    """A checkpoint a job finished towards another ntrees (a tuning job's other training job) is grown on."""
    settings = SETTINGS | {"ntrees": "20", "stopping_rounds": "0"}
    base_dir = jobs.make(tmp_path, settings, {"training": jobs.train_csv}, with_checkpoints=True)
    assert jobs.run(base_dir).returncode == 0
    (base_dir / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps(settings | {"ntrees": "40"})
    )

    with caplog.at_level(logging.INFO, logger="h2o_gbm_trainer"):
        report = train(Environment(base_dir=base_dir, max_mem_size="1G"))

    assert (report.resumed_from_trees, report.trees) == (20, 40)
    assert _mojo_trees(base_dir / "model") == 40


def test_each_training_job_keeps_its_checkpoints_in_a_folder_of_its_own(jobs, tmp_path: Path) -> None:
    """The training jobs of a tuning job share one checkpoint URI: each writes under its TRAINING_JOB_NAME."""
    base_dir = jobs.make(
        tmp_path, SETTINGS | {"ntrees": "20"}, {"training": jobs.train_csv}, with_checkpoints=True
    )
    for name in ("tuning-001-a", "tuning-002-b"):
        run = jobs.run(base_dir, {"TRAINING_JOB_NAME": name})
        assert run.returncode == 0, run.stderr
        assert "resumed from checkpoint" not in run.stdout + run.stderr
        state = json.loads((base_dir / "checkpoints" / name / "checkpoint.json").read_text())
        assert (state["ntrees"], state["finished"]) == (20, True)
    assert sorted(path.name for path in (base_dir / "checkpoints").iterdir()) == [
        "tuning-001-a",
        "tuning-002-b",
    ]
