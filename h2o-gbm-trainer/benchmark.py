"""Time training jobs end to end on the example Titanic data: `train` process start -> MOJO written -> exit.

Runs the installed `train` entrypoint in a fresh SAGEMAKER_BASE_DIR per run (as SageMaker would) and prints
the split the job logs: JVM start, data load, train, export. Goal: <= 10 s on 2 cores.

    .venv/bin/python h2o-gbm-trainer/benchmark.py [--runs 3] [--ntrees 50] [--checkpoints]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
ORIGINAL_HYPERPARAMETERS = REPO_ROOT / "tests" / "fixtures" / "original-examples" / "hyperparameters.json"
TRAIN_EXECUTABLE = Path(sys.executable).with_name("train")
PHASES = {
    "JVM start": r"H2O JVM up in ([0-9.]+) s",
    "data load": r"data loaded in ([0-9.]+) s",
    "train": r"training finished in ([0-9.]+) s",
    "export": r"model exported in ([0-9.]+) s",
}


def _job_dir(root: Path, ntrees: int, checkpoints: bool) -> Path:
    hyperparameters = json.loads(ORIGINAL_HYPERPARAMETERS.read_text())["staticHyperParameters"]
    hyperparameters |= {"ntrees": str(ntrees), "score_tree_interval": "5"}
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    for channel, csv_name in (("training", "train.csv"), ("validation", "validation.csv")):
        (root / "input" / "data" / channel).mkdir(parents=True)
        shutil.copy(EXAMPLES / csv_name, root / "input" / "data" / channel / csv_name)
    if checkpoints:
        (root / "checkpoints").mkdir()
    return root


def _one_run(root: Path) -> dict[str, float]:
    started_ns = time.time_ns()
    completed = subprocess.run(
        [str(TRAIN_EXECUTABLE)],
        env=os.environ | {"SAGEMAKER_BASE_DIR": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )
    ended_ns = time.time_ns()
    if completed.returncode != 0:
        raise SystemExit(f"train failed ({completed.returncode}): {completed.stderr.strip()}")
    timings = {
        "process start -> MOJO written": ((root / "model" / "model.zip").stat().st_mtime_ns - started_ns)
        / 1e9,
        "process start -> exit": (ended_ns - started_ns) / 1e9,
    }
    for phase, pattern in PHASES.items():
        timings[phase] = float(re.search(pattern, completed.stdout)[1])
    timings["rest (interpreter, imports, checks, shutdown)"] = timings["process start -> exit"] - sum(
        timings[phase] for phase in PHASES
    )
    auc = re.search(r"validation:auc=([-+0-9.eE]+);", completed.stdout)[1]
    print(f"  run: {timings['process start -> exit']:.2f} s, validation:auc={auc}", flush=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ntrees", type=int, default=50)
    parser.add_argument(
        "--checkpoints", action="store_true", help="with a checkpoint folder (10 trees a step)"
    )
    args = parser.parse_args()

    print(
        f"{args.runs} jobs, ntrees={args.ntrees}, checkpoints={'on' if args.checkpoints else 'off'}, {os.cpu_count()} cores"
    )
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="trainer-benchmark-") as root:
            runs.append(_one_run(_job_dir(Path(root), args.ntrees, args.checkpoints)))
    print(f"{'seconds':<48}{'median':>8}{'min':>8}{'max':>8}")
    for name in runs[0]:
        values = [run[name] for run in runs]
        print(f"{name:<48}{statistics.median(values):>8.2f}{min(values):>8.2f}{max(values):>8.2f}")


if __name__ == "__main__":
    main()
