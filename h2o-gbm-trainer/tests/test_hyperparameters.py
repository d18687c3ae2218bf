"""Decoding SageMaker's string hyperparameters: the original's file, plain keys, and clear failures."""

from __future__ import annotations

import pytest
from h2o_gbm_trainer.errors import TrainingInputError
from h2o_gbm_trainer.hyperparameters import decode_hyperparameters


def test_the_original_hyperparameters_decode(jobs) -> None:
    decoded = decode_hyperparameters(
        jobs.original_hyperparameters() | {"ntrees": "42", "learn_rate": "0.005"}
    )

    assert decoded.target == "Survived"
    assert decoded.classification is True
    assert decoded.ignored_columns == ("PassengerId", "Name", "Cabin", "Ticket")
    # The original lists Embarked twice.
    assert decoded.categorical_columns == ("Sex", "Embarked", "Survived", "Pclass")
    assert decoded.gbm_parameters() == {
        "learn_rate": 0.005,
        "stopping_rounds": 10,
        "stopping_metric": "AUC",
        "stopping_tolerance": 1e-9,
        "balance_classes": True,
        "distribution": "bernoulli",
        "seed": 1,
    }
    assert decoded.ntrees == 42


def test_plain_keys_override_the_training_dict_string() -> None:
    decoded = decode_hyperparameters(
        {
            "training": "{'target': 'Survived', 'classification': 'true', 'ignored_columns': 'Name'}",
            "classification": "False",
            "ignored_columns": "Name, Ticket",
        }
    )

    assert decoded.classification is False
    assert decoded.ignored_columns == ("Name", "Ticket")


@pytest.mark.parametrize(
    ("text", "expected"), [("false", False), ("False", False), ("true", True), ("True", True)]
)
def test_booleans_arrive_as_strings(text: str, expected: bool) -> None:
    assert decode_hyperparameters({"target": "y", "balance_classes": text}).balance_classes is expected


def test_keys_sagemaker_injects_are_ignored() -> None:
    decoded = decode_hyperparameters(
        {"target": "y", "_tuning_objective_metric": "validation:auc", "sagemaker_job_name": "job-1"}
    )

    assert decoded.as_json() == {
        "target": "y",
        "ignored_columns": [],
        "categorical_columns": [],
        "checkpoint_interval_seconds": 60,
        "ntrees": 50,
    }


@pytest.mark.parametrize(
    ("hyperparameters", "reason"),
    [
        ({"target": "y", "ntrees": "many"}, "invalid hyperparameter 'ntrees'='many'"),
        (
            {"target": "y", "ntrees": "0"},
            "invalid hyperparameter 'ntrees'='0': Input should be greater than or equal to 1",
        ),
        ({"target": "y", "learn_rate": "1.5"}, "invalid hyperparameter 'learn_rate'='1.5'"),
        ({"target": "y", "sample_rate": "nan"}, "invalid hyperparameter 'sample_rate'='nan'"),
        ({"target": "y", "distribution": "bernouli"}, "invalid hyperparameter 'distribution'='bernouli'"),
        ({"target": "y", "max_dept": "3"}, "unknown hyperparameter 'max_dept'"),
        ({"ntrees": "10"}, "missing required hyperparameter 'target'"),
        ({"target": " "}, "invalid hyperparameter 'target'=' ': Value error, must name a column"),
        (
            {"training": "{'target': 'y', 'classification': 'maybe'}"},
            "invalid hyperparameter 'classification' (inside 'training')='maybe'",
        ),
        ({"training": "{'target': 'y', 'depth': '3'}"}, "unknown key 'depth' in hyperparameter 'training'"),
        ({"training": "['target', 'y']"}, "hyperparameter 'training' must be a dict-like string"),
        # literal_eval, never eval: code is refused, not run.
        ({"training": "__import__('os').getcwd()"}, "hyperparameter 'training' is not a dict-like string"),
    ],
)
def test_bad_hyperparameters_name_the_key(hyperparameters: dict[str, str], reason: str) -> None:
    with pytest.raises(TrainingInputError) as raised:
        decode_hyperparameters(hyperparameters)

    assert str(raised.value).startswith(reason)
    assert "\n" not in str(raised.value)


def test_enumerations_accept_any_letter_case_and_keep_h2o_spelling() -> None:
    decoded = decode_hyperparameters(
        {"target": "y", "stopping_metric": "auc", "histogram_type": "quantilesglobal"}
    )

    assert (decoded.stopping_metric, decoded.histogram_type) == ("AUC", "QuantilesGlobal")
