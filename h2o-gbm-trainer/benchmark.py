"""Time training jobs end to end on the example Titanic data: `train` process start -> MOJO written -> exit.

Runs `train` in a fresh SAGEMAKER_BASE_DIR per run (as SageMaker would): the installed entrypoint as a process, or
with --image the trainer image as SageMaker runs it (`<engine> run --network none -v <dir>:/opt/ml <image> train`).
Prints the median, min and max of each phase the job logs (JVM start, data load, train, export) and of the total,
against the goals: the JVM ready in <= 2 s, the whole job in <= 5 s (2 cores).

    .venv/bin/python h2o-gbm-trainer/benchmark.py [--runs 3] [--ntrees 50] [--checkpoints] [--gzip]
        [--cold | --image h2o-gbm-trainer:local] [--json]

--cold gives every run an empty start-up archive cache (H2O_GBM_TRAINER_CACHE_DIR): the cost of a first job.
--json prints the table on stderr and, as the last line on stdout, {"rows": [[measure, value, ratio, goal], ...]}
(what `make bench` reads).
"""

from __future__ import annotations

import argparse
import gzip
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
from typing import TextIO

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
ARCHIVE_WRITTEN = r"start-up archive written in ([0-9.]+) s"
TOTAL = "total (process start -> exit)"
GOALS = {"JVM start": 2.0, TOTAL: 5.0}


def _job_dir(root: Path, ntrees: int, checkpoints: bool, gzipped: bool) -> Path:
    hyperparameters = json.loads(ORIGINAL_HYPERPARAMETERS.read_text())["staticHyperParameters"]
    hyperparameters |= {"ntrees": str(ntrees), "score_tree_interval": "5"}
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    channels = {"training": "train.csv", "validation": "validation.csv"}
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps(
            {
                channel: {"ContentType": "text/csv", "CompressionType": "Gzip" if gzipped else "None"}
                for channel in channels
            }
        )
    )
    for channel, csv_name in channels.items():
        folder = root / "input" / "data" / channel
        folder.mkdir(parents=True)
        if gzipped:
            (folder / f"{csv_name}.gz").write_bytes(gzip.compress((EXAMPLES / csv_name).read_bytes()))
        else:
            shutil.copy(EXAMPLES / csv_name, folder / csv_name)
    for output in ("model", "output", *(["checkpoints"] if checkpoints else [])):
        (root / output).mkdir()
    return root


def _command(root: Path, image: str | None) -> tuple[list[str], dict[str, str]]:
    if image is None:
        return [str(TRAIN_EXECUTABLE)], os.environ | {"SAGEMAKER_BASE_DIR": str(root)}
    engine = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "container-engine.sh")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    environment = dict(os.environ)
    if engine == "podman":
        environment.setdefault("CONTAINERS_CONF", str(REPO_ROOT / "scripts" / "containers.conf"))
    return [engine, "run", "--rm", "--network", "none", "-v", f"{root}:/opt/ml", image, "train"], environment


def _one_run(root: Path, image: str | None, cache_dir: Path | None, out: TextIO) -> dict[str, float]:
    command, environment = _command(root, image)
    if cache_dir is not None:
        environment["H2O_GBM_TRAINER_CACHE_DIR"] = str(cache_dir)
    started_ns = time.time_ns()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    ended_ns = time.time_ns()
    if completed.returncode != 0:
        raise SystemExit(
            f"train failed ({completed.returncode}): {completed.stdout[-2000:]}{completed.stderr}"
        )
    timings = {
        "process start -> MOJO written": ((root / "model" / "model.zip").stat().st_mtime_ns - started_ns)
        / 1e9,
        TOTAL: (ended_ns - started_ns) / 1e9,
    }
    for phase, pattern in PHASES.items():
        timings[phase] = float(re.search(pattern, completed.stdout)[1])  # type: ignore[index]
    archive = re.search(ARCHIVE_WRITTEN, completed.stdout)
    if archive:
        timings["start-up archive written (first job)"] = float(archive[1])
    timings["rest (interpreter, imports, checks, shutdown)"] = (
        timings[TOTAL]
        - sum(timings[phase] for phase in PHASES)
        - timings.get("start-up archive written (first job)", 0)
    )
    auc = re.search(r"validation:auc=([-+0-9.eE]+);", completed.stdout)[1]  # type: ignore[index]
    print(f"  run: {timings[TOTAL]:.2f} s, validation:auc={auc}", file=out, flush=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ntrees", type=int, default=50)
    parser.add_argument(
        "--checkpoints", action="store_true", help="with a checkpoint folder (trained in steps)"
    )
    parser.add_argument(
        "--gzip", action="store_true", help="the channels as gzip-compressed CSV (CompressionType Gzip)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cold", action="store_true", help="an empty start-up archive cache for every run")
    where.add_argument(
        "--image", help="run this trainer image (docker, else podman) instead of the local process"
    )
    parser.add_argument(
        "--json", action="store_true", help="table on stderr, JSON rows as the last stdout line"
    )
    args = parser.parse_args()
    out = sys.stderr if args.json else sys.stdout

    mode = (
        f"image {args.image}"
        if args.image
        else "process" + (", cold start-up archive cache" if args.cold else "")
    )
    print(
        f"{args.runs} jobs ({mode}), ntrees={args.ntrees}, checkpoints={'on' if args.checkpoints else 'off'}, "
        f"{'gzip ' if args.gzip else ''}CSV, {os.cpu_count()} cores",
        file=out,
    )
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="trainer-benchmark-") as root:
            job = _job_dir(Path(root), args.ntrees, args.checkpoints, args.gzip)
            cache_dir = Path(root) / "cache" if args.cold else None
            runs.append(_one_run(job, args.image, cache_dir, out))
    names = [name for name in runs[0] if all(name in run for run in runs)]
    medians = {name: statistics.median(run[name] for run in runs) for name in names}
    print(f"{'seconds':<48}{'median':>8}{'min':>8}{'max':>8}{'goal':>8}", file=out)
    for name in names:
        values = [run[name] for run in runs]
        goal = f"{GOALS[name]:.1f}" if name in GOALS else ""
        print(f"{name:<48}{medians[name]:>8.2f}{min(values):>8.2f}{max(values):>8.2f}{goal:>8}", file=out)
    if args.json:
        label = f"trainer{' image' if args.image else ''}{' cold' if args.cold else ''}, Titanic (median of {args.runs})"
        rows = [
            [
                f"{label}: {name}",
                f"{medians[name]:.2f} s",
                f"{medians[name] / GOALS[name]:.2f}x goal" if name in GOALS else "",
                f"<= {GOALS[name]:.0f} s" if name in GOALS else "",
            ]
            for name in names
        ]
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
