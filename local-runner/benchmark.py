"""Benchmark the local pipeline on the example Titanic data and print its figures.

1. Wall time of the default demo (10 Bayesian jobs, 2 in parallel), split into set-up (moto, stack deploy),
   tuning, deployment and scoring. Goal: <= 60 s on 2 cores.
2. Search quality: the best validation AUC of those 10 Bayesian jobs against the best of 30 Random jobs.
   Goal: within 0.5%.

Both go through the whole pipeline (manifest upload -> trigger Lambda -> state machines -> real `train` and
`serve` processes), as `h2o-sagemaker-local run` does.

    .venv/bin/python local-runner/benchmark.py [--repeats 1] [--random-jobs 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from h2o_sagemaker_local import events
from h2o_sagemaker_local.cli import local_inputs, parse_arguments, score_validation
from h2o_sagemaker_local.pipeline import LocalPipeline, PipelineError

DEMO_JOBS, DEMO_PARALLEL = 10, 2
# Random gets other seeds: with the same seed its first points are TPE's random start-up points.
RANDOM_SEED_OFFSET = 100
# The progress events that mark where a phase ends.
PHASE_MARKS: dict[type, str] = {
    events.Deployed: "deployed",
    events.ExecutionStarted: "execution-started",
    events.TuningFinished: "tuning-finished",
}


class PhaseClock:
    """Records when the pipeline reaches each phase, from the progress events it reports."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {"start": time.monotonic()}

    def __call__(self, event: events.Event) -> None:
        mark = PHASE_MARKS.get(type(event))
        if mark is not None:
            self.marks[mark] = time.monotonic()

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def between(self, start: str, end: str) -> float:
        return self.marks[end] - self.marks[start]


def run_pipeline(strategy: str, max_jobs: int, seed: int) -> tuple[dict[str, float], float, float]:
    """One whole local run; returns the phase timings, the best job's validation AUC and the endpoint's AUC."""
    options = parse_arguments(
        ["run", "--max-jobs", str(max_jobs), "--max-parallel", str(DEMO_PARALLEL), "--seed", str(seed)]
    )
    ml_parameters, hyperparameters, manifest = local_inputs(options)
    ml_parameters["tuningStrategy"] = strategy
    clock = PhaseClock()
    with LocalPipeline(Path(tempfile.mkdtemp(prefix="h2o-local-benchmark-")), clock, seed) as pipeline:
        pipeline.deploy(ml_parameters, hyperparameters)
        result = pipeline.run(
            manifest,
            {"training": options.train, "validation": options.validation},
            "manifests/benchmark/manifest.json",
        )
        clock.mark("deployed-endpoint")
        if result.status != "SUCCEEDED":
            raise PipelineError(f"{strategy} run {result.status}: {result.cause}")
        endpoint_output = result.output["endpoint"]
        endpoint = pipeline.sagemaker.endpoints[endpoint_output["endpointName"]]
        metadata_path = (
            endpoint.workdir / endpoint_output["endpointConfigName"] / "model" / "model-metadata.json"
        )
        _, endpoint_auc = score_validation(
            endpoint.proxy.url, options.validation.read_bytes(), json.loads(metadata_path.read_text())
        )
        clock.mark("scored")
    timings = {
        "set-up": clock.between("start", "execution-started"),
        "tuning": clock.between("execution-started", "tuning-finished"),
        "deployment": clock.between("tuning-finished", "deployed-endpoint"),
        "scoring": clock.between("deployed-endpoint", "scored"),
        "total": clock.between("start", "scored"),
    }
    return timings, result.output["model"]["objective"]["Value"], endpoint_auc


def time_command() -> float:
    """Wall time of the demo command itself, from process start (imports included) to exit."""
    started = time.monotonic()
    subprocess.run(
        [str(Path(sys.executable).with_name("h2o-sagemaker-local")), "run", "--seed", "1"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=1, help="repeat both parts with seeds 1..N")
    parser.add_argument("--random-jobs", type=int, default=30)
    options = parser.parse_args()

    print(f"Demo: {DEMO_JOBS} Bayesian jobs, {DEMO_PARALLEL} in parallel (goal: total <= 60 s)")
    print(
        f"{'seed':>4} {'set-up':>7} {'tuning':>7} {'deploy':>7} {'scoring':>7} {'total':>7}  best AUC  endpoint AUC"
    )
    bayesian: list[float] = []
    totals: list[float] = []
    for seed in range(1, options.repeats + 1):
        timings, best, endpoint_auc = run_pipeline("Bayesian", DEMO_JOBS, seed)
        bayesian.append(best)
        totals.append(timings["total"])
        print(
            f"{seed:>4} "
            + " ".join(
                f"{timings[name]:>6.1f}s" for name in ("set-up", "tuning", "deployment", "scoring", "total")
            )
            + f"  {best:.6f}  {endpoint_auc:.6f}"
        )

    command_seconds = time_command()
    print(f"whole command `h2o-sagemaker-local run` (process start to exit): {command_seconds:.1f} s")

    print(
        f"\nSearch quality: best of {DEMO_JOBS} Bayesian vs best of {options.random_jobs} Random (goal: within 0.5%)"
    )
    print(f"{'seed':>4} {'Bayesian':>9} {'Random':>9} {'gap':>8}  random run time")
    gaps: list[float] = []
    for seed, best_bayesian in enumerate(bayesian, start=1):
        timings, best_random, _ = run_pipeline("Random", options.random_jobs, seed + RANDOM_SEED_OFFSET)
        gap = (best_random - best_bayesian) / best_random
        gaps.append(gap)
        print(f"{seed:>4} {best_bayesian:>9.6f} {best_random:>9.6f} {gap:>+8.3%}  {timings['total']:.1f} s")

    mean_gap = statistics.mean(gaps)
    print(
        f"\nSummary: demo total median {statistics.median(totals):.1f} s, whole command {command_seconds:.1f} s "
        f"(goal <= 60 s: {'met' if max(statistics.median(totals), command_seconds) <= 60 else 'NOT met'}); "
        f"Bayesian behind Random by {mean_gap:+.3%} on average, {max(gaps):+.3%} at worst "
        f"(goal <= 0.5%: {'met' if mean_gap <= 0.005 else 'NOT met'} on average, "
        f"in {sum(gap <= 0.005 for gap in gaps)} of {len(gaps)} seeds)"
    )


if __name__ == "__main__":
    main()
