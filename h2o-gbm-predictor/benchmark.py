"""Bounded loopback benchmark of `serve`: prints req/s, p50/p99, ready time, RSS and the raw scoring ceiling.

    .venv/bin/python h2o-gbm-predictor/benchmark.py [--base-dir DIR] [--seconds 10]

Without --base-dir it first trains the example Titanic model with h2o-gbm-trainer's `train`. Load comes from
wrk (`apt-get install -y wrk`) when it is on PATH, else from a Python client, which itself tops out near
2,000 req/s on 2 cores, so its figures are then the client's limit, not the server's. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
BIN_DIR = Path(sys.executable).parent
CONNECTIONS = 8
GOALS = {
    "1-row req/s": 3000,
    "1-row p50 ms": 2.0,
    "100-row rows/s": 100_000,
    "ready s": 2.0,
    "ceiling share": 0.70,
}
WRK_SCRIPT = """
local f = io.open(os.getenv("BENCH_BODY"), "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "text/csv"; wrk.headers["Accept"] = "text/csv"
"""


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    client: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_example_model(work_dir: Path) -> Path:
    base_dir = work_dir / "train-job"
    config = base_dir / "input" / "config"
    config.mkdir(parents=True)
    hyperparameters = json.loads(
        (REPO_ROOT / "tests/fixtures/original-examples/hyperparameters.json").read_text()
    )
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters["staticHyperParameters"]))
    channels = {"training": "train.csv", "validation": "validation.csv"}
    (config / "inputdataconfig.json").write_text(
        json.dumps({name: {"ContentType": "text/csv"} for name in channels})
    )
    for channel, file_name in channels.items():
        (base_dir / "input" / "data" / channel).mkdir(parents=True)
        shutil.copy(EXAMPLES / file_name, base_dir / "input" / "data" / channel / file_name)
    print("training the example model with `train` ...", flush=True)
    environment = os.environ | {"SAGEMAKER_BASE_DIR": str(base_dir), "H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G"}
    subprocess.run([str(BIN_DIR / "train")], env=environment, check=True, capture_output=True)
    return base_dir


def request_bodies(work_dir: Path, model_dir: Path) -> dict[int, Path]:
    """Header-less CSV bodies of 1 and 100 validation rows, in the model's input column order."""
    columns = json.loads((model_dir / "model-metadata.json").read_text())["input_columns"]
    with (EXAMPLES / "validation.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    bodies = {}
    for rows in (1, 100):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [record[name] for name in columns] for record in records[:rows]
        )
        bodies[rows] = work_dir / f"body-{rows}.csv"
        bodies[rows].write_text(buffer.getvalue())
    return bodies


class Server:
    def __init__(self, base_dir: Path, helper_dir: Path) -> None:
        self.port = free_port()
        environment = os.environ | {
            "SAGEMAKER_BASE_DIR": str(base_dir),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "H2O_GBM_PREDICTOR_BIND_HOST": "127.0.0.1",
            "H2O_GBM_PREDICTOR_HELPER_DIR": str(helper_dir),
        }
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BIN_DIR / "serve")], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from process start to the first /ping 200."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("serve did not become ready")

    def rss_megabytes(self) -> float:
        """Resident memory of the master and its workers."""
        children = subprocess.run(
            ["ps", "--ppid", str(self.process.pid), "-o", "pid="], capture_output=True, text=True, check=False
        ).stdout.split()
        total_kb = 0
        for pid in [self.process.pid, *map(int, children)]:
            status = Path(f"/proc/{pid}/status").read_text()
            total_kb += int(re.search(r"VmRSS:\s+(\d+)", status)[1])
        return total_kb / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def load_with_wrk(port: int, body: Path, seconds: int, work_dir: Path) -> LoadResult:
    script = work_dir / "post.lua"
    script.write_text(WRK_SCRIPT)
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/invocations",
        ],
        env=os.environ | {"BENCH_BODY": str(body)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return LoadResult(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        p50_ms=_milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)[1]),
        p99_ms=_milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)[1]),
        errors=int(errors[1]) if errors else 0,
        client="wrk",
    )


