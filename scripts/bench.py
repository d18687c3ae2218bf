"""`make bench`: the project's speed and scale, measured side by side in one run, printed as one table.

Each part runs what users run, as separate processes, on loopback only, bounded in time:

- the local demo (`h2o-sagemaker-local run`, 10 jobs, 2 in parallel) against H2O's own grid search of 10 models
  over the same ranges in one cluster (scripts/grid_search_baseline.py): wall time and best validation AUC, per
  seed;
- a 1M-row synthetic training job (22 columns, 158 MB of CSV, 50 trees of depth 6): wall time and the peak
  resident memory of the job's processes (`train` and its H2O JVM);
- the predictor and the trainer's start-up, by their own benchmarks (h2o-gbm-predictor/benchmark.py,
  h2o-gbm-trainer/benchmark.py) with --json;
- a 2-instance Titanic job (one H2O cluster of two `train` processes, as the local runner runs it) against a
  1-instance one: wall time and validation AUC.

    .venv/bin/python scripts/bench.py [--seeds 3] [--skip million-rows ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CACHE = REPO_ROOT / ".cache" / "bench"
MILLION_ROWS = 1_000_000
NUMERIC_COLUMNS = 20
PART_TIMEOUT_SECONDS = 900


def command_seconds(command: list[str], environment: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of a command from process start to exit, and its stdout; a failure stops the benchmark."""
    started = time.monotonic()
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=PART_TIMEOUT_SECONDS, env=environment
    )
    seconds = time.monotonic() - started
    if finished.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({finished.returncode}):\n{finished.stdout}{finished.stderr}"
        )
    return seconds, finished.stdout


# --- the local demo against H2O's grid search ------------------------------------------------------------------


