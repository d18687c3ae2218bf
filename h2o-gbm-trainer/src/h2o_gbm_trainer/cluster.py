"""One private H2O JVM per training job, always shut down, also on failure.

`h2o.init` would first attach to any H2O already listening on its port (another job's, when two jobs run on
one machine), so the server is started explicitly: a random cluster name, a free base port searched by the
JVM itself, and all its scratch files in a temporary folder removed at the end.
"""

from __future__ import annotations

import contextlib
import io
import socket
import tempfile
from collections.abc import Iterator

import h2o
from h2o.backend import H2OLocalServer
from h2o.exceptions import H2OServerError, H2OStartupError

from .errors import TrainingError


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _temporary_files_in(folder: str) -> Iterator[None]:
    """H2OLocalServer puts its ice root and JVM log files in `tempfile.mkdtemp()` folders it never deletes."""
    previous, tempfile.tempdir = tempfile.tempdir, folder
    try:
        yield
    finally:
        tempfile.tempdir = previous


@contextlib.contextmanager
def local_h2o(max_mem_bytes: int) -> Iterator[H2OLocalServer]:
    with tempfile.TemporaryDirectory(prefix="h2o-gbm-trainer-") as scratch:
        try:
            with _temporary_files_in(scratch):
                server = H2OLocalServer.start(
                    nthreads=-1,
                    max_mem_size=max_mem_bytes,
                    port=f"{_free_port()}+",
                    enable_assertions=False,
                    verbose=False,
                )
        except (H2OStartupError, H2OServerError) as error:
            reason = " ".join(str(error).split())
            raise TrainingError(f"cannot start the H2O JVM (is Java 17 installed?): {reason}") from None
        try:
            # connect() prints a version nag to stdout; the job's stdout is kept for progress and metric lines.
            with contextlib.redirect_stdout(io.StringIO()):
                h2o.connect(server=server, verbose=False)
            h2o.no_progress()
            yield server
        finally:
            with contextlib.suppress(Exception):
                h2o.connection().close()
            server.shutdown()
