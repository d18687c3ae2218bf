"""Per-round metric lines from a scoring history, as H2O's client gives it (col_header, cell_values)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from h2o_gbm_trainer.progress import ScoringProgress, round_metrics

HEADER = [
    "",
    "timestamp",
    "duration",
    "number_of_trees",
    "validation_rmse",
    "validation_logloss",
    "validation_auc",
]


def model_json(*rows: tuple[float, float, float, float], category: str = "Binomial") -> dict[str, Any]:
    table = SimpleNamespace(
        col_header=HEADER, cell_values=[["", "2026-12-03", "0.1 sec", *row] for row in rows]
    )
    return {"output": {"scoring_history": table, "model_category": category}}


def test_a_round_gives_the_categorys_metrics_with_mse_and_gini_worked_out() -> None:
    row = {"number_of_trees": 5.0, "validation_rmse": 0.4, "validation_auc": 0.9, "training_auc": 0.99}

    assert round_metrics(row, "validation", "Binomial") == pytest.approx(
        {"auc": 0.9, "rmse": 0.4, "mse": 0.16, "gini": 0.8}
    )
    assert round_metrics(row, "validation", "Regression") == pytest.approx({"rmse": 0.4, "mse": 0.16})


def test_each_round_is_printed_once_and_the_round_before_any_tree_never(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = ScoringProgress("validation")

    progress.report(model_json((0, 0.5, 0.69, 0.5), (5, 0.45, 0.6, 0.85)))
    # A build grown on from a checkpoint repeats the rounds before it.
    progress.report(model_json((0, 0.5, 0.69, 0.5), (5, 0.45, 0.6, 0.85), (10, 0.42, 0.55, 0.88)))

    aucs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("validation:auc=")]
    assert aucs == ["validation:auc=0.85;", "validation:auc=0.88;"]
    assert progress.trees_reported == 10


def test_a_model_without_a_scoring_history_yet_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    ScoringProgress("training").report({"output": {"scoring_history": None, "model_category": "Binomial"}})
    ScoringProgress("training").report({})

    assert capsys.readouterr().out == ""
