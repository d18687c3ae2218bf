"""Run `h2o-sagemaker-local run --api-faults RATE` over several seeds and print what each run ended as.

Each run must end SUCCEEDED, or FAILED with a notification, leave no process behind and make at most one
endpoint; the table says so per seed, with the faults injected and the run's wall time.

    .venv/bin/python local-runner/fault_benchmark.py [--rate 0.2] [--seeds 1 2 3 4 5] [-- run options]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = Path(sys.executable).with_name("h2o-sagemaker-local")


def processes_mentioning(folder: Path) -> list[int]:
    """Processes whose command line or environment names the folder (Linux's /proc)."""
    marker = str(folder).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes() or marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def one_run(rate: float, seed: int, extra: list[str]) -> dict[str, str]:
    workdir = Path(tempfile.mkdtemp(prefix=f"fault-run-{seed}-"))
    started = time.monotonic()
    result = subprocess.run(
        [
            str(COMMAND),
            "run",
            "--api-faults",
            str(rate),
            "--seed",
            str(seed),
            "--workdir",
            str(workdir),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        env=os.environ | {"COLUMNS": "400"},  # one line per message
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    time.sleep(1)  # a SIGKILLed process takes a moment to go
    faults = re.search(r"API faults injected: (.*)", output)
    if result.returncode == 0:
        outcome = "SUCCEEDED"
    elif status := re.search(r"Execution (\w+): (\S+)", output):
        notified = "notification:" in output
        outcome = f"{status.group(1)} {status.group(2)}" + (
            " + notification" if notified else " (no notification)"
        )
    else:
        outcome = f"exit {result.returncode}: " + output.strip().splitlines()[-1][:160]
    endpoints = workdir / "endpoints"
    return {
        "seed": str(seed),
        "outcome": outcome,
        "faults": faults.group(1) if faults else "?",
        "endpoints": str(len(list(endpoints.iterdir())) if endpoints.exists() else 0),
        "processes left": str(len(processes_mentioning(workdir))),
        "seconds": f"{seconds:.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("run_options", nargs="*", help="passed to h2o-sagemaker-local run (after --)")
    options = parser.parse_args()
    rows = []
    for seed in options.seeds:
        rows.append(one_run(options.rate, seed, options.run_options))
        print(" | ".join(rows[-1].values()), flush=True)
    columns = list(rows[0])
    print(f"\n--api-faults {options.rate}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in rows:
        print("| " + " | ".join(row[column] for column in columns) + " |")


if __name__ == "__main__":
    main()
