"""Warm start parents (workflow_common.warm_start) against moto's SageMaker: the stack's newest compatible Completed
tuning jobs, at most maxParents, within the training job budget; SageMaker's restrictions skip a parent, saying why."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from events import OWNER_STACK_NAME
from moto import mock_aws
from workflow_common.warm_start import STACK_TAG, find_parents, incompatibility

RUN_ID = "12020300-b7c1"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker"
CONFIG: dict[str, Any] = {
    "Strategy": "Bayesian",
    "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
    "ParameterRanges": {
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "3", "MaxValue": "10"}],
        "ContinuousParameterRanges": [{"Name": "learn_rate", "MinValue": "0.01", "MaxValue": "0.2"}],
        "CategoricalParameterRanges": [{"Name": "histogram_type", "Values": ["AUTO", "UniformAdaptive"]}],
    },
}
DEFINITION: dict[str, Any] = {
    "StaticHyperParameters": {"ntrees": "50", "seed": "1", "training": "{'target': 'Survived'}"},
    "AlgorithmSpecification": {"TrainingImage": "trainer:1", "TrainingInputMode": "File"},
    "RoleArn": ROLE_ARN,
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/model-artifacts/"},
    "ResourceConfig": {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}


def tuning(name: str = f"survival-tuning-{RUN_ID}") -> dict[str, Any]:
    """The run input's tuning part, as the trigger builds it."""
    return {
        "hyperParameterTuningJobName": name,
        "hyperParameterTuningJobConfig": copy.deepcopy(CONFIG),
        "trainingJobDefinition": copy.deepcopy(DEFINITION),
    }


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


def create(
    sagemaker: Any,
    name: str,
    stack: str = OWNER_STACK_NAME,
    config: dict[str, Any] | None = None,
    static: dict[str, str] | None = None,
) -> None:
    definition = copy.deepcopy(DEFINITION)
    if static is not None:
        definition["StaticHyperParameters"] = static
    sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config or CONFIG,
        TrainingJobDefinition=definition,
        Tags=[{"Key": STACK_TAG, "Value": stack}],
    )


def parents(sagemaker: Any, max_parents: int = 5) -> Any:
    return find_parents(sagemaker, tuning(), RUN_ID, OWNER_STACK_NAME, max_parents)


def test_newest_completed_tuning_jobs_of_the_stack_become_parents(sagemaker: Any) -> None:
    for run in ("12010300-aaaa", "12020100-bbbb", "12020200-cccc"):
        create(sagemaker, f"survival-tuning-{run}")
    create(sagemaker, "survival-tuning-12020250-dddd", stack="another-stack")  # named alike, not this stack's
    create(sagemaker, "old-survival-tuning-12020260-eeee")  # contains the name, does not start with it

    found = parents(sagemaker, max_parents=2)

    assert found.parents == ["survival-tuning-12020200-cccc", "survival-tuning-12020100-bbbb"]
    assert found.skipped == {}
    assert found.warm_start_config() == {
        "ParentHyperParameterTuningJobs": [
            {"HyperParameterTuningJobName": "survival-tuning-12020200-cccc"},
            {"HyperParameterTuningJobName": "survival-tuning-12020100-bbbb"},
        ],
        "WarmStartType": "TransferLearning",
    }


def test_no_parent_means_no_warm_start(sagemaker: Any) -> None:
    found = parents(sagemaker)
    assert found.parents == [] and found.warm_start_config() is None


def test_a_tuning_job_sagemaker_would_refuse_is_skipped_with_the_reason(sagemaker: Any) -> None:
    create(sagemaker, "survival-tuning-12010300-aaaa")
    other_objective = copy.deepcopy(CONFIG) | {
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:logloss"}
    }
    create(sagemaker, "survival-tuning-12020100-bbbb", config=other_objective)

    found = parents(sagemaker)

    assert found.parents == ["survival-tuning-12010300-aaaa"]
    assert found.skipped == {"survival-tuning-12020100-bbbb": "its objective is validation:logloss"}


