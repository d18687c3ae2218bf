"""The printed metric lines against the tuner's MetricDefinitions (read from its state machine file)."""

from __future__ import annotations

import math

from h2o_gbm_trainer.metrics import METRICS_BY_CATEGORY, collect_metrics, metric_lines


def test_every_metric_the_trainer_prints_has_a_definition_of_the_contract_form(metric_definitions) -> None:
    for channel in ("validation", "training"):
        for metrics in METRICS_BY_CATEGORY.values():
            for metric in metrics:
                name = f"{channel}:{metric}"
                assert name in metric_definitions, f"the tuner state machine lacks {name}"
                assert metric_definitions[name].pattern == f"{channel}:{metric}=([-+0-9.eE]+);"


def test_lines_parse_back_to_their_values_without_matching_each_other(scrape_metrics) -> None:
    values = {
        "auc": 0.912345678901,
        "logloss": 1.5e-12,
        "rmse": 0.31,
        "mse": 0.0961,
        "gini": -0.25,
        "aucpr": 1.0,
    }

    lines = metric_lines("validation", values)

    assert lines[0] == "validation:auc=0.9123456789;"
    # `mse` must not match inside `rmse`, nor validation inside training.
    scraped = scrape_metrics("\n".join(lines))
    assert scraped == {f"validation:{name}": float(f"{value:.10g}") for name, value in values.items()}


class _Performance:
    """Stands in for H2O's ModelMetricsRegression: rmsle is NaN when a target is negative."""

    def rmse(self) -> float:
        return 2.0

    def mse(self) -> float:
        return 4.0

    def mae(self) -> float:
        return 1.5

    def r2(self) -> float:
        return 0.8

    def rmsle(self) -> float:
        return math.nan


def test_metrics_reported_as_nan_are_left_out() -> None:
    assert collect_metrics(_Performance(), "Regression") == {"rmse": 2.0, "mse": 4.0, "mae": 1.5, "r2": 0.8}
