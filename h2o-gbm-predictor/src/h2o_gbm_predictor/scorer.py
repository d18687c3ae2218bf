"""In-process MOJO scoring: JPype starts a JVM in this process and a small Java helper scores whole batches.

The helper (java/BatchScorer.java) is compiled once with javac into a folder named after the source's hash,
so a changed source never meets a stale class. The Docker image compiles it at build time; elsewhere `serve`
compiles it on first use (about a second) and later starts reuse it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import cast

import jpype

from h2o_gbm_predictor.metadata import ModelMetadata

HELPER_CLASS = "h2ogbmpredictor.BatchScorer"
CELL_SEPARATOR = "\x1f"


class ScorerError(RuntimeError):
    """The Java side could not be prepared: no javac, a compile error, or a MOJO the JVM cannot load."""


class InvalidCell(ValueError):
    """A cell the model cannot score; ``row`` is 0-based within the batch."""

    def __init__(self, message: str, row: int) -> None:
        super().__init__(message)
        self.row = row


def _helper_source() -> bytes:
    return resources.files("h2o_gbm_predictor").joinpath("java/BatchScorer.java").read_bytes()


def compiled_helper_dir(helper_dir: Path) -> Path:
    return helper_dir / f"batch-scorer-{hashlib.sha256(_helper_source()).hexdigest()[:16]}"


def ensure_helper_compiled(helper_dir: Path, genmodel_jar: Path) -> Path:
    """The folder holding the compiled helper, compiling it first if needed (safe when processes race)."""
    target = compiled_helper_dir(helper_dir)
    if (target / "h2ogbmpredictor" / "BatchScorer.class").is_file():
        return target
    javac = shutil.which("javac")
    if javac is None:
        raise ScorerError(f"the scoring helper is not compiled in {target} and javac (JDK 17) is not on PATH")
    helper_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=helper_dir) as work:
        source = Path(work) / "BatchScorer.java"
        source.write_bytes(_helper_source())
        classes = Path(work) / "classes"
        result = subprocess.run(
            [javac, "--release", "17", "-cp", str(genmodel_jar), "-d", str(classes), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ScorerError(f"javac failed to compile the scoring helper:\n{result.stderr.strip()}")
        try:
            classes.rename(target)
        except OSError:
            # Another process compiled the same source first; its result is identical.
            if not target.is_dir():
                raise
    return target


@dataclass(frozen=True)
class ScoredBatch:
    """Flat output rows (see BatchScorer.java) and the unknown categorical levels met, per 0-based row."""

    values: list[float]
    width: int
    unknown_levels: dict[int, dict[str, str]]


class Scorer:
    """Scores batches of rows with one MOJO. Start at most one per process, after any fork (the JVM does not fork)."""

    def __init__(self, metadata: ModelMetadata, helper_classes: Path, jvm_heap: str) -> None:
        if not jpype.isJVMStarted():
            jpype.startJVM(
                f"-Xmx{jvm_heap}",
                "-XX:+UseSerialGC",
                # Leave SIGTERM to gunicorn for a graceful stop; by default the JVM exits on it with 143.
                "-Xrs",
                classpath=[str(metadata.genmodel_jar_path), str(helper_classes)],
                convertStrings=False,
            )
        batch_scorer = jpype.JClass(HELPER_CLASS)
        self._invalid_cell = jpype.JClass(f"{HELPER_CLASS}$InvalidCellException")
        try:
            self._scorer = batch_scorer(
                str(metadata.mojo_path),
                [feature.name for feature in metadata.features],
                [feature.numeric for feature in metadata.features],
            )
        except jpype.JException as error:
            raise ScorerError(f"cannot load the MOJO {metadata.mojo_path}: {error}") from None
        self.width = int(self._scorer.outputWidth())

    def score(self, cells: str, row_count: int) -> ScoredBatch:
        """Scores ``row_count`` rows; ``cells`` holds each cell followed by CELL_SEPARATOR, rows in order."""
        try:
            batch = self._scorer.score(cells, row_count)
        except self._invalid_cell as error:
            raise InvalidCell(str(error.getMessage()), int(error.row)) from None
        unknown_levels: dict[int, dict[str, str]] = {}
        rows = batch.unknownLevelRows
        if len(rows):
            for row, column, level in zip(
                rows, batch.unknownLevelColumns, batch.unknownLevelValues, strict=True
            ):
                unknown_levels.setdefault(int(row), {})[str(column)] = str(level)
        # A Java double[] is viewed with format "d", so tolist() gives floats; typeshed types it list[int].
        values = cast(list[float], memoryview(batch.values).tolist())
        return ScoredBatch(values=values, width=self.width, unknown_levels=unknown_levels)
