"""Request decoding (CSV, JSON, JSON Lines) into scorer cells, and prediction encoding into the same three formats."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import orjson

from h2o_gbm_predictor.environment import SUPPORTED_ACCEPTS
from h2o_gbm_predictor.metadata import ModelMetadata
from h2o_gbm_predictor.scorer import CELL_SEPARATOR, ResponseFragments, ScoredBatch

CSV = "text/csv"
JSON = "application/json"
JSON_LINES = "application/jsonlines"
UNKNOWN_LEVELS = "unknown_categorical_levels"
CONTRIBUTIONS = "contributions"
# SageMaker passes InvokeEndpoint's CustomAttributes to the container in this header.
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
# How RequestScorer.java numbers the formats (its JSON, JSON_LINES and CSV constants).
FORMAT_CODES = {JSON: 0, JSON_LINES: 1, CSV: 2}


class RequestError(Exception):
    """A request the server refuses: answered as JSON {"error": message, "row": row} with ``status``."""

    def __init__(self, status: int, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.row = row

    def body(self) -> bytes:
        return orjson.dumps({"error": self.message, "row": self.row})


@dataclass(frozen=True)
class Cells:
    """Rows ready for the scorer: every cell followed by CELL_SEPARATOR, features in the model's order."""

    text: str
    row_count: int


def _media_type(header: str) -> tuple[str, dict[str, str]]:
    media_type, *parameters = header.split(";")
    params = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        params[name.strip().lower()] = value.strip().strip('"').lower()
    return media_type.strip().lower(), params


def content_type_of(header: str | None) -> str:
    """The supported request format named by a Content-Type header, or a 415 RequestError."""
    supported = ", ".join(SUPPORTED_ACCEPTS)
    if not header:
        raise RequestError(415, f"missing Content-Type; use one of {supported}")
    media_type, params = _media_type(header)
    if media_type not in SUPPORTED_ACCEPTS:
        raise RequestError(415, f"Content-Type {media_type!r} is not supported; use one of {supported}")
    if params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise RequestError(415, f"charset {params['charset']!r} is not supported; send UTF-8")
    return media_type