def test_parents_stay_within_the_training_jobs_a_tuning_job_may_launch(
    sagemaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for run in ("12010300-aaaa", "12020100-bbbb"):
        create(sagemaker, f"survival-tuning-{run}")  # moto reports one training job launched by each
    monkeypatch.setattr("workflow_common.warm_start.TRAINING_JOBS_PER_TUNING_JOB_MAX", 11)

    found = parents(sagemaker)  # this job's 10 and one parent's 1 fill the 11

    assert found.parents == ["survival-tuning-12020100-bbbb"]
    assert "would take this one past the 11" in found.skipped["survival-tuning-12010300-aaaa"]


def described(config: dict[str, Any] | None = None, static: dict[str, str] | None = None) -> dict[str, Any]:
    """A parent's DescribeHyperParameterTuningJob answer, as far as the rules read it."""
    return {
        "HyperParameterTuningJobConfig": config or copy.deepcopy(CONFIG),
        "TrainingJobDefinition": {
            "StaticHyperParameters": static or dict(DEFINITION["StaticHyperParameters"])
        },
    }


def searching(
    integer: tuple[str, str, str] = ("max_depth", "3", "10"),
    continuous: tuple[str, str, str] = ("learn_rate", "0.01", "0.2"),
    *categorical: tuple[str, list[str]],
) -> dict[str, Any]:
    """CONFIG with one integer range, one continuous range (name, bounds) and the categorical ranges given (by
    default CONFIG's own)."""
    return copy.deepcopy(CONFIG) | {
        "ParameterRanges": {
            "IntegerParameterRanges": [{"Name": integer[0], "MinValue": integer[1], "MaxValue": integer[2]}],
            "ContinuousParameterRanges": [
                {"Name": continuous[0], "MinValue": continuous[1], "MaxValue": continuous[2]}
            ],
            "CategoricalParameterRanges": [
                {"Name": name, "Values": values}
                for name, values in categorical or (("histogram_type", ["AUTO", "UniformAdaptive"]),)
            ],
        }
    }


STATIC = DEFINITION["StaticHyperParameters"]
MANY_VALUES = [f"v{index}" for index in range(11)]


@pytest.mark.parametrize(
    ("parent", "reason"),
    [
        pytest.param(described(), None, id="same-search"),
        pytest.param(
            described(
                searching(("max_depth", "2", "6"), ("learn_rate", "0.1", "0.5"), ("histogram_type", ["AUTO"]))
            ),
            None,
            id="other-ranges",
        ),
        pytest.param(
            described(
                searching(("max_depth", "3", "10"), ("learn_rate", "0.01", "0.2"), ("ntrees", ["50", "100"])),
                static={"histogram_type": "AUTO", "seed": "1", "training": STATIC["training"]},
            ),
            None,
            id="tunable-and-static-swapped",
        ),
        pytest.param(
            described(static={"seed": "1", "training": STATIC["training"]}),
            "its hyperparameters are not the same",
            id="one-fewer",
        ),
        pytest.param(
            described(searching(("learn_rate", "1", "2"), ("max_depth", "3", "10"))),
            "the type of learn_rate, max_depth changed",
            id="retyped",
        ),
        pytest.param(
            described(
                searching(
                    ("max_depth", "3", "10"),
                    ("learn_rate", "0.01", "0.2"),
                    ("histogram_type", ["AUTO"]),
                    ("ntrees", MANY_VALUES),
                ),
                static={"seed": "1", "training": STATIC["training"]},
            ),
            "11 changes to static hyperparameters (SageMaker allows 10)",
            id="eleven-values-made-static",
        ),
        pytest.param(
            described(static={**STATIC, "ntrees": "40", "seed": "2"}),
            None,
            id="two-static-values-changed",
        ),
        pytest.param(
            described(static={**STATIC, "_tuning_objective_metric": "validation:auc"}),
            None,
            id="what-sagemaker-adds",
        ),
        pytest.param(
            described(copy.deepcopy(CONFIG) | {"Strategy": "Hyperband"}),
            "its strategy Hyperband is not Bayesian or Random",
            id="hyperband-parent",
        ),
    ],
)
def test_sagemakers_warm_start_restrictions(parent: dict[str, Any], reason: str | None) -> None:
    assert incompatibility(parent, CONFIG, DEFINITION) == reason
