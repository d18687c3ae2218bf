"""SageMaker's side of a warm start tuning job (CreateHyperParameterTuningJob's WarmStartConfig): what it refuses,
and the parents' results the new tuning job's search starts from.

Refused as the "Warm Start Tuning Restrictions" say
(https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-warm-start.html): more than 5 parents, a
parent not Completed, Stopped or Failed, another objective metric, another number of static plus tunable
hyperparameters, a hyperparameter whose type changed, more than 10 changes to static values, more than 500
training jobs with the parents'. Where AWS documents nothing the local run refuses rather than guesses: the Grid
and Hyperband strategies (the page names Bayesian and random search only), and IdenticalDataAndAlgorithm, whose
OverallBestTrainingJob is not emulated.

Warm start is not recursive: a parent's own parents are not read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_PARENTS = 5
TERMINAL_STATUSES = ("Completed", "Stopped", "Failed")
STRATEGIES = ("Bayesian", "Random")
EMULATED_TYPES = ("TransferLearning",)
MAX_STATIC_CHANGES = 10
MAX_TRAINING_JOBS = 500


class WarmStartRefused(ValueError):
    """SageMaker's ValidationException for the request: the message says which rule."""


@dataclass(frozen=True)
class ParentJob:
    """What a warm start reads of a parent tuning job."""

    name: str
    status: str
    request: Mapping[str, Any]  # its CreateHyperParameterTuningJob request
    training_jobs_launched: int
    # Each of its training jobs with an objective value: all its hyperparameters (static and tuned), the value.
    results: Sequence[tuple[Mapping[str, str], float]]


def _kinds(request: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """Each tunable hyperparameter's type, and the changes making it static counts: one per categorical value, one
    for a numeric range."""
    ranges = request["HyperParameterTuningJobConfig"].get("ParameterRanges", {})
    return {
        item["Name"]: (kind, len(item.get("Values", [])) or 1)
        for kind in ("Integer", "Continuous", "Categorical")
        for item in ranges.get(f"{kind}ParameterRanges", [])
    }


def _static(request: Mapping[str, Any]) -> dict[str, str]:
    return dict(request["TrainingJobDefinition"].get("StaticHyperParameters", {}))


def _check_parent(request: Mapping[str, Any], parent: ParentJob) -> None:
    strategy = parent.request["HyperParameterTuningJobConfig"].get("Strategy", "Bayesian")
    if strategy not in STRATEGIES:
        raise WarmStartRefused(
            f"Parent tuning job {parent.name} used the {strategy} strategy; warm start is emulated for "
            f"{' and '.join(STRATEGIES)} only"
        )
    if parent.status not in TERMINAL_STATUSES:
        raise WarmStartRefused(
            f"Parent tuning job {parent.name} is {parent.status}: parent jobs must be in a terminal state "
            f"({', '.join(TERMINAL_STATUSES)})"
        )
    objective = request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    parent_objective = parent.request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    if parent_objective["MetricName"] != objective:
        raise WarmStartRefused(
            f"The objective metric {objective} is not the one of parent tuning job {parent.name} "
            f"({parent_objective['MetricName']})"
        )
    kinds, parent_kinds = _kinds(request), _kinds(parent.request)
    static, parent_static = _static(request), _static(parent.request)
    if len(kinds) + len(static) != len(parent_kinds) + len(parent_static):
        raise WarmStartRefused(
            f"The total number of static plus tunable hyperparameters ({len(kinds) + len(static)}) differs from "
            f"parent tuning job {parent.name}'s ({len(parent_kinds) + len(parent_static)})"
        )
    for name in kinds.keys() & parent_kinds.keys():
        if kinds[name][0] != parent_kinds[name][0]:
            raise WarmStartRefused(
                f"The type of hyperparameter {name} changed from parent tuning job {parent.name}'s"
            )
    made_static = sum(changes for name, (_, changes) in parent_kinds.items() if name in static)
    values_changed = 2 * sum(
        1 for name, value in parent_static.items() if name in static and static[name] != value
    )
    if made_static + values_changed > MAX_STATIC_CHANGES:
        raise WarmStartRefused(
            f"{made_static + values_changed} changes from parent tuning job {parent.name}'s tunable and static "
            f"hyperparameters to static values; at most {MAX_STATIC_CHANGES} are allowed"
        )


def parents_of(request: Mapping[str, Any], find: Callable[[str], ParentJob | None]) -> list[ParentJob]:
    """The parents named by the request's WarmStartConfig (``find``: a tuning job by name, None if there is none),
    or WarmStartRefused saying why SageMaker would refuse."""
    config = request["WarmStartConfig"]
    names = [item["HyperParameterTuningJobName"] for item in config.get("ParentHyperParameterTuningJobs", [])]
    if not 1 <= len(names) <= MAX_PARENTS:
        raise WarmStartRefused(
            f"WarmStartConfig.ParentHyperParameterTuningJobs has {len(names)} jobs; 1 to {MAX_PARENTS} are allowed"
        )
    if config.get("WarmStartType") not in EMULATED_TYPES:
        raise WarmStartRefused(
            f"WarmStartType {config.get('WarmStartType')} is not emulated locally (emulated: "
            f"{', '.join(EMULATED_TYPES)})"
        )
    strategy = request["HyperParameterTuningJobConfig"].get("Strategy", "Bayesian")
    if strategy not in STRATEGIES:
        raise WarmStartRefused(
            f"Warm start is emulated for the {' and '.join(STRATEGIES)} strategies only, not {strategy}"
        )
    found = {name: find(name) for name in names}
    missing = [name for name, parent in found.items() if parent is None]
    if missing:
        raise WarmStartRefused(f"Parent tuning job(s) not found: {', '.join(missing)}")
    parents = [parent for parent in found.values() if parent is not None]
    for parent in parents:
        _check_parent(request, parent)
    launched = sum(parent.training_jobs_launched for parent in parents)
    requested = request["HyperParameterTuningJobConfig"]["ResourceLimits"].get("MaxNumberOfTrainingJobs", 0)
    if launched + requested > MAX_TRAINING_JOBS:
        raise WarmStartRefused(
            f"The parent tuning jobs' {launched} training jobs and MaxNumberOfTrainingJobs {requested} exceed the "
            f"{MAX_TRAINING_JOBS} training jobs of a tuning job"
        )
    return parents
