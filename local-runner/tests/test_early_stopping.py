"""SageMaker's median rule for early stopping, on objective series and on a log that grows as a job writes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from h2o_sagemaker_local.early_stopping import EarlyStop, EarlyStopping, median_of_running_averages

AUC = re.compile(r"validation:auc=([-+0-9.eE]+);")


def test_the_median_is_of_the_running_averages_of_the_jobs_that_reached_the_epoch() -> None:
    previous = [[0.6, 0.8], [0.7, 0.9, 0.95], [0.9]]

    assert median_of_running_averages(1, previous) == 0.7  # of 0.6, 0.7, 0.9
    assert median_of_running_averages(2, previous) == pytest.approx(0.75)  # of (0.6+0.8)/2, (0.7+0.9)/2
    assert median_of_running_averages(3, previous) == pytest.approx(0.85)  # only the second reached it
    assert median_of_running_averages(4, previous) is None


def write(log: Path, text: str) -> None:
    with log.open("a") as file:
        file.write(text)


def test_a_running_job_is_stopped_at_its_first_epoch_worse_than_the_median(tmp_path: Path) -> None:
    rule = EarlyStopping(AUC, maximize=True)
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    rule.watch("first", first)
    rule.watch("second", second)
    write(first, "INFO training\nvalidation:auc=0.8;\nvalidation:auc=0.9;\n")
    write(second, "validation:auc=0.85;\n")

    assert rule.check({"first", "second"}) == []  # the first job has no earlier job; 0.85 beats 0.8
    write(second, "validation:auc=0.8")  # a line still being written is not read
    assert rule.check({"first", "second"}) == []
    write(second, "4;\nvalidation:auc=0.9;\n")

    [stop] = rule.check({"first", "second"})
    assert (stop.job_name, stop.epoch, stop.value) == ("second", 2, 0.84)
    assert stop.median == pytest.approx(0.85)  # 0.84 < (0.8 + 0.9) / 2
    assert rule.check({"first", "second"}) == []  # each epoch is judged once


def test_minimizing_stops_the_higher_value_and_jobs_no_longer_running_are_left_alone(tmp_path: Path) -> None:
    rule = EarlyStopping(re.compile(r"validation:logloss=([-+0-9.eE]+);"), maximize=False)
    for name, values in (("a", [0.5]), ("b", [0.7]), ("c", [0.7])):
        log = tmp_path / f"{name}.log"
        rule.watch(name, log)
        write(log, "".join(f"validation:logloss={value};\n" for value in values))

    assert [stop.job_name for stop in rule.check({"b"})] == ["b"]
    assert rule.check({"c"}) == [EarlyStop("c", 1, 0.7, 0.6)]  # the median of 0.5 and 0.7: 0.6 exactly


def test_a_log_not_written_yet_has_no_epochs(tmp_path: Path) -> None:
    rule = EarlyStopping(AUC, maximize=True)
    rule.watch("later", tmp_path / "missing.log")

    assert rule.check({"later"}) == []
