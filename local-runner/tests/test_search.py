"""Local tuning strategies sample SageMaker's ParameterRanges faithfully."""

from __future__ import annotations

import math

import pytest
from h2o_sagemaker_local.search import GridSearch, UnsupportedTuningRequest, make_search
from h2o_sagemaker_local.training import parse_metrics

RANGES = {
    "IntegerParameterRanges": [
        {"Name": "ntrees", "MinValue": "10", "MaxValue": "100", "ScalingType": "Linear"}
    ],
    "ContinuousParameterRanges": [
        {"Name": "learn_rate", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Logarithmic"},
        {"Name": "sample_rate", "MinValue": "0.5", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
    ],
    "CategoricalParameterRanges": [{"Name": "distribution", "Values": ["bernoulli", "auto"]}],
}


def config(strategy: str, ranges: dict | None = None, objective: str = "Maximize") -> dict:
    return {
        "Strategy": strategy,
        "ParameterRanges": RANGES if ranges is None else ranges,
        "HyperParameterTuningJobObjective": {"Type": objective, "MetricName": "validation:auc"},
    }


@pytest.mark.parametrize("strategy", ["Bayesian", "Random"])
def test_suggestions_are_strings_within_the_ranges(strategy: str) -> None:
    search = make_search(config(strategy), max_jobs=12, seed=1)
    for _ in range(12):
        token, values = search.suggest()
        assert set(values) == {"ntrees", "learn_rate", "sample_rate", "distribution"}
        assert all(isinstance(value, str) for value in values.values())
        assert 10 <= int(values["ntrees"]) <= 100
        assert 0.001 <= float(values["learn_rate"]) <= 0.1
        assert 0.5 <= float(values["sample_rate"]) <= 0.999
        assert values["distribution"] in ("bernoulli", "auto")
        search.report(token, -abs(math.log(float(values["learn_rate"])) - math.log(0.01)))


def test_bayesian_search_concentrates_on_the_better_region() -> None:
    """After its random start-up trials TPE proposes learn rates closer to the optimum than random search."""
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}
        ]
    }

    def late_distance(strategy: str) -> float:
        search = make_search(config(strategy, ranges, objective="Minimize"), max_jobs=30, seed=3)
        distances = []
        for _ in range(30):
            token, values = search.suggest()
            distance = abs(float(values["x"]) - 0.8)
            distances.append(distance)
            search.report(token, distance)
        return sum(distances[-10:]) / 10

    assert late_distance("Bayesian") < late_distance("Random")


def test_failed_jobs_are_reported_without_breaking_the_search() -> None:
    search = make_search(config("Bayesian"), max_jobs=6, seed=2)
    for _ in range(6):
        token, _ = search.suggest()
        search.report(token, None)
    assert search.suggest() is not None


def test_grid_enumerates_every_combination_once() -> None:
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "a", "Values": ["1", "2"]},
            {"Name": "b", "Values": ["x", "y", "z"]},
        ]
    }
    search = make_search(config("Grid", ranges), max_jobs=0)
    assert isinstance(search, GridSearch) and search.size == 6
    points = []
    while (suggestion := search.suggest()) is not None:
        points.append(suggestion[1])
    assert len(points) == 6 and len({tuple(sorted(point.items())) for point in points}) == 6


@pytest.mark.parametrize(
    ("strategy", "ranges", "message"),
    [
        ("Grid", RANGES, "Grid strategy takes only CategoricalParameterRanges"),
        ("Hyperband", RANGES, "strategy Hyperband is not emulated locally"),
    ],
)
def test_unsupported_requests_say_why(strategy: str, ranges: dict, message: str) -> None:
    with pytest.raises(UnsupportedTuningRequest, match=message):
        make_search(config(strategy, ranges), max_jobs=4)


def test_metrics_take_the_last_value_of_each_definition() -> None:
    definitions = [
        {"Name": "validation:auc", "Regex": "validation:auc=([-+0-9.eE]+);"},
        {"Name": "validation:mse", "Regex": "validation:mse=([-+0-9.eE]+);"},
    ]
    output = "validation:auc=0.5;\nvalidation:rmse=0.4;\nvalidation:auc=0.91;\n"
    assert parse_metrics(output, definitions) == {"validation:auc": 0.91}
