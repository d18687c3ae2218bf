"""Find the channels' files, check them against the hyperparameters, and load them as H2O frames."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h2o
from h2o.exceptions import H2OResponseError, H2OServerError

from .environment import CHANNELS, TRAINING_CHANNEL, VALIDATION_CHANNEL, Environment
from .errors import TrainingInputError
from .hyperparameters import Hyperparameters


@dataclass(frozen=True)
class TrainingData:
    training: h2o.H2OFrame
    validation: h2o.H2OFrame | None
    target: str
    input_columns: list[str]
    """The training header minus the target: the field order of a header-less scoring request."""
    feature_columns: list[str]
    """What the model is offered (H2O may still drop constant or string columns)."""


def check_input_data_config(env: Environment) -> None:
    """Optional locally; on SageMaker it declares the channels, which must be ones this trainer knows."""
    if not env.input_data_config_file.is_file():
        return
    try:
        config = json.loads(env.input_data_config_file.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError and too-long integers all are
        raise TrainingInputError(f"input/config/inputdataconfig.json is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise TrainingInputError("input/config/inputdataconfig.json must be a JSON object of channels")
    for channel, settings in config.items():
        if channel not in CHANNELS:
            raise TrainingInputError(f"unknown channel {channel!r} (accepted: {', '.join(CHANNELS)})")
        settings = settings if isinstance(settings, dict) else {}
        if settings.get("TrainingInputMode", "File") != "File":
            raise TrainingInputError(f"channel {channel!r}: only TrainingInputMode File is supported")
        content_type = settings.get("ContentType", "text/csv")
        if not content_type.lower().startswith("text/csv"):
            raise TrainingInputError(
                f"channel {channel!r}: ContentType must be text/csv, got {content_type!r}"
            )


def channel_files(env: Environment, channel: str) -> list[Path]:
    """Every file under the channel's folder (S3 prefixes may hold several), hidden ones left out.

    An empty list means the channel was not given; a folder without files is an error."""
    folder = env.channel_dir(channel)
    if not folder.is_dir():
        return []
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not files:
        raise TrainingInputError(f"channel {channel!r} has no files in {folder}")
    return files


def _header(path: Path, channel: str) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as csv_file:
            header = [name.strip() for name in next(csv.reader(csv_file), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise TrainingInputError(
            f"channel {channel!r}: cannot read the CSV header of {path.name}: {error}"
        ) from None
    if not any(header):
        raise TrainingInputError(
            f"channel {channel!r}: {path.name} is empty: its first line must be the CSV header"
        )
    return header


def _import(files: list[Path], channel: str, column_types: dict[str, str] | None) -> h2o.H2OFrame:
    try:
        frame = h2o.import_file(
            path=[str(path) for path in files], header=1, col_types=column_types, destination_frame=channel
        )
    except (H2OResponseError, H2OServerError) as error:
        reason = " ".join(str(getattr(error.args[0], "msg", error)).split()) if error.args else str(error)
        raise TrainingInputError(f"channel {channel!r}: H2O cannot parse the CSV files: {reason}") from None
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


def _set_column_types(frame: h2o.H2OFrame, hyperparameters: Hyperparameters, channel: str) -> None:
    # A validation channel may lack ignored columns.
    for name in (name for name in hyperparameters.categorical_columns if name in frame.names):
        frame[name] = frame[name].asfactor()
    target = hyperparameters.target
    if hyperparameters.classification:
        frame[target] = frame[target].asfactor()
    elif hyperparameters.classification is False and not frame[target].isnumeric()[0]:
        raise TrainingInputError(
            f"channel {channel!r}: classification is false but the target {target!r} is not numeric"
        )


def _check_training_values(frame: h2o.H2OFrame, hyperparameters: Hyperparameters) -> None:
    """Columns H2O would fail on obscurely (an empty target) or drop silently (an empty feature)."""
    missing_counts = dict(zip(frame.names, frame.nacnt(), strict=True))
    target = hyperparameters.target
    if missing_counts[target] == frame.nrows:
        raise TrainingInputError(
            f"channel {TRAINING_CHANNEL!r}: the target {target!r} has no values (all {frame.nrows} rows are missing)"
        )
    empty = [
        name
        for name, count in missing_counts.items()
        if count == frame.nrows and name != target and name not in hyperparameters.ignored_columns
    ]
    if empty:
        raise TrainingInputError(
            f"channel {TRAINING_CHANNEL!r}: column {empty[0]!r} has no values (all {frame.nrows} rows are "
            "missing); fix the data or list it in ignored_columns"
        )
    column = frame[target]
    if column.isfactor()[0]:
        classes = column.levels()[0]
        if len(classes) < 2:
            raise TrainingInputError(
                f"channel {TRAINING_CHANNEL!r}: the target {target!r} has one class ({classes[0]!r}); "
                "classification needs at least two"
            )
    elif column.min() == column.max():
        raise TrainingInputError(
            f"channel {TRAINING_CHANNEL!r}: the target {target!r} has one value ({column.min()}); "
            "regression needs it to vary"
        )


def _fingerprint(files_by_channel: dict[str, list[Path]], env: Environment) -> str:
    listing = [
        [channel, str(path.relative_to(env.channel_dir(channel))), path.stat().st_size]
        for channel, files in files_by_channel.items()
        for path in files
    ]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


@dataclass(frozen=True)
class Channels:
    """The channels' files, checked before the JVM starts so bad input fails in well under a second."""

    training: list[Path]
    validation: list[Path]
    fingerprint: str
    """Changes when any channel file is added, removed or resized: a checkpoint only fits the same data."""


def find_channels(env: Environment, hyperparameters: Hyperparameters) -> Channels:
    check_input_data_config(env)
    training_files = channel_files(env, TRAINING_CHANNEL)
    if not training_files:
        raise TrainingInputError(
            f"the required channel {TRAINING_CHANNEL!r} is missing: no folder {env.channel_dir(TRAINING_CHANNEL)}"
        )
    columns = _header(training_files[0], TRAINING_CHANNEL)
    _check_columns(hyperparameters, columns)
    validation_files = channel_files(env, VALIDATION_CHANNEL)
    if validation_files:
        header = _header(validation_files[0], VALIDATION_CHANNEL)
        missing = [
            name for name in columns if name not in header and name not in hyperparameters.ignored_columns
        ]
        if missing:
            raise TrainingInputError(
                f"channel {VALIDATION_CHANNEL!r} lacks the training column {missing[0]!r}"
            )
    files_by_channel = {TRAINING_CHANNEL: training_files, VALIDATION_CHANNEL: validation_files}
    return Channels(training_files, validation_files, _fingerprint(files_by_channel, env))


def load_training_data(channels: Channels, hyperparameters: Hyperparameters) -> TrainingData:
    training = _import(channels.training, TRAINING_CHANNEL, column_types=None)
    columns = list(training.names)
    _check_columns(hyperparameters, columns)
    validation = None
    if channels.validation:
        header = _header(channels.validation[0], VALIDATION_CHANNEL)
        # Parse validation like training, so a column is never numeric in one and categorical in the other.
        parsed_types = {name: kind for name, kind in training.types.items() if name in header}
        validation = _import(channels.validation, VALIDATION_CHANNEL, column_types=parsed_types)
        _set_column_types(validation, hyperparameters, VALIDATION_CHANNEL)
    _set_column_types(training, hyperparameters, TRAINING_CHANNEL)
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
