"""One private H2O JVM per job, always shut down, also on failure.

`h2o.init` would first attach to any H2O already listening on its port (another job's, when two jobs run on
one machine), so the JVM is started explicitly: a random cluster name, a free base port searched by the JVM
itself, and all its scratch files in a temporary folder removed at the end.

The command line is the one `H2OLocalServer.start` builds (h2o/backend/server.py: `java -Xmx.. <JVM options> -jar
h2o.jar -ip -web_ip -baseport -ice_root -name -log_level INFO -allow_unsupported_java`, the JVM in its own session),
with the start-up options of jvm.py. The trainer launches it itself rather than through H2OLocalServer because:
that class looks for the JVM's ready line every 0.2 s (about 0.1 s lost per job), starts a second JVM for `java
-version`, and its shutdown stops waiting after 3 s without ever seeing the JVM exit, while the start-up archive is
made from the class list the JVM completes as it exits (jvm.py).

A node of a multi-instance cluster (distributed.py) gets its own address, a fixed port, the cluster's name and a
flatfile listing every node instead (`-ip <address> -web_ip <address> -port <port> -flatfile <file> -name <cluster>`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h2o
from h2o.utils.progressbar import ProgressBar

from . import jvm
from .errors import TrainingError

logger = logging.getLogger(__name__)

READY_LINE = re.compile(r": Open H2O Flow in your web browser: (https?)://([^:/\s]+):(\d+)")
START_TIMEOUT_SECONDS = 60.0
READY_POLL_SECONDS = 0.01
GRACEFUL_STOP_SECONDS = 30.0
# h2o-py polls a running job (parse, model build, MOJO import) at most every 0.2 s for its first second: up to 0.2 s
# lost per job, five jobs per training job. From 0.02 s on, its next poll still comes after a fifth of the time
# already waited, so it waits at most about a fifth longer than the job runs. Measured (Titanic, medians of 5):
# data load 0.60 -> 0.26 s, export 0.35 -> 0.22 s.
JOB_POLL_MIN_SECONDS = 0.02


@dataclass(frozen=True)
class NodeNetwork:
    """Where a node of a multi-instance cluster listens, and which cluster it joins."""

    ip: str
    port: int
    """Its REST API; H2O's internal traffic uses the next port."""
    cluster_name: str
    flatfile: tuple[str, ...]
    """`ip:port` of every node of the cluster, this one included."""


@dataclass(frozen=True)
class LocalH2O:
    port: int
    startup_archive: str
    """What the JVM did with the start-up archive: `used <path>`, `creating <path>`, or why none."""
    ip: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)
    jvm_log: Path | None = None
    """The JVM's stdout (H2O's log), for a reason when it stops."""

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"


def find_java() -> Path:
    """As H2OLocalServer looks for it: $H2O_JAVA_HOME/bin/java, else java on PATH, else $JAVA_HOME/bin/java."""
    if os.environ.get("H2O_JAVA_HOME"):
        return Path(os.environ["H2O_JAVA_HOME"]) / "bin" / "java"
    on_path = shutil.which("java")
    if on_path:
        return Path(on_path)
    java_home = Path(os.environ.get("JAVA_HOME") or "/nonexistent")
    if (java_home / "bin" / "java").is_file():
        return java_home / "bin" / "java"
    raise TrainingError("cannot start the H2O JVM: no java on PATH (is Java 17 installed?)")


def find_h2o_jar() -> Path:
    """$H2O_JAR_PATH, else the jar inside the installed h2o package, as H2OLocalServer finds it."""
    jar = Path(os.environ.get("H2O_JAR_PATH") or Path(h2o.__file__).parent / "backend" / "bin" / "h2o.jar")
    if not jar.is_file():
        raise TrainingError(f"cannot start the H2O JVM: no h2o.jar at {jar}")
    return jar


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _heap_option(max_mem_bytes: int) -> str:
    """-Xmx as H2OLocalServer writes it."""
    for unit, shift in (("G", 30), ("M", 20)):
        if max_mem_bytes == (max_mem_bytes >> shift) << shift:
            return f"-Xmx{max_mem_bytes >> shift}{unit}"
    return f"-Xmx{max_mem_bytes}"


def jvm_command(
    java: Path,
    jar: Path,
    heap_option: str,
    jvm_options: list[str],
    scratch: Path,
    network: NodeNetwork | None = None,
) -> list[str]:
    """One private node on loopback (a random cluster name, a free base port), or a node of `network`."""
    ice_root = scratch / "ice"
    ice_root.mkdir(exist_ok=True)
    if network is None:
        where = ["-ip", "127.0.0.1", "-web_ip", "127.0.0.1", "-baseport", str(_free_port())]
        name = f"h2o-gbm-trainer-{secrets.token_hex(6)}"
    else:
        flatfile = scratch / "flatfile.txt"
        flatfile.write_text("".join(f"{node}\n" for node in network.flatfile), encoding="utf-8")
        where = [
            "-ip", network.ip, "-web_ip", network.ip, "-port", str(network.port), "-flatfile", str(flatfile),
        ]  # fmt: skip
        name = network.cluster_name
    return [
        str(java), heap_option, *jvm_options, "-jar", str(jar), *where,
        "-ice_root", str(ice_root), "-name", name, "-log_level", "INFO", "-allow_unsupported_java",
    ]  # fmt: skip


