"""Bounded loopback benchmark of `serve`, side by side with a no-op app and the in-process scoring ceiling.

    .venv/bin/python h2o-gbm-predictor/benchmark.py [--base-dir DIR] [--seconds 5] [--rounds 3] [--json FILE|-]

In one run, for header-less CSV requests of 1, 100 and 1000 rows (Accept: text/csv):
- `serve` against a no-op ASGI app on the same gunicorn + uvicorn setup (serve's own GunicornServer settings and
  worker count; the app reads the body and answers 2 bytes): req/s, rows/s and their ratio. The ratio is what
  the predictor costs on top of the HTTP stack; it is measured in pairs (serve then no-op, alternating which
  goes first) so a change in the machine's load hits both sides of a pair alike.
- `serve` rows/s against the in-process ceiling: the Java batch scorer called directly with pre-built inputs
  (`Scorer.score` on already-decoded cells: no HTTP, no parsing, no encoding), in as many processes as serve has
  workers, each scoring batches of the same size, after `gc.freeze()` as serve's workers do.
- the bound on that ratio set by the HTTP stack alone: what a predictor doing nothing but the ceiling's scoring
  would reach if each request also cost what the no-op app's requests cost (client included), that is
  1 / (1 + ceiling rows/s / (rows x no-op req/s)).
Each figure is the median of --rounds rounds (ratios: the median of the per-round ratios). Also printed: the
time from process start to ready, the 1-row p50/p99 latency and the RSS after load.

Without --base-dir it first trains the example Titanic model with h2o-gbm-trainer's `train` (~8 s). Load comes
from wrk (`apt-get install -y wrk`) when it is on PATH, else from a Python client, which itself tops out near
2,000 req/s on 2 cores, so its figures are then the client's limit, not the server's. Only 127.0.0.1 is used.
Duration: 2 servers x 3 sizes x seconds x rounds of load, 1 s of warm-up per server and size, ~10 s of ceiling
per round and ~5 s of start-up: ~2.2 min with the defaults (5 s, 3 rounds).

For `make bench`: `--json -` prints the figures as one JSON document on stdout (the table then goes to stderr),
`--json FILE` writes them to FILE; from Python, `run_benchmark(...)` returns the same dictionary.
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
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
BIN_DIR = Path(sys.executable).parent
CONNECTIONS = 8
SIZES = (1, 100, 1000)
CEILING_SIZES = (100, 1000)
CEILING_SECONDS = 3.0
GOALS = {
    "1-row req/s": 3000,
    "1-row p50 ms": 2.0,
    "100-row rows/s": 100_000,
    "ready s": 2.0,
    "1-row serve/no-op": 0.6,
    "100-row serve/ceiling": 0.85,
    "1000-row serve/ceiling": 0.85,
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
    progress("training the example model with `train` ...")
    environment = os.environ | {"SAGEMAKER_BASE_DIR": str(base_dir), "H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G"}
    subprocess.run([str(BIN_DIR / "train")], env=environment, check=True, capture_output=True)
    return base_dir


def request_bodies(work_dir: Path, model_dir: Path, sizes: tuple[int, ...]) -> dict[int, Path]:
    """Header-less CSV bodies of the validation rows (repeated as needed), in the model's input column order."""
    columns = json.loads((model_dir / "model-metadata.json").read_text())["input_columns"]
    with (EXAMPLES / "validation.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    bodies = {}
    for rows in sizes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [records[row % len(records)][name] for name in columns] for row in range(rows)
        )
        bodies[rows] = work_dir / f"body-{rows}.csv"
        bodies[rows].write_text(buffer.getvalue())
    return bodies


class Server:
    """`serve` (or, with ``no_op``, this file's no-op app on serve's gunicorn settings) on a loopback port."""

    def __init__(self, base_dir: Path, helper_dir: Path, no_op: bool = False) -> None:
        self.port = free_port()
        self.no_op = no_op
        environment = os.environ | {
            "SAGEMAKER_BASE_DIR": str(base_dir),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "H2O_GBM_PREDICTOR_BIND_HOST": "127.0.0.1",
            "H2O_GBM_PREDICTOR_HELPER_DIR": str(helper_dir),
        }
        command = [sys.executable, __file__, "--serve-no-op"] if no_op else [str(BIN_DIR / "serve")]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from process start to the first 200 (/ping for serve, any path for the no-op app)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.01)
        raise RuntimeError(f"{'the no-op app' if self.no_op else 'serve'} did not become ready")

    def rss_megabytes(self) -> float:
        """Resident memory of the master and its workers."""
        children = subprocess.run(
            ["ps", "--ppid", str(self.process.pid), "-o", "pid="], capture_output=True, text=True, check=False
        ).stdout.split()
        total_kb = 0
        for pid in [self.process.pid, *map(int, children)]:
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"VmRSS:\s+(\d+)", status)
            total_kb += int(match[1]) if match else 0
        return total_kb / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# The no-op app ----------------------------------------------------------------------------------------------
