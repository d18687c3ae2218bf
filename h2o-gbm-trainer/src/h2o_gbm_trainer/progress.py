"""Metric lines while the GBM grows: one set per scoring round of H2O's scoring history.

SageMaker's early stopping (`TrainingJobEarlyStoppingType: Auto`) compares a job's objective after each epoch
with the median of the earlier jobs' running averages at that epoch, so an algorithm "must emit objective metrics
for each epoch" (automatic-model-tuning-early-stopping.html). A GBM's epochs are its scoring rounds. The lines have
the final lines' format, and the final lines still come last: the tuning job's objective is the latest value a job
emitted (FinalHyperParameterTuningJobObjectiveMetric).

H2O publishes an in-progress model's scoring history while it trains, so a thread reads it every
`interval_seconds`; each finished build is read once more, so no round is missed however short the build.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import h2o
from h2o.exceptions import H2OError

from .metrics import METRICS_BY_CATEGORY, metric_lines

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
# Scoring-history column suffix -> our metric name; mse and gini follow from rmse and auc.
_COLUMNS = {"auc": "auc", "logloss": "logloss", "rmse": "rmse", "pr_auc": "aucpr", "mae": "mae"}


def round_metrics(row: dict[str, Any], channel: str, category: str) -> dict[str, float]:
    """The category's metrics a scoring-history row holds for ``channel``, in METRICS_BY_CATEGORY's order."""
    found = {
        name: float(row[f"{channel}_{column}"])
        for column, name in _COLUMNS.items()
        if isinstance(row.get(f"{channel}_{column}"), int | float)
    }
    if "rmse" in found:
        found["mse"] = found["rmse"] ** 2
    if "auc" in found:
        found["gini"] = 2 * found["auc"] - 1
    return {
        name: found[name]
        for name in METRICS_BY_CATEGORY[category]
        if name in found and math.isfinite(found[name])
    }


class ScoringProgress:
    """Prints the metric lines of each scoring round not printed yet, by its number of trees: a build grown on
    from a checkpoint repeats the rounds before it."""

    def __init__(self, channel: str, trees_reported: int = 0) -> None:
        """``trees_reported``: the rounds up to this many trees were printed already (by an interrupted run)."""
        self.channel = channel
        self.trees_reported = trees_reported
        self._lock = threading.Lock()

    def report(self, model_json: dict[str, Any]) -> None:
        output = model_json.get("output") or {}
        table, category = output.get("scoring_history"), output.get("model_category")
        if table is None or category not in METRICS_BY_CATEGORY:
            return
        with self._lock:
            for values in table.cell_values:
                row = dict(zip(table.col_header, values, strict=True))
                trees = row.get("number_of_trees")
                if not isinstance(trees, int | float) or math.isnan(trees) or trees <= self.trees_reported:
                    continue  # the round before any tree, or one already printed
                for line in metric_lines(self.channel, round_metrics(row, self.channel, category)):
                    print(line, flush=True)
                self.trees_reported = int(trees)

    def read(self, model_id: str) -> None:
        """Report the rounds of the model as H2O has it now (nothing while the build has not made it yet)."""
        try:
            [model_json] = h2o.api(f"GET /3/Models/{model_id}")["models"]
        except H2OError as error:  # not made yet, or a passing server error: the next read catches up
            logger.debug("scoring history of %s not readable now: %s", model_id, error)
            return
        self.report(model_json)

    @contextmanager
    def watching(self, model_id: str, interval_seconds: float = INTERVAL_SECONDS) -> Iterator[None]:
        """Report the model's rounds as they come while the block builds it, and all of them once it is built."""
        done = threading.Event()

        def poll() -> None:
            while not done.wait(interval_seconds):
                self.read(model_id)

        thread = threading.Thread(target=poll, name="scoring-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
        self.read(model_id)