def _last_lines(path: Path, count: int = 5) -> str:
    with contextlib.suppress(OSError):
        return " ".join(" ".join(path.read_text(errors="replace").splitlines()[-count:]).split())
    return ""


def _wait_until_ready(process: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> int:
    """The port of the REST API, once the JVM logs the line H2OLocalServer waits for (REST is served then)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    seen = ""
    with stdout.open(errors="replace") as log:
        while True:
            seen += log.read()
            ready = READY_LINE.search(seen)
            if ready:
                return int(ready[3])
            if process.poll() is not None:
                reason = _last_lines(stderr) or _last_lines(stdout)
                raise TrainingError(
                    f"cannot start the H2O JVM (is Java 17 installed?): it exited with code "
                    f"{process.returncode}: {reason}"
                )
            if time.monotonic() > deadline:
                raise TrainingError(
                    f"cannot start the H2O JVM: not ready after {START_TIMEOUT_SECONDS:.0f} s"
                )
            time.sleep(READY_POLL_SECONDS)


def _stop(process: subprocess.Popen[bytes], graceful: bool) -> int | None:
    """Stop the JVM and wait for it to exit; its exit code.

    A JVM recording its classes for the start-up archive gets SIGTERM, so it writes out the whole list as it
    exits. Any other JVM is killed at once: H2O's own shutdown (0.35 s, measured) guards nothing a job needs, since
    its outputs are written and its scratch folder is removed next."""
    try:
        if graceful and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=GRACEFUL_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("the H2O JVM did not exit %.0f s after SIGTERM: killed", GRACEFUL_STOP_SECONDS)
    finally:  # also when a SIGTERM to the job interrupts the wait
        if process.poll() is None:
            process.kill()
    return process.wait()


def connect(server: LocalH2O) -> None:
    """Connect h2o-py to the node (of a cluster: once the cluster has formed, or h2o-py refuses)."""
    # connect() prints a version nag to stdout; the job's stdout is kept for progress and metric lines.
    with contextlib.redirect_stdout(io.StringIO()):
        h2o.connect(url=server.url, verbose=False)
    h2o.no_progress()
    ProgressBar.MIN_PROGRESS_CHECK_INTERVAL = JOB_POLL_MIN_SECONDS


def jvm_exit_reason(server: LocalH2O) -> str:
    """Why the node's JVM stopped, from the end of its log."""
    code = server.process.poll() if server.process else None
    last = _last_lines(server.jvm_log) if server.jvm_log else ""
    return f"it exited with code {code}" + (f": {last}" if last else "")


@contextlib.contextmanager
def local_h2o(
    max_mem_bytes: int,
    input_bytes: int | None = None,
    network: NodeNetwork | None = None,
    connected: bool = True,
    may_record_archive: bool = True,
) -> Iterator[LocalH2O]:
    """An H2O JVM for the `with` block, h2o-py connected to it unless `connected` is false; `input_bytes`: the
    data it will read, as CSV (jvm.py); `network`: a node of a multi-instance cluster instead of a private one;
    `may_record_archive`: false for a JVM that must not make the start-up archive (a cluster member: it uses one
    when there is one)."""
    environ = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="h2o-gbm-trainer-") as scratch_name:
        scratch = Path(scratch_name)
        java, jar = find_java(), find_h2o_jar()
        heap_option = _heap_option(max_mem_bytes)
        archive = jvm.startup_archive(
            java, jar, heap_option, max_mem_bytes, scratch, environ, may_record=may_record_archive
        )
        command = jvm_command(
            java,
            jar,
            heap_option,
            [*jvm.default_options(environ, input_bytes), *archive.options],
            scratch,
            network,
        )
        stdout, stderr = scratch / "jvm-stdout.log", scratch / "jvm-stderr.log"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            try:
                process = subprocess.Popen(
                    command, stdout=out, stderr=err, cwd=scratch, start_new_session=True
                )
            except OSError as error:
                raise TrainingError(f"cannot start the H2O JVM (is Java 17 installed?): {error}") from None
        succeeded = False
        try:
            port = _wait_until_ready(process, stdout, stderr)
            server = LocalH2O(
                port=port,
                startup_archive=archive.state,
                ip=network.ip if network else "127.0.0.1",
                process=process,
                jvm_log=stdout,
            )
            if connected:
                connect(server)
            yield server
            succeeded = True
        finally:
            with contextlib.suppress(Exception):
                h2o.connection().close()
            exit_code = _stop(process, graceful=archive.recording)
            archive.finish(exit_code, job_succeeded=succeeded)
