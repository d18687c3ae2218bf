"""SageMaker's early stopping of a tuning job's training jobs (`TrainingJobEarlyStoppingType: Auto`).

As documented (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-early-stopping.html), after
each epoch of a training job: take its objective value, compute the running average of the objective of every
previous training job up to the same epoch and the median of those averages, and stop the job when its value is
worse than that median. An epoch is one value of the objective metric in the job's log, as the MetricDefinitions
regex finds it (the trainer prints one per scoring round). The previous jobs are the ones the tuning job launched
before this one, with the epochs they have reported so far.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class EarlyStop:
    job_name: str
    epoch: int  # 1-based
    value: float
    median: float

    def describe(self, metric: str) -> str:
        return (
            f"stopped early: {metric}={self.value:.4f} at epoch {self.epoch}, worse than {self.median:.4f}, the "
            "median of the earlier jobs' running averages"
        )


def median_of_running_averages(epoch: int, previous: Sequence[Sequence[float]]) -> float | None:
    """The median of the previous jobs' running averages up to ``epoch``, over those that reached it."""
    averages = [statistics.fmean(earlier[:epoch]) for earlier in previous if len(earlier) >= epoch]
    return statistics.median(averages) if averages else None


def worse(value: float, median: float, maximize: bool) -> bool:
    return value < median if maximize else value > median


@dataclass
class ObjectiveSeries:
    """The objective values a job's log has shown so far, read as the log grows."""

    log_path: Path
    regex: re.Pattern[str]
    values: list[float] = field(default_factory=list)
    _read: int = 0
    _partial: str = ""

    def refresh(self) -> list[float]:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._read)
                chunk = log.read()
        except FileNotFoundError:
            return self.values
        self._read += len(chunk)
        text = self._partial + chunk.decode(errors="replace")
        complete, _, self._partial = text.rpartition("\n")
        self.values += [float(value) for value in self.regex.findall(complete)]
        return self.values


@dataclass
class EarlyStopping:
    """The rule applied to a tuning job's running jobs: ``check`` names the jobs to stop now."""

    regex: re.Pattern[str]
    maximize: bool
    series: dict[str, ObjectiveSeries] = field(default_factory=dict)  # by job name, in launch order
    judged: dict[str, int] = field(default_factory=dict)  # epochs of each job already judged

    def watch(self, name: str, log_path: Path) -> None:
        self.series[name] = ObjectiveSeries(log_path, self.regex)
        self.judged[name] = 0

    def check(self, running: set[str]) -> list[EarlyStop]:
        """The running jobs to stop: each at its first new epoch worse than the median at that epoch."""
        values = {name: series.refresh() for name, series in self.series.items()}
        names = list(self.series)
        stops = []
        for position, name in enumerate(names):
            if name not in running:
                continue
            previous = [values[earlier] for earlier in names[:position]]
            new_epochs = range(self.judged[name] + 1, len(values[name]) + 1)
            self.judged[name] = len(values[name])
            for epoch in new_epochs:
                value, median = values[name][epoch - 1], median_of_running_averages(epoch, previous)
                if median is not None and worse(value, median, self.maximize):
                    stops.append(EarlyStop(name, epoch, value, median))
                    break
        return stops
