"""H2O's own grid search as the local demo's baseline: 10 GBMs over the example ranges, in one H2O cluster.

The local demo trains 10 models as 10 SageMaker training jobs (each its own `train` process and H2O JVM, 2 at a
time); H2O's `H2OGridSearch` (RandomDiscrete, 10 models) trains the same number over the same ranges and static
settings in one cluster it starts once. Prints one JSON line: the wall time from before `h2o.init` to after the
cluster's shutdown, the number of models and the best validation AUC.

    .venv/bin/python scripts/grid_search_baseline.py --seed 1
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
CONTINUOUS_STEPS = 20  # values per continuous range (RandomDiscrete samples from lists)
# H2O refuses these in a grid ("is not gridable"): each is fixed at its range's lowest value instead.
NOT_GRIDABLE = ("score_tree_interval",)


def hyper_params(ranges: dict[str, list[dict[str, str]]]) -> dict[str, list[Any]]:
    """SageMaker's ranges as H2O grid lists: every integer, continuous ranges in CONTINUOUS_STEPS steps (a
    geometric series for logarithmic scaling), categorical values as they are."""
    grid: dict[str, list[Any]] = {}
    for item in ranges.get("IntegerParameterRanges", []):
        grid[item["Name"]] = list(range(int(item["MinValue"]), int(item["MaxValue"]) + 1))
    for item in ranges.get("ContinuousParameterRanges", []):
        low, high = float(item["MinValue"]), float(item["MaxValue"])
        if item.get("ScalingType") == "Logarithmic":
            ratio = math.log(high / low) / (CONTINUOUS_STEPS - 1)
            grid[item["Name"]] = [low * math.exp(ratio * step) for step in range(CONTINUOUS_STEPS)]
        else:
            grid[item["Name"]] = [
                low + (high - low) * step / (CONTINUOUS_STEPS - 1) for step in range(CONTINUOUS_STEPS)
            ]
    for item in ranges.get("CategoricalParameterRanges", []):
        grid[item["Name"]] = list(item["Values"])
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", type=int, default=10)
    options = parser.parse_args()
    hyperparameters = json.loads((EXAMPLES / "hyperparameters.json").read_text())
    static = dict(hyperparameters["staticHyperParameters"])
    training = ast.literal_eval(static.pop("training"))
    target = training["target"]
    ignored = set(training["ignored_columns"].split(","))
    categorical = set(training["categorical_columns"].split(","))

    started = time.monotonic()
    import h2o
    from h2o.estimators import H2OGradientBoostingEstimator
    from h2o.grid import H2OGridSearch

    with contextlib.redirect_stdout(io.StringIO()):
        h2o.init(nthreads=-1, verbose=False)
    h2o.no_progress()
    try:
        frames = [h2o.import_file(str(EXAMPLES / name)) for name in ("train.csv", "validation.csv")]
        for frame in frames:
            for column in categorical & set(frame.columns):
                frame[column] = frame[column].asfactor()
        features = [column for column in frames[0].columns if column not in ignored | {target}]
        grid_values = hyper_params(hyperparameters["parameterRanges"])
        fixed = {name: grid_values.pop(name)[0] for name in NOT_GRIDABLE if name in grid_values}
        grid = H2OGridSearch(
            H2OGradientBoostingEstimator(
                **fixed,
                distribution=training.get("distribution", "AUTO"),
                stopping_metric=static["stopping_metric"],
                balance_classes=static["balance_classes"].lower() == "true",
                seed=int(static["seed"]),
                stopping_rounds=int(static["stopping_rounds"]),
                stopping_tolerance=float(static["stopping_tolerance"]),
            ),
            hyper_params=grid_values,
            search_criteria={
                "strategy": "RandomDiscrete",
                "max_models": options.models,
                "seed": options.seed,
            },
        )
        grid.train(x=features, y=target, training_frame=frames[0], validation_frame=frames[1])
        aucs = [model.auc(valid=True) for model in grid.models]
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            h2o.cluster().shutdown()
    seconds = time.monotonic() - started
    print(json.dumps({"seconds": seconds, "models": len(aucs), "best_auc": max(aucs)}))


if __name__ == "__main__":
    main()
