"""Warm start: a run's tuning job starts from this stack's latest completed tuning jobs (ml-parameters' warmStart).

The parents are found when the run is built: this stack's tuning jobs (named like the run's, tagged with the
stack), Completed, newest first. SageMaker refuses a warm start that breaks its rules ("Warm Start Tuning
Restrictions", https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-warm-start.html); a tuning
job that would break one is skipped here, with the reason logged, so a changed hyperparameters.json starts cold
rather than failing its runs:

- the same objective metric;
- the same static plus tunable hyperparameters (SageMaker asks for the same number; the same names here);
- a hyperparameter tunable in both keeps its type (integer, continuous, categorical);
- at most 10 changes: a tunable hyperparameter made static counts one per categorical value (one for a numeric
  range), a changed static value counts two (the page's example);
- the training jobs the parents launched, plus this job's maximum, within the 500 a tuning job may launch;
- the parents used the Bayesian or Random strategy, the ones SageMaker documents warm start for.

The type is always TransferLearning: each run has its own manifest, so the data may differ from the parents'.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow_common.ml_parameters import WARM_START_STRATEGIES

WARM_START_TYPE = "TransferLearning"
STACK_TAG = "h2o-sagemaker:stack"
TRAINING_JOBS_PER_TUNING_JOB_MAX = 500
CHANGES_MAX = 10
CANDIDATES_MAX = 20  # tuning jobs looked at per run: the lookup stays bounded, and older ones matter less
RANGE_KINDS = ("Integer", "Continuous", "Categorical")
# Static hyperparameters SageMaker or its SDK may add on their own (`_tuning_objective_metric`), as the trainer
# ignores them: not the user's, so not compared.
RESERVED_PREFIXES = ("_", "sagemaker_")


@dataclass
class ParentSearch:
    """The parents found for one run, and why other tuning jobs of the stack were passed over."""

    parents: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def warm_start_config(self) -> dict[str, Any] | None:
        """CreateHyperParameterTuningJob's WarmStartConfig; None when there is no parent."""
        if not self.parents:
            return None
        return {
            "ParentHyperParameterTuningJobs": [
                {"HyperParameterTuningJobName": name} for name in self.parents
            ],
            "WarmStartType": WARM_START_TYPE,
        }


def _tunable(config: Mapping[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Each tuned hyperparameter's range kind, and its values when categorical."""
    ranges = config.get("ParameterRanges", {})
    return {
        item["Name"]: (kind, list(item.get("Values", [])))
        for kind in RANGE_KINDS
        for item in ranges.get(f"{kind}ParameterRanges", [])
    }


def _static(definition: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: value
        for name, value in definition.get("StaticHyperParameters", {}).items()
        if not name.startswith(RESERVED_PREFIXES)
    }


def incompatibility(
    parent: Mapping[str, Any], config: Mapping[str, Any], definition: Mapping[str, Any]
) -> str | None:
    """Why SageMaker would refuse ``parent`` (a DescribeHyperParameterTuningJob answer) as a warm start parent of a
    tuning job with this HyperParameterTuningJobConfig and TrainingJobDefinition; None if it would not."""
    parent_config = parent["HyperParameterTuningJobConfig"]
    if parent_config.get("Strategy", "Bayesian") not in WARM_START_STRATEGIES:
        return f"its strategy {parent_config.get('Strategy')} is not {' or '.join(WARM_START_STRATEGIES)}"
    objective = parent_config["HyperParameterTuningJobObjective"]["MetricName"]
    if objective != config["HyperParameterTuningJobObjective"]["MetricName"]:
        return f"its objective is {objective}"
    parent_tunable, tunable = _tunable(parent_config), _tunable(config)
    parent_static, static = _static(parent.get("TrainingJobDefinition", {})), _static(definition)
    if set(parent_tunable) | set(parent_static) != set(tunable) | set(static):
        return "its hyperparameters are not the same"
    retyped = sorted(
        name for name in set(parent_tunable) & set(tunable) if parent_tunable[name][0] != tunable[name][0]
    )
    if retyped:
        return f"the type of {', '.join(retyped)} changed"
    changes = sum(max(1, len(parent_tunable[name][1])) for name in set(parent_tunable) & set(static)) + sum(
        2 for name in set(parent_static) & set(static) if parent_static[name] != static[name]
    )
    if changes > CHANGES_MAX:
        return f"{changes} changes to static hyperparameters (SageMaker allows {CHANGES_MAX})"
    return None


def training_jobs_launched(parent: Mapping[str, Any]) -> int:
    return sum(parent.get("TrainingJobStatusCounters", {}).values())


def _candidates(sagemaker: Any, name_prefix: str) -> Iterator[dict[str, Any]]:
    pages = sagemaker.get_paginator("list_hyper_parameter_tuning_jobs").paginate(
        NameContains=name_prefix,
        StatusEquals="Completed",
        SortBy="CreationTime",
        SortOrder="Descending",
        PaginationConfig={"MaxItems": CANDIDATES_MAX, "PageSize": CANDIDATES_MAX},
    )
    for page in pages:
        yield from page["HyperParameterTuningJobSummaries"]


def find_parents(
    sagemaker: Any, tuning: Mapping[str, Any], run_id: str, stack_name: str, max_parents: int
) -> ParentSearch:
    """The parents for ``tuning`` (the run input's tuning part): the stack's newest Completed tuning jobs named like
    it (``<base>-<run id>``) that SageMaker would accept, at most ``max_parents``."""
    name = tuning["hyperParameterTuningJobName"]
    config, definition = tuning["hyperParameterTuningJobConfig"], tuning["trainingJobDefinition"]
    name_prefix = name[: -len(run_id)]
    budget = TRAINING_JOBS_PER_TUNING_JOB_MAX - config["ResourceLimits"].get("MaxNumberOfTrainingJobs", 0)
    search = ParentSearch()
    for summary in _candidates(sagemaker, name_prefix):
        candidate = summary["HyperParameterTuningJobName"]
        if candidate == name or not candidate.startswith(name_prefix):
            continue
        tags = sagemaker.list_tags(ResourceArn=summary["HyperParameterTuningJobArn"])["Tags"]
        if {"Key": STACK_TAG, "Value": stack_name} not in tags:
            continue  # another stack's, named alike
        parent = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=candidate)
        reason = incompatibility(parent, config, definition)
        launched = training_jobs_launched(parent)
        if reason is None and launched > budget:
            reason = (
                f"its {launched} training jobs would take this one past the {TRAINING_JOBS_PER_TUNING_JOB_MAX} "
                "a tuning job may launch, its parents' included"
            )
        if reason:
            search.skipped[candidate] = reason
            continue
        search.parents.append(candidate)
        budget -= launched
        if len(search.parents) == max_parents:
            break
    return search
