"""In-process MOJO scoring: JPype starts a JVM in this process and a small Java helper scores whole batches.

The helper (java/*.java) is compiled once with javac into a folder named after the sources' hash, so a changed
source never meets a stale class. The Docker image compiles it at build time; elsewhere `serve` compiles it on
first use (about a second) and later starts reuse it.

Two ways in: `Scorer.score` takes cells the Python decoder prepared (formats.py) and returns the raw outputs;
`RequestScorer.invoke` takes a whole request body and returns the whole response body in one Java call
(RequestScorer.java), or None when the request needs the Python path (every error, and rare valid inputs).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import jpype
import jpype.nio

from h2o_gbm_predictor.metadata import ModelMetadata

HELPER_PACKAGE = "h2ogbmpredictor"
HELPER_CLASS = f"{HELPER_PACKAGE}.BatchScorer"
HELPER_CLASSES = ("BatchScorer", "RequestScorer", "Decimals", "ByteSink")
CELL_SEPARATOR = "\x1f"


class ScorerError(RuntimeError):
    """The Java side could not be prepared: no javac, a compile error, or a MOJO the JVM cannot load."""


class InvalidCell(ValueError):
    """A cell the model cannot score; ``row`` is 0-based within the batch."""

    def __init__(self, message: str, row: int) -> None:
        super().__init__(message)
        self.row = row


def _helper_sources() -> dict[str, bytes]:
    java = resources.files("h2o_gbm_predictor").joinpath("java")
    return {name: java.joinpath(f"{name}.java").read_bytes() for name in HELPER_CLASSES}


def compiled_helper_dir(helper_dir: Path) -> Path:
    digest = hashlib.sha256()
    for name, source in _helper_sources().items():
        digest.update(name.encode() + b"\0" + source + b"\0")
    return helper_dir / f"batch-scorer-{digest.hexdigest()[:16]}"


def ensure_helper_compiled(helper_dir: Path, genmodel_jar: Path) -> Path:
    """The folder holding the compiled helper, compiling it first if needed (safe when processes race)."""
    target = compiled_helper_dir(helper_dir)
    if all((target / HELPER_PACKAGE / f"{name}.class").is_file() for name in HELPER_CLASSES):
        return target
    javac = shutil.which("javac")
    if javac is None:
        raise ScorerError(f"the scoring helper is not compiled in {target} and javac (JDK 17) is not on PATH")
    helper_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=helper_dir) as work:
        sources = []
        for name, text in _helper_sources().items():
            sources.append(Path(work) / f"{name}.java")
            sources[-1].write_bytes(text)
        classes = Path(work) / "classes"
        result = subprocess.run(
            [javac, "--release", "17", "-cp", str(genmodel_jar), "-d", str(classes), *map(str, sources)],
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
    """Flat output rows (see BatchScorer.java) and the unknown categorical levels met, per 0-based row. With
    ``contributions`` (their names), each row ends with its feature contributions, counted in ``width``."""

    values: list[float]
    width: int
    unknown_levels: dict[int, dict[str, str]]
    contributions: tuple[str, ...] = ()


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
        self._contribution_names: tuple[str, ...] | None = None

    def request_scorer(self, metadata: ModelMetadata, fragments: ResponseFragments) -> RequestScorer:
        """The one-call path, scoring with this scorer's model (the same Java BatchScorer)."""
        return RequestScorer(self._scorer, metadata, fragments)

    @property
    def explainable(self) -> bool:
        """Whether `explain` works: h2o-genmodel computes no contributions for multinomial models."""
        return bool(self._scorer.explainable())

    def score(self, cells: str, row_count: int) -> ScoredBatch:
        """Scores ``row_count`` rows; ``cells`` holds each cell followed by CELL_SEPARATOR, rows in order."""
        return self._batch(self._scorer.score, cells, row_count, ())

    def explain(self, cells: str, row_count: int) -> ScoredBatch:
        """As `score`, each row with its feature contributions (TreeSHAP) and BiasTerm."""
        if self._contribution_names is None:
            self._contribution_names = tuple(str(name) for name in self._scorer.contributionNames())
        return self._batch(self._scorer.explain, cells, row_count, self._contribution_names)

    def _batch(self, method: Any, cells: str, row_count: int, contributions: tuple[str, ...]) -> ScoredBatch:
        try:
            batch = method(cells, row_count)
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
        return ScoredBatch(
            values=values,
            width=self.width + len(contributions),
            unknown_levels=unknown_levels,
            contributions=contributions,
        )


