"""Local tuning strategies sample SageMaker's ParameterRanges faithfully."""

from __future__ import annotations

import math
from typing import Any

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


def assert_within_ranges(values: dict[str, str]) -> None:
    """Every range named once, as SageMaker sends it: a string, an integer for an integer range, inside it."""
    assert set(values) == {"ntrees", "learn_rate", "sample_rate", "distribution"}
    assert all(isinstance(value, str) for value in values.values())
    assert values["ntrees"].isdigit() and 10 <= int(values["ntrees"]) <= 100
    assert 0.001 <= float(values["learn_rate"]) <= 0.1
    assert 0.5 <= float(values["sample_rate"]) <= 0.999
    assert values["distribution"] in ("bernoulli", "auto")


@pytest.mark.parametrize("strategy", ["Bayesian", "Random"])
def test_suggestions_are_strings_within_the_ranges(strategy: str) -> None:
    search = make_search(config(strategy), max_jobs=12, seed=1)
    for _ in range(12):
        token, values = search.suggest()
        assert_within_ranges(values)
        search.report(token, -abs(math.log(float(values["learn_rate"])) - math.log(0.01)))


def test_logarithmic_scales_are_dense_at_their_small_end() -> None:
    """Half the samples of a Logarithmic range fall below its geometric midpoint (a linear scale: 9 %); half of
    a ReverseLogarithmic one fall within the same distance of its upper bound (linear: 4 %)."""
    search = make_search(config("Random"), max_jobs=400, seed=4)
    samples = [search.suggest()[1] for _ in range(400)]
    near_low = sum(float(values["learn_rate"]) < math.sqrt(0.001 * 0.1) for values in samples) / 400
    near_high = sum(float(values["sample_rate"]) > 1 - math.sqrt(0.001 * 0.5) for values in samples) / 400
    assert 0.4 < near_low < 0.6
    assert 0.4 < near_high < 0.6
    assert {values["distribution"] for values in samples} == {"bernoulli", "auto"}


def test_an_absent_strategy_is_bayesian() -> None:
    """SageMaker's default strategy: the same suggestions as Bayesian for the same seed and results."""
    unnamed = config("Bayesian")
    del unnamed["Strategy"]
    searches = [
        make_search(unnamed, max_jobs=12, seed=5),
        make_search(config("Bayesian"), max_jobs=12, seed=5),
    ]
    for _ in range(12):
        (token, values), (other_token, other_values) = (search.suggest() for search in searches)
        assert values == other_values
        for search, trial in zip(searches, (token, other_token), strict=True):
            search.report(trial, -abs(float(values["learn_rate"]) - 0.01))


@pytest.mark.parametrize("objective", ["Minimize", "Maximize"])
def test_bayesian_search_concentrates_on_the_better_region(objective: str) -> None:
    """After its random start-up trials TPE proposes values closer to the optimum than random search, whichever
    way the objective points."""
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}
        ]
    }
    sign = 1 if objective == "Minimize" else -1

    def late_distance(strategy: str) -> float:
        search = make_search(config(strategy, ranges, objective=objective), max_jobs=30, seed=3)
        distances = []
        for _ in range(30):
            token, values = search.suggest()
            distance = abs(float(values["x"]) - 0.8)
            distances.append(distance)
            search.report(token, sign * distance)
        return sum(distances[-10:]) / 10

    assert late_distance("Bayesian") < late_distance("Random")


def test_failed_jobs_are_reported_without_breaking_the_search() -> None:
    search = make_search(config("Bayesian"), max_jobs=6, seed=2)
    suggested = []
    for _ in range(6):
        token, values = search.suggest()
        suggested.append(values)
        search.report(token, None)
    suggestion = search.suggest()
    assert suggestion is not None
    assert_within_ranges(suggestion[1])
    assert len({tuple(sorted(values.items())) for values in [*suggested, suggestion[1]]}) == 7


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
        token, point = suggestion
        search.report(token, 0.5)
        points.append(point)
    assert points == [{"a": a, "b": b} for a in ("1", "2") for b in ("x", "y", "z")]
    assert search.suggest() is None


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


def test_a_warm_start_places_earlier_jobs_that_fit_the_ranges_and_leaves_out_the_others() -> None:
    cold = make_search(config("Bayesian"), max_jobs=6, seed=4)
    earlier = []
    for _ in range(4):
        _token, values = cold.suggest()
        earlier.append((values | {"seed": "1"}, 0.9))  # static hyperparameters ride along, and are ignored
    misfits = [
        earlier[0][0] | {"ntrees": "150"},  # outside the integer range
        earlier[0][0] | {"ntrees": "20.5"},  # not an integer
        earlier[0][0] | {"distribution": "gaussian"},  # not one of the categorical values
        {key: value for key, value in earlier[0][0].items() if key != "learn_rate"},  # no value for a range
    ]

    warm = make_search(
        config("Bayesian"), max_jobs=6, seed=4, earlier=[*earlier, *((values, 0.5) for values in misfits)]
    )

    assert warm.warm_start_trials == 4
    placed = warm.study.trials  # type: ignore[attr-defined]
    # Each placed as the study would have sampled it: a reversed-logarithmic value maps back to itself.
    assert [float(trial.params["sample_rate"]) for trial in placed] == pytest.approx(
        [1 - float(values["sample_rate"]) for values, _ in earlier]
    )
    assert all(isinstance(trial.params["ntrees"], int) for trial in placed)


def test_a_warm_start_from_good_results_begins_near_them() -> None:
    """Bayesian search started from earlier jobs models them at once, instead of sampling at random first."""
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}
        ]
    }
    earlier = [({"x": repr(index / 20)}, -abs(index / 20 - 0.8)) for index in range(21)]

    def first_distances(search: Any) -> float:
        distances = []
        for _ in range(5):
            token, values = search.suggest()
            distances.append(abs(float(values["x"]) - 0.8))
            search.report(token, -distances[-1])
        return sum(distances) / len(distances)

    cold = make_search(config("Bayesian", ranges), max_jobs=15, seed=3)
    warm = make_search(config("Bayesian", ranges), max_jobs=15, seed=3, earlier=earlier)
    assert warm.warm_start_trials == 21
    assert first_distances(warm) < first_distances(cold) / 2
