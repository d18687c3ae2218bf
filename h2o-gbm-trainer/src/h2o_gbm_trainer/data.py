"""Find the channels' files, check them against the hyperparameters, and load them as H2O frames.

A channel is CSV files with a header, plain or gzip-compressed, or Parquet files. What a file is comes from its
first bytes (gzip `1f 8b`, Parquet `PAR1`), whatever its name; inputdataconfig.json's ContentType and
CompressionType, when SageMaker passes them, must agree with it. H2O reads all of them itself.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2o
from h2o.exceptions import H2OResponseError, H2OServerError

from .environment import CHANNELS, TRAINING_CHANNEL, VALIDATION_CHANNEL, Environment
from .errors import TrainingInputError
from .hyperparameters import Hyperparameters
from .jvm import COMPRESSED_INPUT_FACTOR

CSV_CONTENT_TYPE = "text/csv"
PARQUET_CONTENT_TYPE = "application/x-parquet"
CONTENT_TYPES = (CSV_CONTENT_TYPE, PARQUET_CONTENT_TYPE)
GZIP_COMPRESSION = "Gzip"
# FastFile shows the S3 objects as files at the same paths as File mode ("no code changes"); Pipe streams FIFOs.
FILE_INPUT_MODES = ("File", "FastFile")
COMPRESSION_TYPES = ("None", GZIP_COMPRESSION)
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class TrainingData:
    training: h2o.H2OFrame
    validation: h2o.H2OFrame | None
    target: str
    input_columns: list[str]
    """The training header minus the target: the field order of a header-less scoring request."""
    feature_columns: list[str]
    """What the model is offered (H2O may still drop constant or string columns)."""


@dataclass(frozen=True)
class DeclaredFormat:
    """A channel's ContentType and CompressionType in inputdataconfig.json; None where not given."""

    content_type: str | None = None
    compression: str | None = None


@dataclass(frozen=True)
class ChannelFiles:
    name: str
    files: list[Path]
    parquet: bool
    header: list[str] | None
    """A CSV channel's header (its first file's), read before the JVM starts; None for Parquet (H2O reads it)."""

    @property
    def csv_bytes(self) -> int:
        return csv_bytes(self.files)


def _declared_format(channel: str, settings: dict[str, Any]) -> DeclaredFormat:
    content_type = settings.get("ContentType")
    if content_type is not None:
        media_type = str(content_type).split(";", 1)[0].strip().lower()  # "text/csv; charset=utf-8" is CSV
        if media_type not in CONTENT_TYPES:
            raise TrainingInputError(
                f"channel {channel!r}: ContentType must be {' or '.join(CONTENT_TYPES)}, got {content_type!r}"
            )
        content_type = media_type
    compression = settings.get("CompressionType")
    if compression is not None:
        if compression not in COMPRESSION_TYPES:
            raise TrainingInputError(
                f"channel {channel!r}: CompressionType must be None or Gzip, got {compression!r}"
            )
        if compression == GZIP_COMPRESSION and content_type == PARQUET_CONTENT_TYPE:
            raise TrainingInputError(
                f"channel {channel!r}: CompressionType Gzip does not go with ContentType {PARQUET_CONTENT_TYPE} "
                "(Parquet compresses its pages itself): give the Parquet files as they are, with CompressionType None"
            )
    return DeclaredFormat(content_type, compression)


