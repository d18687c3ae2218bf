"""Which metrics each kind of model reports, and the one-line-per-metric format the SageMaker tuner scrapes.

A line is exactly `<channel>:<metric>=<value>;` (e.g. `validation:auc=0.9108016305;`). The matching
MetricDefinitions (`<channel>:<metric>=([-+0-9.eE]+);`) live in the tuner's state machine file, the one place
both SageMaker and the local emulation read them from.
"""

from __future__ import annotations

import math
from typing import Any

METRICS_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "Binomial": ("auc", "logloss", "rmse", "mse", "gini", "aucpr"),
    "Multinomial": ("logloss", "rmse", "mse", "mean_per_class_error"),
    "Regression": ("rmse", "mse", "mae", "r2", "rmsle"),
}


def collect_metrics(performance: Any, model_category: str) -> dict[str, float]:
    """The category's metrics from an H2O ModelMetrics object; ones H2O reports as NaN or None are left out."""
    values: dict[str, float] = {}
    for name in METRICS_BY_CATEGORY[model_category]:
        value = getattr(performance, name)()
        if isinstance(value, int | float) and math.isfinite(value):
            values[name] = float(value)
    return values


def metric_lines(channel: str, metrics: dict[str, float]) -> list[str]:
    return [f"{channel}:{name}={value:.10g};" for name, value in metrics.items()]
