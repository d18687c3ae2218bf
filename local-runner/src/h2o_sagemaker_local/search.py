"""Hyperparameter search for local tuning jobs: SageMaker's ParameterRanges, sampled by a real optimiser.

Bayesian uses Optuna's TPE sampler (with a constant liar so parallel jobs do not pick the same point), Random
Optuna's random sampler, Grid every combination of the categorical values. Values go to the training job as
strings, as SageMaker sends them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)

LOCAL_STRATEGIES = ("Bayesian", "Random", "Grid")


class UnsupportedTuningRequest(ValueError):
    """The request asks for something the local emulation does not do; the message says what."""


EarlierResults = Sequence[tuple[Mapping[str, str], float]]
"""Training jobs of a warm start's parents: each one's hyperparameters (as strings) and objective value."""


class Search(Protocol):
    warm_start_trials: int
    """How many of the parents' training jobs the search started from."""

    def suggest(self) -> tuple[Any, dict[str, str]] | None:
        """A token and the next hyperparameters, or None when the search space is exhausted."""

    def report(self, token: Any, objective: float | None) -> None:
        """The job's objective value, or None when it failed."""


def _as_string(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _study_direction(objective_type: str) -> optuna.study.StudyDirection:
    """SageMaker's objective type (Maximize or Minimize) as Optuna's study direction."""
    directions = {
        "maximize": optuna.study.StudyDirection.MAXIMIZE,
        "minimize": optuna.study.StudyDirection.MINIMIZE,
    }
    if objective_type.lower() not in directions:
        raise ValueError(f"objective type {objective_type!r} is neither Maximize nor Minimize")
    return directions[objective_type.lower()]


class OptunaSearch:
    def __init__(
        self, ranges: dict[str, list[dict[str, Any]]], direction: str, sampler: optuna.samplers.BaseSampler
    ):
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {}
        self.reversed: set[str] = set()
        for item in ranges.get("IntegerParameterRanges", []):
            self.distributions[item["Name"]] = optuna.distributions.IntDistribution(
                int(item["MinValue"]), int(item["MaxValue"]), log=item.get("ScalingType") == "Logarithmic"
            )
        for item in ranges.get("ContinuousParameterRanges", []):
            low, high, scaling = (
                float(item["MinValue"]),
                float(item["MaxValue"]),
                item.get("ScalingType", "Auto"),
            )
            if scaling == "ReverseLogarithmic":
                # Dense near the upper bound: sample 1 - x on a log scale.
                self.reversed.add(item["Name"])
                low, high = 1 - high, 1 - low
            self.distributions[item["Name"]] = optuna.distributions.FloatDistribution(
                low, high, log=scaling in ("Logarithmic", "ReverseLogarithmic")
            )
        for item in ranges.get("CategoricalParameterRanges", []):
            self.distributions[item["Name"]] = optuna.distributions.CategoricalDistribution(item["Values"])
        self.study = optuna.create_study(direction=_study_direction(direction), sampler=sampler)
        self.warm_start_trials = 0

    def start_from(self, earlier: EarlierResults) -> None:
        """Tell the study the results of earlier training jobs (a warm start's parents'), as SageMaker starts a warm
        start tuning job from them; a job with a value outside this search space or without a value for one of its
        hyperparameters cannot be placed in it and is left out."""
        for hyperparameters, objective in earlier:
            try:
                params = {name: self._internal(name, hyperparameters[name]) for name in self.distributions}
                trial = optuna.trial.create_trial(
                    params=params, distributions=self.distributions, value=objective
                )
            except (KeyError, ValueError):
                continue
            self.study.add_trial(trial)
            self.warm_start_trials += 1

    def _internal(self, name: str, text: str) -> Any:
        """A value as sent to a training job, in the study's terms (the inverse of what `suggest` sends)."""
        distribution = self.distributions[name]
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            return text
        value = float(text)
        if name in self.reversed:
            value = 1 - value
        if isinstance(distribution, optuna.distributions.IntDistribution):
            if not value.is_integer():
                raise ValueError(f"{name}={text} is not an integer")
            return int(value)
        return value

    def suggest(self) -> tuple[optuna.trial.Trial, dict[str, str]]:
        trial = self.study.ask(self.distributions)
        values = {
            name: _as_string(1 - value if name in self.reversed else value)
            for name, value in trial.params.items()
        }
        return trial, values

    def report(self, token: optuna.trial.Trial, objective: float | None) -> None:
        if objective is None:
            self.study.tell(token, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(token, objective)


class GridSearch:
    warm_start_trials = 0

    def __init__(self, ranges: dict[str, list[dict[str, Any]]]):
        if ranges.get("IntegerParameterRanges") or ranges.get("ContinuousParameterRanges"):
            raise UnsupportedTuningRequest("the Grid strategy takes only CategoricalParameterRanges")
        categorical = ranges.get("CategoricalParameterRanges", [])
        names = [item["Name"] for item in categorical]
        self.size = 1
        for item in categorical:
            self.size *= len(item["Values"])
        self.points: Iterator[dict[str, str]] = (
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(item["Values"] for item in categorical))
        )

    def suggest(self) -> tuple[None, dict[str, str]] | None:
        point = next(self.points, None)
        return None if point is None else (None, point)

    def report(self, token: None, objective: float | None) -> None:
        pass


def make_search(
    config: dict[str, Any], max_jobs: int, seed: int | None = None, earlier: EarlierResults = ()
) -> Search:
    """The search a tuning job's config asks for; ``earlier``: a warm start's parents' results to start from (a
    Bayesian or Random search: tuning_warm_start refuses warm start with the other strategies first)."""
    strategy = config.get("Strategy", "Bayesian")
    ranges = config.get("ParameterRanges", {})
    direction = config["HyperParameterTuningJobObjective"]["Type"]
    if strategy in ("Bayesian", "Random"):
        sampler: optuna.samplers.BaseSampler = (
            optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=max(2, min(10, max_jobs // 3)), constant_liar=True
            )
            if strategy == "Bayesian"
            else optuna.samplers.RandomSampler(seed=seed)
        )
        search = OptunaSearch(ranges, direction, sampler)
        search.start_from(earlier)
        return search
    if strategy == "Grid":
        return GridSearch(ranges)
    raise UnsupportedTuningRequest(
        f"strategy {strategy} is not emulated locally (supported: {', '.join(LOCAL_STRATEGIES)}); it runs on AWS"
    )