def load_with_python(port: int, body: Path, seconds: int) -> LoadResult:
    payload = body.read_bytes()
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal errors
        connection = HTTPConnection("127.0.0.1", port, timeout=10)
        mine, failed = [], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            connection.request("POST", "/invocations", payload, headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            failed += response.status != 200
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return LoadResult(
        len(latencies) / elapsed, cuts[49] * 1e3, cuts[98] * 1e3, errors, "python (client-bound)"
    )


def raw_scoring_rate(
    model_dir: str, helper_dir: str, body_path: str, seconds: float, results: multiprocessing.Queue
) -> None:
    """Rows/s of the in-process scorer on pre-decoded 100-row batches: no HTTP, no parsing, no encoding."""
    from h2o_gbm_predictor.formats import RequestDecoder
    from h2o_gbm_predictor.metadata import load_metadata
    from h2o_gbm_predictor.scorer import Scorer, ensure_helper_compiled

    metadata = load_metadata(Path(model_dir))
    scorer = Scorer(metadata, ensure_helper_compiled(Path(helper_dir), metadata.genmodel_jar_path), "512m")
    body = Path(body_path).read_bytes()
    cells = RequestDecoder(metadata).decode("text/csv", body)
    warm_until = time.perf_counter() + 1
    while time.perf_counter() < warm_until:
        scorer.score(cells.text, cells.row_count)
    rows, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        scorer.score(cells.text, cells.row_count)
        rows += cells.row_count
    results.put(rows / (time.perf_counter() - started))


def ceiling(model_dir: Path, helper_dir: Path, body: Path, processes: int, seconds: float) -> float:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(
            target=raw_scoring_rate, args=(str(model_dir), str(helper_dir), str(body), seconds, results)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        if worker.exitcode != 0:
            raise RuntimeError(f"raw scoring process failed with exit code {worker.exitcode}")
    return sum(results.get(timeout=5) for _ in workers)


def verdict(name: str, value: float, lower_is_better: bool = False) -> str:
    goal = GOALS[name]
    met = value <= goal if lower_is_better else value >= goal
    return f"goal {'<=' if lower_is_better else '>='} {goal:,}: {'met' if met else 'MISSED'}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base-dir", type=Path, help="a SAGEMAKER_BASE_DIR holding model/ from h2o-gbm-trainer"
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load run (default 10)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="predictor-benchmark-") as work:
        work_dir = Path(work)
        base_dir = arguments.base_dir or train_example_model(work_dir)
        bodies = request_bodies(work_dir, base_dir / "model")
        helper_dir = work_dir / "helper"

        cold = Server(base_dir, helper_dir)
        cold_ready = cold.wait_ready()
        cold.stop()
        server = Server(base_dir, helper_dir)
        ready = server.wait_ready()
        print(
            f"process start to ready: {ready:.2f} s ({verdict('ready s', ready, lower_is_better=True)}); "
            f"first start, compiling the Java helper: {cold_ready:.2f} s"
        )
        results = {}
        try:
            for rows, body in bodies.items():
                if shutil.which("wrk"):
                    results[rows] = load_with_wrk(server.port, body, arguments.seconds, work_dir)
                else:
                    results[rows] = load_with_python(server.port, body, arguments.seconds)
            rss = server.rss_megabytes()
        finally:
            server.stop()

        one, hundred = results[1], results[100]
        print(
            f"load client: {one.client}, {CONNECTIONS} connections, {arguments.seconds} s per run, "
            f"{os.cpu_count()} CPUs, {os.environ.get('SAGEMAKER_MODEL_SERVER_WORKERS', os.cpu_count())} workers"
        )
        print(
            f"1-row CSV:   {one.requests_per_second:,.0f} req/s ({verdict('1-row req/s', one.requests_per_second)}), "
            f"p50 {one.p50_ms:.2f} ms ({verdict('1-row p50 ms', one.p50_ms, lower_is_better=True)}), "
            f"p99 {one.p99_ms:.2f} ms, errors {one.errors}"
        )
        rows_per_second = hundred.requests_per_second * 100
        print(
            f"100-row CSV: {hundred.requests_per_second:,.0f} req/s = {rows_per_second:,.0f} rows/s "
            f"({verdict('100-row rows/s', rows_per_second)}), p50 {hundred.p50_ms:.2f} ms, "
            f"p99 {hundred.p99_ms:.2f} ms, errors {hundred.errors}"
        )
        print(f"RSS after load (master + workers): {rss:,.0f} MB")
        ceiling_seconds = min(arguments.seconds, 5)
        one_process = ceiling(base_dir / "model", helper_dir, bodies[100], 1, ceiling_seconds)
        all_processes = ceiling(
            base_dir / "model", helper_dir, bodies[100], os.cpu_count() or 1, ceiling_seconds
        )
        share = rows_per_second / all_processes
        print(
            f"raw in-process scoring (100-row batches, no HTTP/parsing): {one_process:,.0f} rows/s in 1 process, "
            f"{all_processes:,.0f} rows/s in {os.cpu_count()} processes (the ceiling)"
        )
        print(f"100-row HTTP throughput / ceiling: {share:.0%} ({verdict('ceiling share', share)})")


if __name__ == "__main__":
    main()