async def no_op_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Reads the whole body and answers 200 with 2 bytes: the HTTP stack's own cost per request."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/csv"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"1\n"})


def serve_no_op() -> None:
    """The no-op app on exactly serve's gunicorn settings (bind, workers, worker class, keep-alive, logs)."""
    from h2o_gbm_predictor.environment import Environment
    from h2o_gbm_predictor.server import GunicornServer

    class NoOpServer(GunicornServer):
        def load(self) -> Any:
            return no_op_app

    sys.argv = sys.argv[:1]  # gunicorn reads sys.argv
    NoOpServer(Environment.from_env()).run()


# Load -------------------------------------------------------------------------------------------------------
def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match[2]]


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return match[1]


def load_with_wrk(port: int, body: Path, seconds: float, work_dir: Path) -> LoadResult:
    script = work_dir / "post.lua"
    script.write_text(WRK_SCRIPT)
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
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
        requests_per_second=float(_search(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=_milliseconds(_search(r"^\s+50%\s+(\S+)", output)),
        p99_ms=_milliseconds(_search(r"^\s+99%\s+(\S+)", output)),
        errors=int(errors[1]) if errors else 0,
        client="wrk",
    )


def load_with_python(port: int, body: Path, seconds: float) -> LoadResult:
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


def load(port: int, body: Path, seconds: float, work_dir: Path) -> LoadResult:
    if shutil.which("wrk"):
        return load_with_wrk(port, body, seconds, work_dir)
    return load_with_python(port, body, seconds)


# The in-process ceiling -------------------------------------------------------------------------------------
def raw_scoring_rates(
    model_dir: str,
    helper_dir: str,
    bodies: dict[int, str],
    seconds: float,
    start: Any,
    results: multiprocessing.Queue,
) -> None:
    """Rows/s of the in-process scorer on pre-decoded batches of each size: no HTTP, no parsing, no encoding."""
    import gc

    from h2o_gbm_predictor.formats import RequestDecoder
    from h2o_gbm_predictor.metadata import load_metadata
    from h2o_gbm_predictor.scorer import Scorer, ensure_helper_compiled

    metadata = load_metadata(Path(model_dir))
    scorer = Scorer(metadata, ensure_helper_compiled(Path(helper_dir), metadata.genmodel_jar_path), "512m")
    decoder = RequestDecoder(metadata)
    batches = {size: decoder.decode("text/csv", Path(body).read_bytes()) for size, body in bodies.items()}
    gc.freeze()  # as serve's workers do once the model is loaded (app.py)
    start.wait()  # every process measures the same size at the same time
    rates = {}
    for size, cells in batches.items():
        warm_until = time.perf_counter() + 1
        while time.perf_counter() < warm_until:
            scorer.score(cells.text, cells.row_count)
        rows, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            scorer.score(cells.text, cells.row_count)
            rows += cells.row_count
        rates[size] = rows / (time.perf_counter() - started)
    results.put(rates)


def ceiling(
    model_dir: Path, helper_dir: Path, bodies: dict[int, Path], processes: int, seconds: float
) -> dict[int, float]:
    """Summed rows/s of ``processes`` scoring processes, per batch size."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = context.Barrier(processes)
    paths = {size: str(path) for size, path in bodies.items()}
    workers = [
        context.Process(
            target=raw_scoring_rates,
            args=(str(model_dir), str(helper_dir), paths, seconds, start, results),
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        if worker.exitcode != 0:
            raise RuntimeError(f"raw scoring process failed with exit code {worker.exitcode}")
    return {size: sum(rate[size] for rate in rates) for size in bodies}


# The run ----------------------------------------------------------------------------------------------------
def log(message: str) -> None:
    """The table: on stdout, or stderr when stdout carries the JSON."""
    print(message, file=_LOG[0], flush=True)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_LOG: list[TextIO] = [sys.stdout]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_benchmark(
    base_dir: Path | None = None,
    seconds: float = 5,
    rounds: int = 3,
    sizes: tuple[int, ...] = SIZES,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Runs the whole benchmark and returns its figures (what --json writes)."""
    with tempfile.TemporaryDirectory(prefix="predictor-benchmark-", dir=work_dir) as work:
        return _run(Path(work), base_dir, seconds, rounds, sizes)


def _run(
    work_dir: Path, base_dir: Path | None, seconds: float, rounds: int, sizes: tuple[int, ...]
) -> dict[str, Any]:
    base_dir = base_dir or train_example_model(work_dir)
    model_dir = base_dir / "model"
    bodies = request_bodies(work_dir, model_dir, sizes)
    helper_dir = work_dir / "helper"
    workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or os.cpu_count() or 1)

    cold = Server(base_dir, helper_dir)
    cold_ready = cold.wait_ready()
    cold.stop()
    serve = Server(base_dir, helper_dir)
    no_op = Server(base_dir, helper_dir, no_op=True)
    runs: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
    ceiling_sizes = tuple(size for size in sizes if size in CEILING_SIZES)
    try:
        ready = serve.wait_ready()
        no_op.wait_ready()
        for size in sizes:  # JIT and connection warm-up, not measured
            for server in (serve, no_op):
                load(server.port, bodies[size], 1, work_dir)
        for round_number in range(rounds):
            for size in sizes:
                pair = (serve, no_op) if round_number % 2 == 0 else (no_op, serve)
                results = {
                    server.no_op: load(server.port, bodies[size], seconds, work_dir) for server in pair
                }
                runs[size].append({"serve": results[False], "no_op": results[True]})
            if ceiling_sizes:
                rates = ceiling(
                    model_dir,
                    helper_dir,
                    {size: bodies[size] for size in ceiling_sizes},
                    workers,
                    CEILING_SECONDS,
                )
                for size, rate in rates.items():
                    runs[size][-1]["ceiling"] = rate
            progress(f"round {round_number + 1}/{rounds} done")
        rss = serve.rss_megabytes()
    finally:
        serve.stop()
        no_op.stop()

    client = runs[sizes[0]][0]["serve"].client
    figures: dict[str, Any] = {
        "setup": {
            "cpus": os.cpu_count(),
            "workers": workers,
            "client": client,
            "connections": CONNECTIONS,
            "seconds_per_run": seconds,
            "rounds": rounds,
            "request": "header-less CSV, Accept: text/csv",
        },
        "ready_seconds": ready,
        "cold_ready_seconds": cold_ready,
        "rss_mb_after_load": rss,
        "sizes": {},
    }
    for size in sizes:
        pairs = runs[size]
        serve_rps = [pair["serve"].requests_per_second for pair in pairs]
        no_op_rps = [pair["no_op"].requests_per_second for pair in pairs]
        entry: dict[str, Any] = {
            "serve_requests_per_second": _median(serve_rps),
            "no_op_requests_per_second": _median(no_op_rps),
            "serve_rows_per_second": _median(serve_rps) * size,
            "no_op_rows_per_second": _median(no_op_rps) * size,
            "serve_vs_no_op": _median([s / n for s, n in zip(serve_rps, no_op_rps, strict=True)]),
            "serve_p50_ms": _median([pair["serve"].p50_ms for pair in pairs]),
            "serve_p99_ms": _median([pair["serve"].p99_ms for pair in pairs]),
            "serve_errors": sum(pair["serve"].errors for pair in pairs),
            "runs": [
                {
                    name: asdict(value) if isinstance(value, LoadResult) else value
                    for name, value in pair.items()
                }
                for pair in pairs
            ],
        }
        if size in ceiling_sizes:
            entry["ceiling_rows_per_second"] = _median([pair["ceiling"] for pair in pairs])
            entry["serve_vs_ceiling"] = _median(
                [pair["serve"].requests_per_second * size / pair["ceiling"] for pair in pairs]
            )
            entry["http_stack_bound"] = _median(
                [1 / (1 + pair["ceiling"] / (size * pair["no_op"].requests_per_second)) for pair in pairs]
            )
        figures["sizes"][str(size)] = entry
    figures["goals"] = _goals(figures)
    return figures


