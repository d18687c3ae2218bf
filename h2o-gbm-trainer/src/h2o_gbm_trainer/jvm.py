"""The H2O JVM's start-up options: H2O's XGBoost extension switched off, and an AppCDS archive of the classes a
job loads, made after the first job and kept in a cache folder (built into the image).

Measured on 2 cores (`java -jar h2o.jar` to REST-ready, medians of 5 to 8; figures in the README):

| options | seconds |
|---|---|
| H2O's defaults | 2.62 |
| `-Dsys.ai.h2o.ext.core.toggle.XGBoost=False`: H2O no longer unpacks XGBoost's 157 MB native library at every start (this trainer only builds GBMs) | 1.59 |
| and the AppCDS archive (`-XX:SharedArchiveFile`): classes mapped from the archive, not read and verified from the 270 MB h2o.jar | 1.17 |

Measured and left out, no gain within the noise (1.16-1.26 s): `-XX:-UsePerfData`, the serial or parallel GC (also
over a whole job), H2O's `-disable_flow`, `-hdfs_skip` and `-md5skip`, switching off the REST extensions a GBM job
does not call (AutoML, Infogram, TargetEncoder, Amazon S3, MOJO pipelines) and the Kerberos and Infogram core
extensions.

`-Dsys.ai.h2o.heartbeat.benchmark.enabled=false`: H2O's heartbeat thread runs a Linpack and a memory-bandwidth
benchmark on every core once within its first 30 heartbeats (one a second, at a beat chosen by the node's hash) and
every 5 minutes after; only Deep Learning's auto-tuning reads the result. A run of it costs 2.4 CPU seconds (8
starts, 1 of them ran it); 20 Titanic jobs took 4.86 CPU seconds each on average instead of 5.05, the most 5.19
instead of 7.45, and on 2 cores two jobs side by side (a tuning job) share that CPU.

C1 only (`-XX:TieredStopAtLevel=1`) starts the JVM 0.06 s later, but on 2 cores the C2 compiler's threads take CPU
from a short job: a whole Titanic job (medians of 8) took 2.64 s instead of 3.17 s (load 0.42 -> 0.26 s, train
0.85 -> 0.55 s, export 0.31 -> 0.22 s); 100k rows x 22 columns (17.5 MB) 9.8 s instead of 10.5 s; but 300k rows
(52 MB) trained in 14.9 s instead of 13.1 s (means of two runs each), and longer jobs gain more from C2. So C1 only for small inputs:
`SMALL_INPUT_BYTES`, compressed files (gzip, Parquet) counted `COMPRESSED_INPUT_FACTOR` times.

The archive is a static one: the first job records the classes it loads (`-XX:DumpLoadedClassList`), then
`java -Xshare:dump` writes them into the archive. Not a dynamic one (`-XX:ArchiveClassesAtExit`): a dynamic archive
re-sorts each class's methods, and H2O binds a REST route to the first method of its name that
`Class.getMethods()` lists; for `POST /4/sessions` (`RapidsHandler$StartSession4`) that became the generic bridge
`exec(int, Schema)`, and H2O stopped the JVM on the first call ("Failed to instantiate schema of class:
water.api.Schema", measured with archives of a start-up and of a whole job). A static archive keeps the method order
the dumping JVM parsed; all 284 routes resolve as without an archive.

`JAVA_TOOL_OPTIONS` stays the user's override: the JVM reads it before the command line, so an option given there
replaces the trainer's own option of the same name, and any CDS option there (`-Xshare`, `-XX:SharedArchiveFile`,
...) replaces the archive handling altogether.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "H2O_GBM_TRAINER_CACHE_DIR"
"""Where the AppCDS archives live; default `$XDG_CACHE_HOME/h2o-gbm-trainer` (`~/.cache/h2o-gbm-trainer`)."""
JAVA_TOOL_OPTIONS_ENV = "JAVA_TOOL_OPTIONS"

DEFAULT_OPTIONS = (
    "-Dsys.ai.h2o.ext.core.toggle.XGBoost=False",
    "-Dsys.ai.h2o.heartbeat.benchmark.enabled=false",
)
SMALL_INPUT_OPTIONS = ("-XX:TieredStopAtLevel=1",)
SMALL_INPUT_BYTES = 20 * 2**20
COMPRESSED_INPUT_FACTOR = 4  # about what gzip or Parquet saves on CSV of numbers
CDS_OPTION_KEYS = {
    "-Xshare",
    "-XX:SharedArchiveFile",
    "-XX:ArchiveClassesAtExit",
    "-XX:DumpLoadedClassList",
    "-XX:SharedClassListFile",
}
# A static archive (java -Xshare:dump) starts with this magic number (HotSpot's CDS_ARCHIVE_MAGIC).
STATIC_ARCHIVE_MAGIC = (0xF00BABA2).to_bytes(4, "little")
DUMP_TIMEOUT_SECONDS = 600
# With a heap of 32 GB or more the JVM gives up compressed object pointers, and an archive made with them (or
# without) is refused by a JVM started the other way: each kind has its own archive.
COMPRESSED_OOPS_MAX_HEAP = 32 * 2**30
SIGTERM_EXIT_CODE = 143  # 128 + SIGTERM: the JVM's exit after a clean shutdown


def option_key(option: str) -> str:
    """What an option sets: `-XX:+Foo`, `-XX:-Foo` and `-XX:Foo=1` all set `-XX:Foo`; `-Dname=value` sets `-Dname`;
    `-Xmx4g` sets `-Xmx`, `-Xshare:off` sets `-Xshare`."""
    if option.startswith("-XX:"):
        return "-XX:" + option[4:].lstrip("+-").split("=", 1)[0]
    if option.startswith("-D"):
        return option.split("=", 1)[0]
    match = re.match(r"-X[a-z]+", option)
    return match[0] if match else option.split("=", 1)[0]


def user_options(environ: dict[str, str]) -> list[str]:
    text = environ.get(JAVA_TOOL_OPTIONS_ENV, "")
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: the JVM itself splits on white space then
        return text.split()


def default_options(environ: dict[str, str], input_bytes: int | None) -> list[str]:
    """The trainer's JVM options that JAVA_TOOL_OPTIONS does not override; `input_bytes`: the job's data as CSV,
    estimated (None: unknown)."""
    overridden = {option_key(option) for option in user_options(environ)}
    small = input_bytes is not None and input_bytes <= SMALL_INPUT_BYTES
    options = [*DEFAULT_OPTIONS, *(SMALL_INPUT_OPTIONS if small else ())]
    return [option for option in options if option_key(option) not in overridden]


def cache_dir(environ: dict[str, str]) -> Path:
    if environ.get(CACHE_DIR_ENV):
        return Path(environ[CACHE_DIR_ENV])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "h2o-gbm-trainer"


def _identity(path: Path) -> str:
    status = path.stat()
    return f"{path}:{status.st_size}:{status.st_mtime_ns}"


def _java_version(java_home: Path) -> str:
    with contextlib.suppress(OSError):
        release = (java_home / "release").read_text(encoding="utf-8", errors="replace")
        match = re.search(r'^JAVA_RUNTIME_VERSION="([^"]+)"', release, flags=re.MULTILINE)
        if match:
            return match[1]
    return "unknown"


def archive_name(java: Path, jar: Path, compressed_oops: bool) -> str:
    """The archive's file name: the h2o and Java versions to read, and a digest of the exact files that an archive
    depends on (the jar, the java launcher and the JVM library: path, size, modification time), so a changed jar or
    JDK, even of the same version, never meets an archive made for another."""
    java = java.resolve()
    java_home = java.parent.parent
    try:
        h2o_version = metadata.version("h2o")
    except metadata.PackageNotFoundError:
        h2o_version = "unknown"
    java_version = _java_version(java_home)
    parts = [_identity(jar.resolve()), _identity(java), h2o_version, java_version, str(compressed_oops)]
    for library in sorted(java_home.glob("lib/*/libjvm.so")):
        parts.append(_identity(library))
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    oops = "coops" if compressed_oops else "nocoops"
    safe_java_version = re.sub(r"[^A-Za-z0-9.+-]", "_", java_version)
    return f"h2o-{h2o_version}-java-{safe_java_version}-{oops}-{digest}.jsa"


def is_archive(path: Path) -> bool:
    try:
        with path.open("rb") as archive:
            return archive.read(4) == STATIC_ARCHIVE_MAGIC
    except OSError:
        return False


@dataclass
class StartupArchive:
    """The archive options for one JVM and, when the cache has no archive yet, how to make it after the job."""

    options: list[str] = field(default_factory=list)
    state: str = "off"
    """For the log: `used <path>`, `creating <path>` or why there is none."""
    path: Path | None = None
    class_list: Path | None = None
    """Set when this JVM records the classes it loads, for the archive made once the job is done."""
    dump_command: list[str] = field(default_factory=list)

    @property
    def recording(self) -> bool:
        return self.class_list is not None

    def finish(self, jvm_exit_code: int | None, job_succeeded: bool) -> None:
        """After a successful first job, dump the archive of the classes it loaded (`java -Xshare:dump`, about 3.5 s)
        to a temporary name and rename it into the cache.

        Rename is atomic: a JVM starting meanwhile sees no archive or a whole one, and two first uses at once each
        publish a complete archive (the last one stays)."""
        if self.path is None or self.class_list is None or not job_succeeded:
            return
        if jvm_exit_code not in (0, SIGTERM_EXIT_CODE) or not self.class_list.is_file():
            return  # killed: its class list may be cut short
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
        command = [
            *self.dump_command,
            f"-XX:SharedClassListFile={self.class_list}",
            f"-XX:SharedArchiveFile={partial}",
        ]
        started = time.perf_counter()
        try:
            dumped = subprocess.run(command, capture_output=True, timeout=DUMP_TIMEOUT_SECONDS, check=False)
            if dumped.returncode == 0 and is_archive(partial):
                os.replace(partial, self.path)
                logger.info(
                    "start-up archive written in %.1f s: %s", time.perf_counter() - started, self.path
                )
                return
            output = " ".join((dumped.stdout + dumped.stderr).decode(errors="replace").split()[-40:])
            logger.warning(
                "no start-up archive: java -Xshare:dump exited with %d: %s", dumped.returncode, output
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            logger.warning("no start-up archive: %s", error)
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()


def startup_archive(
    java: Path,
    jar: Path,
    heap_option: str,
    max_mem_bytes: int,
    scratch: Path,
    environ: dict[str, str],
    may_record: bool = True,
) -> StartupArchive:
    """Use the cached archive for this jar, JDK and heap kind; without one, have this JVM record its classes
    unless `may_record` is false (a member of a multi-instance cluster: the leader's job makes the archive)."""
    user = user_options(environ)
    if CDS_OPTION_KEYS & {option_key(option) for option in user}:
        return StartupArchive(state=f"as set in {JAVA_TOOL_OPTIONS_ENV}")
    compressed_oops = max_mem_bytes < COMPRESSED_OOPS_MAX_HEAP and "-XX:-UseCompressedOops" not in user
    try:
        folder = cache_dir(environ)
        path = folder / archive_name(java, jar, compressed_oops)
    except (OSError, RuntimeError) as error:  # RuntimeError: no home folder to put the cache in
        return StartupArchive(state=f"off ({error})")
    if is_archive(path):
        return StartupArchive(options=[f"-XX:SharedArchiveFile={path}"], state=f"used {path}", path=path)
    if not may_record:
        return StartupArchive(state="none yet (the leader's first job makes it)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}-{secrets.token_hex(4)}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        return StartupArchive(state=f"off: cannot write to {folder} ({error.strerror})")
    class_list = scratch / "loaded-classes.txt"
    return StartupArchive(
        options=[f"-XX:DumpLoadedClassList={class_list}"],
        state=f"creating {path} once this first job is done (about 3.5 s)",
        path=path,
        class_list=class_list,
        # The class path exactly as the job's JVM has it (-jar <jar>), or the archive is refused.
        dump_command=[str(java), heap_option, "-Xshare:dump", "-cp", str(jar)],
    )
