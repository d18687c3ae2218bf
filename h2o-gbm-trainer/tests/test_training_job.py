"""Whole training jobs through the `train` entrypoint, with real H2O, on the example Titanic data."""

from __future__ import annotations

import csv
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.h2o

CONTRACT_KEYS = {
    "format_version",
    "mojo_file",
    "genmodel_jar",
    "h2o_version",
    "algorithm",
    "model_category",
    "target",
    "target_domain",
    "input_columns",
    "features",
    "metrics",
    "hyperparameters",
    "threshold",
    "variable_importances",
    "scoring_history",
}


def _auc(labels: list[int], scores: list[float]) -> float:
    """Rank-based AUC (ties count half): an estimate independent of H2O."""
    positives = [score for label, score in zip(labels, scores, strict=True) if label == 1]
    negatives = [score for label, score in zip(labels, scores, strict=True) if label == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def _score_with_the_shipped_mojo(model_dir: Path, input_csv: Path, output_csv: Path) -> list[dict[str, str]]:
    genmodel_jar, mojo = model_dir / "h2o-genmodel.jar", model_dir / "model.zip"
    subprocess.run(
        ["java", "-cp", str(genmodel_jar), "hex.genmodel.tools.PredictCsv", "--mojo", str(mojo),
         "--input", str(input_csv), "--output", str(output_csv), "--decimal"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with output_csv.open(newline="") as predictions:
        return list(csv.DictReader(predictions))


def _mojo_info(model_dir: Path) -> dict[str, str]:
    with zipfile.ZipFile(model_dir / "model.zip") as mojo:
        lines = mojo.read("model.ini").decode().splitlines()
    return dict(line.split(" = ", 1) for line in lines if " = " in line)


def test_the_job_writes_the_model_files_and_the_metadata_of_the_contract(titanic_run, jobs) -> None:
    metadata = titanic_run.metadata()

    assert set(metadata) == CONTRACT_KEYS
    assert (titanic_run.model_dir / metadata["mojo_file"]).is_file()
    assert (titanic_run.model_dir / metadata["genmodel_jar"]).is_file()
    assert titanic_run.failure is None
    with jobs.train_csv.open(newline="") as train_csv:
        header = next(csv.reader(train_csv))
    assert metadata["input_columns"] == [name for name in header if name != "Survived"]
    expected_scalars = {
        "format_version": 1,
        "mojo_file": "model.zip",
        "genmodel_jar": "h2o-genmodel.jar",
        "h2o_version": "3.46.0.11",
        "algorithm": "gbm",
        "model_category": "Binomial",
        "target": "Survived",
        "target_domain": ["0", "1"],
    }
    assert {key: metadata[key] for key in expected_scalars} == expected_scalars
    assert metadata["features"] == [
        {"name": "Pclass", "type": "enum", "domain": ["1", "2", "3"]},
        {"name": "Sex", "type": "enum", "domain": ["female", "male"]},
        {"name": "Age", "type": "numeric", "domain": None},
        {"name": "SibSp", "type": "numeric", "domain": None},
        {"name": "Parch", "type": "numeric", "domain": None},
        {"name": "Fare", "type": "numeric", "domain": None},
        {"name": "Embarked", "type": "enum", "domain": ["C", "Q", "S"]},
    ]
    assert metadata["hyperparameters"]["target"] == "Survived"
    assert metadata["hyperparameters"]["ntrees"] == 30
    assert set(metadata["metrics"]["validation"]) == {"auc", "logloss", "rmse", "mse", "gini", "aucpr"}
    # What reports need: the label threshold, the importances (shares adding up to 1) and the scoring history.
    assert 0 < metadata["threshold"] < 1
    importances = metadata["variable_importances"]
    assert importances[0]["scaled_importance"] == 1.0  # the most important first
    assert sum(item["percentage"] for item in importances) == pytest.approx(1.0)
    history = metadata["scoring_history"]
    assert history[-1]["number_of_trees"] == 30
    assert {"training_auc", "validation_auc", "validation_logloss"} <= set(history[-1])


def test_validation_metric_lines_parse_with_the_tuner_regexes_and_match_the_mojo(
    titanic_run, jobs, scrape_metrics, tmp_path
) -> None:
    scraped = scrape_metrics(titanic_run.stdout)
    # Grown in checkpointed steps: H2O's in-memory model re-scores such a model unlike its MOJO.
    assert titanic_run.stdout.count("checkpoint saved") > 2

    validation = titanic_run.metadata()["metrics"]["validation"]
    assert scraped == {f"validation:{name}": float(f"{value:.10g}") for name, value in validation.items()}
    # The shipped MOJO and jar score the validation set to the same AUC the tuner reads.
    predictions = _score_with_the_shipped_mojo(
        titanic_run.model_dir, jobs.validation_csv, tmp_path / "out.csv"
    )
    with jobs.validation_csv.open(newline="") as validation_csv:
        labels = [int(row["Survived"]) for row in csv.DictReader(validation_csv)]
    assert _auc(labels, [float(row["p1"]) for row in predictions]) == pytest.approx(
        scraped["validation:auc"], abs=1e-9
    )
    assert 0.85 < scraped["validation:auc"] < 0.97


def test_progress_lines_are_printed_apart_from_metric_lines(titanic_run) -> None:
    lines = titanic_run.stdout.splitlines()
    metric_lines = [line for line in lines if line.startswith("validation:")]

    assert all(re.fullmatch(r"validation:[a-z_]+=[-+0-9.eE]+;", line) for line in metric_lines)
    assert lines[-6:] == metric_lines[-6:]
    assert any("H2O JVM up in" in line for line in lines)
    assert any(
        "data loaded in" in line and "training 712 rows" in line and "validation 179 rows" in line
        for line in lines
    )
    assert any("training finished in" in line for line in lines)
    assert not any(line.startswith("training:") for line in lines)


def test_each_scoring_round_prints_its_metrics_as_the_model_grows_and_the_final_ones_come_last(
    titanic_run,
) -> None:
    """SageMaker's early stopping needs the objective per epoch; a GBM's epochs are its scoring rounds. The model
    grew in checkpointed steps, each repeating the earlier rounds in its history: each round is printed once."""
    lines = titanic_run.stdout.splitlines()
    metadata = titanic_run.metadata()
    rounds = sorted(
        {row["number_of_trees"] for row in metadata["scoring_history"] if row["number_of_trees"] > 0}
    )
    assert rounds[-1] == 30 and len(rounds) >= 6  # score_tree_interval 5, and each step's end
    aucs = [float(line.split("=")[1].rstrip(";")) for line in lines if line.startswith("validation:auc=")]
    assert len(aucs) == len(rounds) + 1  # one per round, then the final metrics
    history = {
        row["number_of_trees"]: row["validation_auc"]
        for row in metadata["scoring_history"]
        if row["number_of_trees"]
    }
    assert aucs[:-1] == pytest.approx([history[trees] for trees in rounds], abs=1e-9)
    assert aucs[-1] == pytest.approx(metadata["metrics"]["validation"]["auc"], abs=1e-9)
    per_round = [line for line in lines if line.startswith("validation:")][:-6]
    assert len(per_round) == 6 * len(rounds)  # gini and mse too, from auc and rmse
    assert lines.index(per_round[0]) < next(
        i for i, line in enumerate(lines) if "training finished in" in line
    )


def test_the_pinned_h2o_exports_mojos(titanic_run) -> None:
    """3.46.0.12 refuses MOJO export ("requires H2O-3 Secure"): a pin change that loses export fails here."""
    info = _mojo_info(titanic_run.model_dir)

    assert info["h2o_version"] == "3.46.0.11"
    assert info["license"] == "Apache License Version 2.0"
    assert info["algo"] == "gbm"


def test_two_jobs_at_once_regression_without_validation_and_multinomial(
    jobs, scrape_metrics, tmp_path
) -> None:
    """Ports and scratch files must not collide when the local pipeline runs jobs side by side."""
    regression = jobs.make(
        tmp_path / "regression",
        {"target": "Fare", "classification": "false", "ignored_columns": "PassengerId,Name,Ticket,Cabin",
         "ntrees": "20", "seed": "1"},
        {"training": jobs.train_csv},
    )  # fmt: skip
    # The validation file may lack an ignored column, even one listed as categorical.
    validation_without_cabin = tmp_path / "validation.csv"
    with (
        jobs.validation_csv.open(newline="") as source,
        validation_without_cabin.open("w", newline="") as target,
    ):
        writer = csv.writer(target)
        for row in csv.reader(source):
            writer.writerow(row[:10] + row[11:])
    multinomial = jobs.make(
        tmp_path / "multinomial",
        {"target": "Pclass", "classification": "true", "ignored_columns": "PassengerId,Name,Ticket,Cabin",
         "categorical_columns": "Cabin,Embarked", "ntrees": "20", "seed": "1"},
        {"training": jobs.train_csv, "validation": validation_without_cabin},
    )  # fmt: skip
    processes = [(jobs.start(regression), regression), (jobs.start(multinomial), multinomial)]
    regression_run, multinomial_run = (jobs.finish(process, base_dir) for process, base_dir in processes)

    assert regression_run.returncode == 0, regression_run.stderr
    assert multinomial_run.returncode == 0, multinomial_run.stderr

    regression_metadata = regression_run.metadata()
    assert (regression_metadata["model_category"], regression_metadata["target_domain"]) == (
        "Regression",
        None,
    )
    assert regression_metadata["metrics"]["validation"] is None
    assert regression_metadata["threshold"] is None  # a binomial model's alone
    # No validation channel: the training metrics are printed, labelled by their channel name.
    assert scrape_metrics(regression_run.stdout) == {
        f"training:{name}": float(f"{value:.10g}")
        for name, value in regression_metadata["metrics"]["training"].items()
    }
    assert {"training:rmse", "training:mse", "training:mae", "training:r2"} <= set(
        scrape_metrics(regression_run.stdout)
    )

    multinomial_metadata = multinomial_run.metadata()
    assert (multinomial_metadata["model_category"], multinomial_metadata["target_domain"]) == (
        "Multinomial",
        ["1", "2", "3"],
    )
    assert set(scrape_metrics(multinomial_run.stdout)) == {
        "validation:logloss",
        "validation:rmse",
        "validation:mse",
        "validation:mean_per_class_error",
    }