@dataclass(frozen=True)
class ResponseFragments:
    """The constant parts of every response as formats.py's ResponseEncoder writes them, for the Java writer."""

    csv_header: bytes
    csv_labels: tuple[bytes, ...]  # per class, as a CSV field; none for a regression
    json_row_prefixes: tuple[bytes, ...]  # per class: {"label":<label>,"probabilities":{
    json_probability_keys: tuple[bytes, ...]  # per class: <label>:


class RequestScorer:
    """A whole request in one Java call (RequestScorer.java): body bytes in, response bytes out.

    The bytes cross through two direct buffers shared with the JVM (Python bytearrays), so a request costs one
    copy in, one JNI call with three ints and one copy out, and builds no Python object per cell or row. One per
    process, used from one thread.
    """

    FALLBACK = -1
    OUTPUT_TOO_SMALL = -2
    # The usual size of both buffers; one grown past KEPT_BUFFER_SIZE for a large request is dropped after it.
    BUFFER_SIZE = 1 << 16
    KEPT_BUFFER_SIZE = 1 << 23

    def __init__(self, batch_scorer: Any, metadata: ModelMetadata, fragments: ResponseFragments) -> None:
        byte_array = jpype.JArray(jpype.JByte)
        byte_arrays = jpype.JArray(byte_array)
        self._java = jpype.JClass(f"{HELPER_PACKAGE}.RequestScorer")(
            batch_scorer,
            list(metadata.input_columns),
            metadata.target,
            byte_array(fragments.csv_header),
            byte_arrays([byte_array(label) for label in fragments.csv_labels]),
            byte_arrays([byte_array(prefix) for prefix in fragments.json_row_prefixes]),
            byte_arrays([byte_array(key) for key in fragments.json_probability_keys]),
        )
        self._input = bytearray()
        self._output = bytearray()
        self._output_view = memoryview(self._output)
        self._use_input(self.BUFFER_SIZE)
        self._use_output(self.BUFFER_SIZE)
        self._handle = self._java.handle

    def _use_input(self, size: int) -> None:
        self._input = bytearray(size)
        self._java.setInput(jpype.nio.convertToDirectBuffer(self._input))

    def _use_output(self, size: int) -> None:
        self._output = bytearray(size)
        self._output_view = memoryview(self._output)
        self._java.setOutput(jpype.nio.convertToDirectBuffer(self._output))

    def invoke(self, body: bytes, request_format: int, response_format: int) -> bytes | None:
        """The response body, or None when the Python path must answer (it words every error)."""
        size = len(body)
        if size > len(self._input):
            self._use_input(max(size, 2 * len(self._input)))
        self._input[:size] = body
        length = self._handle(size, request_format, response_format)
        if length < 0:
            if length == self.FALLBACK:
                answer = None
            else:
                length = int(self._java.responseLength())
                self._use_output(max(length, 2 * len(self._output)))
                self._java.copyResponse()
                answer = self._output_view[:length].tobytes()
        else:
            answer = self._output_view[:length].tobytes()
        if len(self._input) > self.KEPT_BUFFER_SIZE:
            self._use_input(self.BUFFER_SIZE)
        if len(self._output) > self.KEPT_BUFFER_SIZE:
            self._use_output(self.BUFFER_SIZE)
        return answer
