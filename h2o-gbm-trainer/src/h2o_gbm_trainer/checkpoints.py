"""Managed spot training: keep the latest H2O binary model in SageMaker's checkpoint folder, resume from it.

The folder holds two files: the binary model and `checkpoint.json` (a fingerprint of everything the model
depends on, the tree count it was grown towards, and whether training had finished). Each is written to a
temporary name and renamed, so an interruption never leaves half a file; the tree count is read from the model
itself. A job's checkpoints go in a folder named after the training job (`TRAINING_JOB_NAME`, which a restarted
spot job keeps): the training jobs of a tuning job share one CheckpointConfig.S3Uri, and nothing in SageMaker's
documentation says it keeps their files apart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2o
from h2o.exceptions import H2OError

logger = logging.getLogger(__name__)

MODEL_FILE = "h2o-gbm-checkpoint.bin"
STATE_FILE = "checkpoint.json"
FORMAT_VERSION = 1


def fingerprint(data_fingerprint: str, hyperparameters: dict[str, Any]) -> str:
    """A resumed model must come from the same data, settings and H2O version; only ntrees may grow."""
    settings = {
        key: value
        for key, value in hyperparameters.items()
        if key not in ("ntrees", "checkpoint_interval_seconds")
    }
    document = {"h2o": h2o.__version__, "data": data_fingerprint, "hyperparameters": settings}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def tree_count(model: Any) -> int:
    return int(model.summary()["number_of_trees"][0])


@dataclass(frozen=True)
class Checkpoint:
    model: Any
    trees: int
    finished: bool


@dataclass(frozen=True)
class CheckpointStore:
    folder: Path
    fingerprint: str
    ntrees: int  # the job's goal: a model finished towards another goal is grown on, not taken as it is

    def restore(self) -> Checkpoint | None:
        """The saved model if it fits this job, else None (with the reason logged: the job starts over)."""
        state_file = self.folder / STATE_FILE
        if not state_file.is_file():
            return None
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            finished = bool(state["finished"]) and state.get("ntrees") == self.ntrees
            fits = state["format_version"] == FORMAT_VERSION and state["fingerprint"] == self.fingerprint
        except (ValueError, KeyError, TypeError) as error:
            logger.warning("ignoring the unreadable checkpoint %s (%s): starting over", state_file, error)
            return None
        if not fits:
            logger.warning("ignoring the checkpoint in %s: other data, settings or H2O version", self.folder)
            return None
        try:
            model = h2o.load_model(str(self.folder / MODEL_FILE))
        except H2OError as error:
            logger.warning("ignoring the checkpoint model that H2O cannot load (%s): starting over", error)
            return None
        trees = tree_count(model)
        if trees > self.ntrees:
            logger.warning(
                "ignoring the checkpoint in %s: %d trees, more than ntrees=%d",
                self.folder,
                trees,
                self.ntrees,
            )
            return None
        return Checkpoint(model=model, trees=trees, finished=finished)

    def save(self, model: Any, finished: bool) -> None:
        partial_model = f"{MODEL_FILE}.partial"
        h2o.save_model(model, path=str(self.folder), filename=partial_model, force=True)
        os.replace(self.folder / partial_model, self.folder / MODEL_FILE)
        state = {
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "ntrees": self.ntrees,
            "finished": finished,
        }
        partial_state = self.folder / f"{STATE_FILE}.partial"
        partial_state.write_text(json.dumps(state), encoding="utf-8")
        os.replace(partial_state, self.folder / STATE_FILE)
