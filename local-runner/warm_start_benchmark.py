"""Benchmark warm start tuning (ml-parameters' warmStart) on the example Titanic data and print its figures.

For each seed, two stacks on one machine, each through the whole local pipeline:
- warm: a first run of 10 Bayesian jobs, then (maxNumberOfTrainingJobs lowered by a stack update) a second run
  of JOBS jobs, warm-started from the first (the example's warmStart);
- cold: the same run of JOBS jobs with the same seed on a stack without warmStart.
Printed: the warm-started and the cold run's best and mean validation AUC (the mean shows where a search spends
its jobs), and how many of the first run's jobs the warm run started from. Both second runs train on the same
data as the first: a retraining on new data would move the objective, which SageMaker's TransferLearning allows.

    .venv/bin/python local-runner/warm_start_benchmark.py [--seeds 3] [--jobs 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.pipeline import LocalPipeline, PipelineError

FIRST_RUN_JOBS, PARALLEL = 10, 2


def _run(
    pipeline: LocalPipeline, options: Any, manifest: dict[str, Any], key: str
) -> tuple[float, float, int]:
    """One run; its best and mean validation AUC, and the parents' jobs its search started from."""
    result = pipeline.run(manifest, {"training": options.train, "validation": options.validation}, key)
    if result.status != "SUCCEEDED":
        raise PipelineError(f"run {key} {result.status}: {result.cause}")
    tuning = pipeline.sagemaker.tuning_jobs[result.output["model"]["hyperParameterTuningJobName"]]
    values = [value for job in tuning.training_jobs if (value := tuning.objective_value(job)) is not None]
    return max(values), statistics.mean(values), tuning.warm_start_trials


def measure(seed: int, jobs: int, early_stopping: str) -> dict[str, float]:
    options = parse_arguments(
        [
            "run",
            "--max-jobs",
            str(FIRST_RUN_JOBS),
            "--max-parallel",
            str(PARALLEL),
            "--early-stopping",
            early_stopping,
        ]
    )
    ml_parameters, hyperparameters, manifest = local_inputs(options)
    assert "warmStart" in ml_parameters, "the example's ml-parameters enable warm start"
    second = ml_parameters | {"maxNumberOfTrainingJobs": jobs}
    with LocalPipeline(Path(tempfile.mkdtemp(prefix="h2o-local-warm-")), seed=seed) as pipeline:
        pipeline.deploy(ml_parameters, hyperparameters)
        first_best, _, _ = _run(pipeline, options, manifest, "manifests/first/manifest.json")
        pipeline.update_stack({"ParametersRevision": "2"}, ml_parameters=second)
        warm_best, warm_mean, started_from = _run(pipeline, options, manifest, "manifests/warm/manifest.json")
    cold_parameters = {key: value for key, value in second.items() if key != "warmStart"}
    with LocalPipeline(Path(tempfile.mkdtemp(prefix="h2o-local-cold-")), seed=seed) as pipeline:
        pipeline.deploy(cold_parameters, hyperparameters)
        cold_best, cold_mean, _ = _run(pipeline, options, manifest, "manifests/cold/manifest.json")
    return {
        "first best": first_best,
        "warm best": warm_best,
        "warm mean": warm_mean,
        "cold best": cold_best,
        "cold mean": cold_mean,
        "started from": started_from,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N")
    parser.add_argument("--jobs", type=int, default=4, help="training jobs of the warm and the cold run")
    parser.add_argument(
        "--early-stopping",
        choices=("Auto", "Off"),
        default="Auto",
        help="every run's TrainingJobEarlyStoppingType (the example's: Auto); a stopped job has no objective value, "
        "so it informs no warm start",
    )
    options = parser.parse_args()

    print(
        f"Second run of {options.jobs} Bayesian jobs ({PARALLEL} in parallel): warm-started from a first run of "
        f"{FIRST_RUN_JOBS}, or cold; validation AUC"
    )
    print(
        f"{'seed':>4} {'first best':>10} {'warm best':>9} {'cold best':>9} {'warm mean':>9} {'cold mean':>9}  from"
    )
    rows = [measure(seed, options.jobs, options.early_stopping) for seed in range(1, options.seeds + 1)]
    for seed, row in enumerate(rows, start=1):
        print(
            f"{seed:>4} {row['first best']:>10.6f} {row['warm best']:>9.6f} {row['cold best']:>9.6f} "
            f"{row['warm mean']:>9.6f} {row['cold mean']:>9.6f}  {int(row['started from'])} jobs"
        )
    print(
        "Summary: warm minus cold, best "
        + ", ".join(f"{row['warm best'] - row['cold best']:+.4f}" for row in rows)
        + "; mean "
        + ", ".join(f"{row['warm mean'] - row['cold mean']:+.4f}" for row in rows)
    )


if __name__ == "__main__":
    main()