def _goals(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sizes = figures["sizes"]
    measured: dict[str, float] = {"ready s": figures["ready_seconds"]}
    if "1" in sizes:
        measured |= {
            "1-row req/s": sizes["1"]["serve_requests_per_second"],
            "1-row p50 ms": sizes["1"]["serve_p50_ms"],
            "1-row serve/no-op": sizes["1"]["serve_vs_no_op"],
        }
    if "100" in sizes:
        measured |= {
            "100-row rows/s": sizes["100"]["serve_rows_per_second"],
            "100-row serve/ceiling": sizes["100"]["serve_vs_ceiling"],
        }
    if "1000" in sizes:
        measured["1000-row serve/ceiling"] = sizes["1000"]["serve_vs_ceiling"]
    lower_is_better = {"ready s", "1-row p50 ms"}
    return {
        name: {
            "goal": GOALS[name],
            "measured": value,
            "met": value <= GOALS[name] if name in lower_is_better else value >= GOALS[name],
        }
        for name, value in measured.items()
    }


def print_table(figures: dict[str, Any]) -> None:
    setup = figures["setup"]
    log(
        f"load client: {setup['client']}, {setup['connections']} connections, {setup['seconds_per_run']} s per run, "
        f"{setup['cpus']} CPUs, {setup['workers']} workers; medians of {setup['rounds']} paired rounds; "
        f"{setup['request']}"
    )
    log(
        f"process start to ready: {figures['ready_seconds']:.2f} s; first start, compiling the Java helper: "
        f"{figures['cold_ready_seconds']:.2f} s; RSS after load (master + workers): "
        f"{figures['rss_mb_after_load']:,.0f} MB"
    )
    header = (
        f"{'rows':>5} | {'serve req/s':>11} {'no-op req/s':>11} {'serve/no-op':>11} | "
        f"{'serve rows/s':>12} {'ceiling rows/s':>14} {'serve/ceiling':>13} {'bound':>5} | "
        f"{'p50 ms':>6} {'p99 ms':>6} {'errors':>6}"
    )
    log(header)
    log("-" * len(header))
    for size, entry in figures["sizes"].items():
        ceiling_rate = entry.get("ceiling_rows_per_second")
        share = entry.get("serve_vs_ceiling")
        bound = entry.get("http_stack_bound")
        log(
            f"{size:>5} | {entry['serve_requests_per_second']:>11,.0f} {entry['no_op_requests_per_second']:>11,.0f} "
            f"{entry['serve_vs_no_op']:>11.2f} | {entry['serve_rows_per_second']:>12,.0f} "
            f"{f'{ceiling_rate:,.0f}' if ceiling_rate else '-':>14} {f'{share:.2f}' if share else '-':>13} "
            f"{f'{bound:.2f}' if bound else '-':>5} | "
            f"{entry['serve_p50_ms']:>6.2f} {entry['serve_p99_ms']:>6.2f} {entry['serve_errors']:>6}"
        )
    for name, goal in figures["goals"].items():
        comparison = "<=" if name in ("ready s", "1-row p50 ms") else ">="
        log(
            f"goal {name} {comparison} {goal['goal']:,}: {goal['measured']:,.2f} "
            f"{'met' if goal['met'] else 'MISSED'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base-dir", type=Path, help="a SAGEMAKER_BASE_DIR holding model/ from h2o-gbm-trainer"
    )
    parser.add_argument("--seconds", type=int, default=5, help="duration of each load run (default 5)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="paired rounds; figures are medians (default 3)"
    )
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help=f"rows per request, comma-separated (default {','.join(map(str, SIZES))})",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the figures as JSON to FILE (- for stdout)"
    )
    parser.add_argument("--serve-no-op", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_no_op:
        serve_no_op()
        return
    if arguments.json == "-":
        _LOG[0] = sys.stderr
    sizes = tuple(int(size) for size in arguments.sizes.split(","))
    figures = run_benchmark(arguments.base_dir, arguments.seconds, arguments.rounds, sizes)
    print_table(figures)
    if arguments.json == "-":
        json.dump(figures, sys.stdout, indent=2)
        print()
    elif arguments.json:
        Path(arguments.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