def demo(seed: int) -> tuple[float, float]:
    """`h2o-sagemaker-local run` (10 jobs, 2 at a time): wall time, the best job's validation AUC."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
        seconds, output = command_seconds(
            [
                str(BIN / "h2o-sagemaker-local"),
                "run",
                "--seed",
                str(seed),
                "--no-report",
                "--workdir",
                f"{folder}/work",
            ]
        )
    found = re.search(r"objective\s*│\s*validation:auc = ([0-9.]+)", output)
    if found is None:
        raise SystemExit(f"no objective in the demo's summary:\n{output}")
    return seconds, float(found.group(1))


def grid_search(seed: int) -> tuple[float, float]:
    _, output = command_seconds(
        [sys.executable, str(REPO_ROOT / "scripts" / "grid_search_baseline.py"), "--seed", str(seed)]
    )
    result = json.loads(output.strip().splitlines()[-1])
    return float(result["seconds"]), float(result["best_auc"])


def demo_against_grid_search(seeds: int) -> list[tuple[str, str, str, str]]:
    rows = []
    ratios = []
    for seed in range(1, seeds + 1):
        demo_seconds, demo_auc = demo(seed)
        grid_seconds, grid_auc = grid_search(seed)
        ratios.append(demo_seconds / grid_seconds)
        rows.append(
            (
                f"seed {seed}: local demo / H2OGridSearch, wall",
                f"{demo_seconds:.1f} s / {grid_seconds:.1f} s",
                f"{demo_seconds / grid_seconds:.2f}x",
                "<= 2.0x",
            )
        )
        rows.append(
            (
                f"seed {seed}: best validation AUC, demo / grid",
                f"{demo_auc:.4f} / {grid_auc:.4f}",
                f"{demo_auc - grid_auc:+.4f}",
                "",
            )
        )
    rows.append(("local demo / H2OGridSearch, median", "", f"{statistics.median(ratios):.2f}x", "<= 2.0x"))
    return rows


# --- 1M rows ---------------------------------------------------------------------------------------------------


def synthetic_csv(rows: int) -> Path:
    """A binary target over 20 numeric columns and one categorical, with signal and noise; cached by size."""
    import numpy as np

    path = CACHE / f"synthetic-{rows}.csv"
    if path.is_file():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(7)
    numeric = generator.normal(size=(rows, NUMERIC_COLUMNS)).astype(np.float32)
    category = generator.integers(0, 5, size=rows)
    signal = (
        numeric[:, 0] - 0.5 * numeric[:, 1] + 0.25 * numeric[:, 2] * numeric[:, 3] + 0.3 * (category == 2)
    )
    target = (signal + generator.normal(scale=1.0, size=rows) > 0).astype(int)
    partial = path.with_suffix(".partial")
    with partial.open("w") as file:
        file.write(",".join([*(f"x{index}" for index in range(NUMERIC_COLUMNS)), "segment", "label"]) + "\n")
        chunk = 100_000
        for start in range(0, rows, chunk):
            block = numeric[start : start + chunk]
            lines = [
                ",".join(f"{value:.5f}" for value in values) + f",s{segment},{label}"
                for values, segment, label in zip(
                    block.tolist(),
                    category[start : start + chunk],
                    target[start : start + chunk],
                    strict=True,
                )
            ]
            file.write("\n".join(lines) + "\n")
    partial.replace(path)
    return path


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants, from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found.group(1)) * 1024 if found else 0
        pending += [int(child) for child in children]
    return total


def million_rows() -> list[tuple[str, str, str, str]]:
    sys.path.insert(0, str(REPO_ROOT / "local-runner" / "src"))
    from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job

    data = synthetic_csv(MILLION_ROWS)
    hyperparameters = {
        "target": "label",
        "classification": "true",
        "ntrees": "50",
        "max_depth": "6",
        "seed": "1",
    }
    with tempfile.TemporaryDirectory(prefix="bench-million-") as folder:
        base_dir = lay_out_training_job(Path(folder), hyperparameters, [InputChannel.of("training", data)])
        environment = os.environ | {"SAGEMAKER_BASE_DIR": str(base_dir)}
        started = time.monotonic()
        process = subprocess.Popen(
            [str(BIN / "train")], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        peak = [0]
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], tree_rss_bytes(process.pid))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        output, _ = process.communicate(timeout=PART_TIMEOUT_SECONDS)
        seconds = time.monotonic() - started
        done.set()
        watcher.join()
        if process.returncode != 0:
            raise SystemExit(f"the 1M-row job failed:\n{output}")
    size = data.stat().st_size
    trained = re.search(r"training finished in ([0-9.]+) s", output)
    return [
        (
            "1M rows x 22 columns: train job wall",
            f"{seconds:.1f} s",
            f"training {trained.group(1) if trained else '?'} s",
            "",
        ),
        (
            "1M rows: peak RSS of train + JVM",
            f"{peak[0] / 2**30:.2f} GiB",
            f"{peak[0] / size:.1f}x the CSV ({size / 2**20:.0f} MiB)",
            "",
        ),
    ]


# --- 2 instances against 1 ------------------------------------------------------------------------------------


def titanic_job(folder: Path, count: int) -> tuple[float, float, int]:
    """One Titanic job of ``count`` instances, as the local runner runs it (a `train` per host, each with its own
    /opt/ml, host names on loopback): wall time from the first start to the last exit, the leader's validation
    AUC, the cluster size the leader logged."""
    sys.path.insert(0, str(REPO_ROOT / "local-runner" / "src"))
    from h2o_sagemaker_local.opt_ml import (
        InputChannel,
        free_port_block,
        host_names,
        lay_out_training_job,
        loopback_hosts_environment,
    )
    from h2o_sagemaker_local.training import CLUSTER_PORT_ENV, training_environment

    static = json.loads((REPO_ROOT / "examples" / "hyperparameters.json").read_text())[
        "staticHyperParameters"
    ]
    hyperparameters = static | {"ntrees": "50", "max_depth": "5", "score_tree_interval": "5"}
    channels = [
        InputChannel.of("training", REPO_ROOT / "examples" / "train.csv"),
        InputChannel.of("validation", REPO_ROOT / "examples" / "validation.csv"),
    ]
    hosts = host_names(count)
    shared = {"TRAINING_JOB_NAME": f"bench-{count}-instances"}
    if count > 1:
        shared |= {CLUSTER_PORT_ENV: str(free_port_block(2 * count))}
        shared |= loopback_hosts_environment(hosts, folder / "network")
    base_dirs = [
        lay_out_training_job(folder / host, hyperparameters, channels, current_host=host, hosts=hosts)
        for host in hosts
    ]
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [str(BIN / "train")],
            env=training_environment(base_dir) | shared,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for base_dir in base_dirs
    ]
    outputs = [process.communicate(timeout=PART_TIMEOUT_SECONDS)[0] for process in processes]
    seconds = time.monotonic() - started
    for host, process, output in zip(hosts, processes, outputs, strict=True):
        if process.returncode != 0:
            raise SystemExit(f"{host} of the {count}-instance job failed:\n{output}")
    metadata = json.loads((base_dirs[0] / "model" / "model-metadata.json").read_text())
    cloud = re.search(r"H2O cloud of (\d+) nodes", outputs[0])
    return seconds, float(metadata["metrics"]["validation"]["auc"]), int(cloud.group(1)) if cloud else 1


def instances(rounds: int) -> list[tuple[str, str, str, str]]:
    """A 2-instance Titanic job against a 1-instance one, alternating, medians of ``rounds``."""
    times: dict[int, list[float]] = {1: [], 2: []}
    aucs: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-instances-") as folder:
        for round_index in range(rounds):
            for count in (1, 2):
                seconds, aucs[count], cloud = titanic_job(Path(folder) / f"{round_index}-{count}", count)
                if count > 1 and cloud != count:
                    raise SystemExit(f"the {count}-instance job trained in a cloud of {cloud}")
                times[count].append(seconds)
    one, two = (statistics.median(times[count]) for count in (1, 2))
    return [
        (
            "Titanic job, 2 instances / 1 (one machine), wall",
            f"{two:.2f} s / {one:.2f} s",
            f"{two / one:.2f}x",
            "",
        ),
        (
            "Titanic job, validation AUC 2 instances / 1",
            f"{aucs[2]:.6f} / {aucs[1]:.6f}",
            f"{aucs[2] - aucs[1]:+.6f}",
            "within 0.002",
        ),
    ]


# --- the packages' own benchmarks -------------------------------------------------------------------------------


def trainer_benchmark() -> list[tuple[str, str, str, str]]:
    """h2o-gbm-trainer/benchmark.py --json: its last stdout line holds rows of [name, value, ratio, goal]."""
    _, output = command_seconds([sys.executable, str(REPO_ROOT / "h2o-gbm-trainer/benchmark.py"), "--json"])
    document = json.loads(output.strip().splitlines()[-1])
    return [tuple(str(cell) for cell in row) for row in document["rows"]]  # type: ignore[misc]


def predictor_benchmark() -> list[tuple[str, str, str, str]]:
    """h2o-gbm-predictor/benchmark.py --json -: its figures on stdout, one row per goal."""
    _, output = command_seconds(
        [sys.executable, str(REPO_ROOT / "h2o-gbm-predictor/benchmark.py"), "--json", "-"]
    )
    goals = json.loads(output)["goals"]
    lower_is_better = {"ready s", "1-row p50 ms"}
    return [
        (
            f"predictor: {name}",
            f"{goal['measured']:,.2f}",
            "met" if goal["met"] else "not met",
            f"{'<=' if name in lower_is_better else '>='} {goal['goal']:,}",
        )
        for name, goal in goals.items()
    ]


PARTS: dict[str, Callable[[argparse.Namespace], list[tuple[str, str, str, str]]]] = {
    "trainer": lambda options: trainer_benchmark(),
    "predictor": lambda options: predictor_benchmark(),
    "demo": lambda options: demo_against_grid_search(options.seeds),
    "million-rows": lambda options: million_rows(),
    "instances": lambda options: instances(options.seeds),
}


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="seeds of the demo and the grid search (default 3)"
    )
    parser.add_argument(
        "--skip", action="extend", nargs="+", default=[], choices=list(PARTS), help="parts to leave out"
    )
    options = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = [("measure", "value", "ratio", "goal")]
    for name, part in PARTS.items():
        if name in options.skip:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += part(options)
    print_table(rows)


if __name__ == "__main__":
    main()