def accept_of(header: str | None, default: str) -> str:
    """The response format an Accept header asks for (highest q first), or a 406 RequestError."""
    if not header or not header.strip():
        return default
    choices = []
    for position, item in enumerate(header.split(",")):
        media_type, params = _media_type(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            choices.append((-quality, position, media_type))
    wildcards = {"*/*": default, "text/*": CSV, "application/*": default if default != CSV else JSON}
    for _, _, media_type in sorted(choices):
        if media_type in SUPPORTED_ACCEPTS:
            return media_type
        if media_type in wildcards:
            return wildcards[media_type]
    raise RequestError(406, f"Accept {header!r} is not supported; use one of {', '.join(SUPPORTED_ACCEPTS)}")


def _picker(positions: Sequence[int]) -> Callable[[Sequence[str]], tuple[str, ...]]:
    if len(positions) == 1:
        (position,) = positions
        return lambda row: (row[position],)
    return itemgetter(*positions)


class RequestDecoder:
    """Turns a request body into scorer cells for one model, naming the 1-based row of any bad input."""

    def __init__(self, metadata: ModelMetadata) -> None:
        self._input_columns = metadata.input_columns
        self._feature_names = tuple(feature.name for feature in metadata.features)
        self._known_columns = frozenset((*metadata.input_columns, metadata.target))
        positions = {name: index for index, name in enumerate(metadata.input_columns)}
        self._headerless_picker = _picker([positions[name] for name in self._feature_names])

    def decode(self, content_type: str, body: bytes) -> Cells:
        if not body.strip():
            raise RequestError(400, "empty request body: send at least one row")
        if content_type == CSV:
            rows = self._csv_cells(self._text(body))
        elif content_type == JSON:
            rows = self._json_cells(body)
        else:
            rows = self._json_lines_cells(body)
        if not rows:
            raise RequestError(400, "no rows to score")
        text = CELL_SEPARATOR.join(chain.from_iterable(rows)) + CELL_SEPARATOR
        if text.count(CELL_SEPARATOR) != len(rows) * len(self._feature_names):
            raise RequestError(400, "the control character U+001F is not allowed in values")
        return Cells(text=text, row_count=len(rows))

    @staticmethod
    def _text(body: bytes) -> str:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RequestError(400, f"request body is not valid UTF-8 (byte {error.start})") from None

    def _check_columns(self, names: Iterable[str], row: int | None, where: str) -> None:
        unknown = [name for name in names if name not in self._known_columns]
        if unknown:
            raise RequestError(
                400,
                f"unknown column(s) {', '.join(map(repr, unknown))} in {where}; the model knows {', '.join(self._input_columns)}",
                row,
            )

    # CSV ---------------------------------------------------------------------------------------------------
    def _csv_cells(self, text: str) -> list[tuple[str, ...]]:
        records: list[list[str]] = []
        try:
            records.extend(record for record in csv.reader(io.StringIO(text), strict=True) if record)
        except csv.Error as error:
            row = len(records) + (0 if records and self._is_header(records[0]) else 1)
            raise RequestError(400, f"malformed CSV: {error}", row) from None
        if not records:
            return []
        first = records[0]
        if self._is_header(first):
            return self._csv_with_header(first, records[1:])
        self._check_field_counts(
            records, len(self._input_columns), f"one per input column ({', '.join(self._input_columns)})"
        )
        return list(map(self._headerless_picker, records))

    def _is_header(self, record: list[str]) -> bool:
        return any(field in self._known_columns for field in record)

    def _csv_with_header(self, header: list[str], records: list[list[str]]) -> list[tuple[str, ...]]:
        self._check_columns(header, None, "the CSV header")
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise RequestError(
                400, f"duplicate column(s) {', '.join(map(repr, duplicates))} in the CSV header"
            )
        self._check_field_counts(records, len(header), "as many as the header has")
        positions = {name: index for index, name in enumerate(header)}
        absent = len(header)
        if any(name not in positions for name in self._feature_names):
            # Features left out of the header are missing values: give every record an empty last field.
            records = [[*record, ""] for record in records]
        picker = _picker([positions.get(name, absent) for name in self._feature_names])
        return list(map(picker, records))

    @staticmethod
    def _check_field_counts(records: list[list[str]], expected: int, expectation: str) -> None:
        for row, record in enumerate(records, start=1):
            if len(record) != expected:
                raise RequestError(
                    400, f"row has {len(record)} fields, expected {expected}: {expectation}", row
                )

    # JSON --------------------------------------------------------------------------------------------------
    def _json_cells(self, body: bytes) -> list[tuple[str, ...]]:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise RequestError(400, f"malformed JSON: {error}") from None
        if isinstance(document, dict) and set(document) == {"instances"}:
            document = document["instances"]
            if not isinstance(document, list):
                raise RequestError(400, '"instances" must be a list of records')
        records = document if isinstance(document, list) else [document]
        return [self._record_cells(record, row) for row, record in enumerate(records, start=1)]

    def _json_lines_cells(self, body: bytes) -> list[tuple[str, ...]]:
        cells: list[tuple[str, ...]] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            row = len(cells) + 1
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise RequestError(400, f"malformed JSON line: {error}", row) from None
            cells.append(self._record_cells(record, row))
        return cells

    def _record_cells(self, record: Any, row: int) -> tuple[str, ...]:
        if isinstance(record, dict):
            self._check_columns(record, row, "the record")
            return tuple(_cell(record.get(name), name, row) for name in self._feature_names)
        if isinstance(record, list):
            if len(record) != len(self._input_columns):
                raise RequestError(
                    400,
                    f"record has {len(record)} values, expected {len(self._input_columns)}: one per input column ({', '.join(self._input_columns)})",
                    row,
                )
            values = dict(zip(self._input_columns, record, strict=True))
            return tuple(_cell(values[name], name, row) for name in self._feature_names)
        raise RequestError(
            400, f"a record must be a JSON object (or a list of values), got {type(record).__name__}", row
        )


def _cell(value: Any, column: str, row: int) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if type(value) in (int, float):
        return repr(value)
    raise RequestError(
        400, f"column {column} expects a number, a string or null, got {orjson.dumps(value).decode()}", row
    )


class ResponseEncoder:
    """Encodes scored rows; every format carries the same fields under the same names.

    Without `csv_header` (batch transform), CSV is one line per row and nothing else, so the responses to a job's
    mini-batches join into one file with a line per input record.
    """

    def __init__(self, metadata: ModelMetadata, csv_header: bool = True) -> None:
        self._classes = metadata.target_domain
        if self._classes is None:
            self._output_columns = ["value"]
        else:
            self._output_columns = ["label", *(f"probability_{label}" for label in self._classes)]
            self._csv_labels = [_csv_field(label) for label in self._classes]
        self._with_csv_header = csv_header
        self._csv_header = self._header(())

    def _header(self, contributions: tuple[str, ...]) -> str:
        """The CSV header line: the outputs, a column per contribution, then the unknown levels ("" in batch)."""
        if not self._with_csv_header:
            return ""
        columns = [*self._output_columns, *(f"contribution_{name}" for name in contributions), UNKNOWN_LEVELS]
        return ",".join(map(_csv_field, columns)) + "\n"

    def fragments(self) -> ResponseFragments:
        """What RequestScorer.java writes around the numbers and levels, taken from this encoder's own output."""
        classes = self._classes or ()
        return ResponseFragments(
            csv_header=self._csv_header.encode(),
            csv_labels=tuple(label.encode() for label in (self._csv_labels if classes else [])),
            json_row_prefixes=tuple(
                b'{"label":' + orjson.dumps(label) + b',"probabilities":{' for label in classes
            ),
            json_probability_keys=tuple(orjson.dumps(label) + b":" for label in classes),
        )

    def encode(self, accept: str, batch: ScoredBatch) -> bytes:
        if accept == CSV:
            return self._csv(batch).encode()
        predictions = self._objects(batch)
        if accept == JSON:
            return orjson.dumps({"predictions": predictions})
        return b"\n".join(map(orjson.dumps, predictions)) + b"\n"

    def _objects(self, batch: ScoredBatch) -> list[dict[str, Any]]:
        values, width, names = batch.values, batch.width, batch.contributions
        outputs = width - len(names)
        if self._classes is None:
            predictions: list[dict[str, Any]] = [
                {"value": values[start]} for start in range(0, len(values), width)
            ]
        else:
            classes = self._classes
            predictions = [
                {
                    "label": classes[int(values[start])],
                    "probabilities": dict(zip(classes, values[start + 1 : start + outputs], strict=True)),
                }
                for start in range(0, len(values), width)
            ]
        if names:
            for prediction, start in zip(predictions, range(outputs, len(values), width), strict=True):
                prediction[CONTRIBUTIONS] = dict(zip(names, values[start : start + len(names)], strict=True))
        for row, levels in batch.unknown_levels.items():
            predictions[row][UNKNOWN_LEVELS] = levels
        return predictions

    def _csv(self, batch: ScoredBatch) -> str:
        values, width, unknown = batch.values, batch.width, batch.unknown_levels
        texts = list(map(repr, values))  # one C-level pass: per-row repr calls dominated the CSV encoding
        if self._classes is None:
            rows = [f"{','.join(texts[start : start + width])}," for start in range(0, len(values), width)]
        else:
            labels = self._csv_labels
            rows = [
                f"{labels[int(values[start])]},{','.join(texts[start + 1 : start + width])},"
                for start in range(0, len(values), width)
            ]
        for row, levels in unknown.items():
            rows[row] += _csv_field(orjson.dumps(levels).decode())
        header = self._header(batch.contributions) if batch.contributions else self._csv_header
        return header + "\n".join(rows) + "\n"


def contributions_asked(custom_attributes: str) -> bool | None:
    """What InvokeEndpoint's CustomAttributes (``key=value`` pairs separated by ``;``, other keys ignored, as
    other tools may set their own) say of each row's feature contributions: ``contributions=true`` or ``false``;
    None when they do not say."""
    for attribute in custom_attributes.split(";"):
        key, equals, value = attribute.partition("=")
        if key.strip().lower() != CONTRIBUTIONS:
            continue
        answer = value.strip().lower()
        if not equals or answer not in ("true", "false"):
            raise RequestError(
                400, f"custom attribute contributions must be true or false, got '{attribute.strip()}'"
            )
        return answer == "true"
    return None


def _csv_field(value: str) -> str:
    if any(character in value for character in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