def read_input_data_config(env: Environment) -> dict[str, DeclaredFormat]:
    """Optional locally; on SageMaker it declares the channels, which must be ones this trainer knows."""
    if not env.input_data_config_file.is_file():
        return {}
    try:
        config = json.loads(env.input_data_config_file.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError and too-long integers all are
        raise TrainingInputError(f"input/config/inputdataconfig.json is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise TrainingInputError("input/config/inputdataconfig.json must be a JSON object of channels")
    declared = {}
    for channel, settings in config.items():
        if channel not in CHANNELS:
            raise TrainingInputError(f"unknown channel {channel!r} (accepted: {', '.join(CHANNELS)})")
        settings = settings if isinstance(settings, dict) else {}
        mode = settings.get("TrainingInputMode", "File")
        if mode not in FILE_INPUT_MODES:
            raise TrainingInputError(
                f"channel {channel!r}: TrainingInputMode {mode} is not supported; the trainer reads files: use "
                f"{' or '.join(FILE_INPUT_MODES)}"
            )
        declared[channel] = _declared_format(channel, settings)
    return declared


def data_files(folder: Path) -> list[Path]:
    """Every file under the folder (S3 prefixes may hold several), hidden ones left out."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def channel_files(env: Environment, channel: str) -> list[Path]:
    """An empty list means the channel was not given; a folder without files is an error."""
    folder = env.channel_dir(channel)
    files = data_files(folder)
    if folder.is_dir() and not files:
        raise TrainingInputError(f"channel {channel!r} has no files in {folder}")
    return files


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as data:
            return data.read(4)
    except OSError:
        return b""


def is_parquet(path: Path) -> bool:
    return _magic(path) == PARQUET_MAGIC


def is_gzip(path: Path) -> bool:
    return _magic(path).startswith(GZIP_MAGIC)


def csv_bytes(files: list[Path]) -> int:
    """The files' size as CSV, compressed ones (gzip, Parquet) estimated: what sizes the JVM's options."""
    return sum(
        path.stat().st_size * (COMPRESSED_INPUT_FACTOR if is_gzip(path) or is_parquet(path) else 1)
        for path in files
    )


def checked_format(channel: str, files: list[Path], declared: DeclaredFormat) -> bool:
    """Whether the channel is Parquet, after checking its files against what inputdataconfig.json declares."""
    parquet = [path for path in files if is_parquet(path)]
    if declared.content_type == PARQUET_CONTENT_TYPE:
        for path in files:
            if path not in parquet:
                gzipped = " (it is gzip-compressed: give Parquet files uncompressed)" if is_gzip(path) else ""
                raise TrainingInputError(
                    f"channel {channel!r}: ContentType is {PARQUET_CONTENT_TYPE} but {path.name} is not a "
                    f"Parquet file{gzipped}"
                )
    elif parquet and (declared.content_type == CSV_CONTENT_TYPE or len(parquet) < len(files)):
        said = "ContentType is text/csv" if declared.content_type else "the channel's other files are CSV"
        raise TrainingInputError(
            f"channel {channel!r}: {parquet[0].name} is a Parquet file but {said}; "
            f"a Parquet channel has only Parquet files and ContentType {PARQUET_CONTENT_TYPE}"
        )
    if declared.compression == GZIP_COMPRESSION:
        for path in files:
            if not is_gzip(path):
                raise TrainingInputError(
                    f"channel {channel!r}: CompressionType is Gzip but {path.name} is not gzip-compressed"
                )
    return bool(parquet)


def read_header(path: Path, channel: str) -> list[str]:
    """A CSV file's header, the file plain or gzip-compressed."""
    try:
        opener = gzip.open if is_gzip(path) else open
        with opener(path, "rt", encoding="utf-8", newline="") as text:
            header = [name.strip() for name in next(csv.reader(text), [])]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise TrainingInputError(
            f"channel {channel!r}: cannot read the CSV header of {path.name}: {error}"
        ) from None
    if not any(header):
        raise TrainingInputError(
            f"channel {channel!r}: {path.name} is empty: its first line must be the CSV header"
        )
    return header


def import_frame(files: list[Path], channel: str, csv_column_types: dict[str, str] | None) -> h2o.H2OFrame:
    """Parse the files into one frame: CSV with a header (gzip-compressed or not: H2O tells by the first bytes)
    when `csv_column_types` is given, its columns parsed with those types, else Parquet. Parquet columns keep
    their schema's types (H2O refuses to read a number as a category), so callers convert those afterwards."""
    try:
        frame = h2o.import_file(
            path=[str(path) for path in files],
            header=1 if csv_column_types is not None else 0,
            col_types=csv_column_types or None,
            destination_frame=channel,
        )
    except (H2OResponseError, H2OServerError) as error:
        reason = " ".join(str(getattr(error.args[0], "msg", error)).split()) if error.args else str(error)
        raise TrainingInputError(f"channel {channel!r}: H2O cannot parse the files: {reason}") from None
    if frame.nrows == 0:
        raise TrainingInputError(f"channel {channel!r} has a header but no rows")
    return frame


def _check_columns(hyperparameters: Hyperparameters, columns: list[str]) -> None:
    known = set(columns)
    if hyperparameters.target not in known:
        raise TrainingInputError(
            f"target {hyperparameters.target!r} is not a column of the training data (columns: {', '.join(columns)})"
        )
    for setting in ("ignored_columns", "categorical_columns"):
        missing = [name for name in getattr(hyperparameters, setting) if name not in known]
        if missing:
            raise TrainingInputError(f"{setting}: no such column {missing[0]!r} in the training data")
    if hyperparameters.target in hyperparameters.ignored_columns:
        raise TrainingInputError(f"ignored_columns must not contain the target {hyperparameters.target!r}")
    if (
        hyperparameters.classification is False
        and hyperparameters.target in hyperparameters.categorical_columns
    ):
        raise TrainingInputError(
            f"classification is false but the target {hyperparameters.target!r} is in categorical_columns"
        )


def _check_validation_columns(
    hyperparameters: Hyperparameters, training: list[str], validation: list[str]
) -> None:
    """The validation channel may lack ignored columns, not others."""
    present = set(validation)
    missing = [
        name for name in training if name not in present and name not in hyperparameters.ignored_columns
    ]
    if missing:
        raise TrainingInputError(f"channel {VALIDATION_CHANNEL!r} lacks the training column {missing[0]!r}")


def _categorical(hyperparameters: Hyperparameters, columns: list[str]) -> list[str]:
    """The columns parsed as categories: categorical_columns, and the target of a classification."""
    wanted = [*hyperparameters.categorical_columns]
    if hyperparameters.classification:
        wanted.append(hyperparameters.target)
    return [name for name in columns if name in wanted]  # a validation channel may lack ignored columns


def _as_categories(frame: h2o.H2OFrame, names: list[str]) -> h2o.H2OFrame:
    """Parquet columns H2O did not read as categories, converted (one expression, evaluated once)."""
    for name in names:
        if frame.types[name] != "enum":
            frame[name] = frame[name].asfactor()
    return frame


def _check_training_values(frame: h2o.H2OFrame, hyperparameters: Hyperparameters) -> None:
    """Columns H2O would fail on obscurely (an empty target) or drop silently (an empty feature).

    From the column summary H2O returned with the parsed frame: no further call to H2O."""
    summary = frame.get_summary()
    rows, target = frame.nrows, hyperparameters.target
    column = summary[target]
    if column["missing_count"] == rows:
        raise TrainingInputError(
            f"channel {TRAINING_CHANNEL!r}: the target {target!r} has no values (all {rows} rows are missing)"
        )
    empty = [
        name
        for name, stats in summary.items()
        if stats["missing_count"] == rows and name != target and name not in hyperparameters.ignored_columns
    ]
    if empty:
        raise TrainingInputError(
            f"channel {TRAINING_CHANNEL!r}: column {empty[0]!r} has no values (all {rows} rows are "
            "missing); fix the data or list it in ignored_columns"
        )
    if hyperparameters.classification is False and column["type"] not in ("int", "real"):
        raise TrainingInputError(
            f"channel {TRAINING_CHANNEL!r}: classification is false but the target {target!r} is not numeric"
        )
    if column["type"] == "enum":
        classes = column["domain"]
        if len(classes) < 2:
            raise TrainingInputError(
                f"channel {TRAINING_CHANNEL!r}: the target {target!r} has one class ({classes[0]!r}); "
                "classification needs at least two"
            )
    elif column["mins"] and column["maxs"] and column["mins"][0] == column["maxs"][0]:
        value = column["mins"][0]
        shown = int(value) if float(value).is_integer() else value
        raise TrainingInputError(
            f"channel {TRAINING_CHANNEL!r}: the target {target!r} has one value ({shown}); "
            "regression needs it to vary"
        )


def _fingerprint(channels: list[ChannelFiles], env: Environment) -> str:
    listing = [
        [channel.name, str(path.relative_to(env.channel_dir(channel.name))), path.stat().st_size]
        for channel in channels
        for path in channel.files
    ]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


@dataclass(frozen=True)
class Channels:
    """The channels' files, checked before the JVM starts so bad input fails in well under a second (a Parquet
    channel's columns are checked once H2O has read its schema)."""

    training: ChannelFiles
    validation: ChannelFiles | None
    fingerprint: str
    """Changes when any channel file is added, removed or resized: a checkpoint only fits the same data."""

    @property
    def csv_bytes(self) -> int:
        return sum(channel.csv_bytes for channel in (self.training, self.validation) if channel is not None)


def _channel(env: Environment, name: str, declared: DeclaredFormat) -> ChannelFiles | None:
    files = channel_files(env, name)
    if not files:
        return None
    parquet = checked_format(name, files, declared)
    return ChannelFiles(name, files, parquet, None if parquet else read_header(files[0], name))


def find_channels(env: Environment, hyperparameters: Hyperparameters) -> Channels:
    declared = read_input_data_config(env)
    training = _channel(env, TRAINING_CHANNEL, declared.get(TRAINING_CHANNEL, DeclaredFormat()))
    if training is None:
        raise TrainingInputError(
            f"the required channel {TRAINING_CHANNEL!r} is missing: no folder {env.channel_dir(TRAINING_CHANNEL)}"
        )
    if training.header is not None:
        _check_columns(hyperparameters, training.header)
    validation = _channel(env, VALIDATION_CHANNEL, declared.get(VALIDATION_CHANNEL, DeclaredFormat()))
    if validation is not None and training.header is not None and validation.header is not None:
        _check_validation_columns(hyperparameters, training.header, validation.header)
    present = [channel for channel in (training, validation) if channel is not None]
    return Channels(training, validation, _fingerprint(present, env))


def _load_training(channel: ChannelFiles, hyperparameters: Hyperparameters) -> h2o.H2OFrame:
    if channel.header is not None:  # CSV: the categories parsed as such, no conversion afterwards
        column_types = {name: "enum" for name in _categorical(hyperparameters, channel.header)}
        return import_frame(channel.files, channel.name, column_types)
    frame = import_frame(channel.files, channel.name, csv_column_types=None)
    _check_columns(hyperparameters, frame.names)
    return _as_categories(frame, _categorical(hyperparameters, frame.names))


def _load_validation(
    channel: ChannelFiles, training: h2o.H2OFrame, hyperparameters: Hyperparameters
) -> h2o.H2OFrame:
    """Parsed like training, so a column is never numeric in one and categorical in the other."""
    training_types = training.types
    if channel.header is not None:
        _check_validation_columns(hyperparameters, training.names, channel.header)  # training may be Parquet
        column_types = {name: training_types[name] for name in channel.header if name in training_types}
        return import_frame(channel.files, channel.name, column_types)
    frame = import_frame(channel.files, channel.name, csv_column_types=None)
    _check_validation_columns(hyperparameters, training.names, frame.names)
    for name in frame.names:
        if training_types.get(name) in ("int", "real") and frame.types[name] not in ("int", "real"):
            raise TrainingInputError(
                f"channel {VALIDATION_CHANNEL!r}: column {name!r} is {frame.types[name]} but numeric in the "
                "training channel"
            )
    enums = [name for name in frame.names if training_types.get(name) == "enum"]
    return _as_categories(frame, enums)


def load_training_data(channels: Channels, hyperparameters: Hyperparameters) -> TrainingData:
    training = _load_training(channels.training, hyperparameters)
    columns = list(training.names)
    validation = None
    if channels.validation is not None:
        validation = _load_validation(channels.validation, training, hyperparameters)
    _check_training_values(training, hyperparameters)

    target = hyperparameters.target
    return TrainingData(
        training=training,
        validation=validation,
        target=target,
        input_columns=[name for name in columns if name != target],
        feature_columns=[
            name for name in columns if name != target and name not in hyperparameters.ignored_columns
        ],
    )
