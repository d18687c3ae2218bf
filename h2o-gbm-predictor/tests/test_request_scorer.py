"""The one-call Java path (RequestScorer) against the Python path it stands in for, in this process.

For any body, RequestScorer must either give the very bytes the Python path (RequestDecoder, Scorer.score,
ResponseEncoder) gives, or hand the request back (None); it must hand back every request the Python path refuses,
since only the Python path words errors. The request shapes clients send must take the one-call path.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import jpype
import orjson
import pytest
from h2o_gbm_predictor.app import LoadedModel, load_model
from h2o_gbm_predictor.environment import Environment
from h2o_gbm_predictor.formats import FORMAT_CODES, RequestError
from h2o_gbm_predictor.scorer import InvalidCell
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from titanic_columns import INPUT_COLUMNS, KNOWN_COLUMNS

pytestmark = pytest.mark.h2o

VALIDATION_CSV = Path(__file__).resolve().parents[2] / "examples" / "validation.csv"
MEDIA_TYPES = ["application/json", "application/jsonlines", "text/csv"]


@pytest.fixture(scope="module")
def model(titanic_base_dir: Path, helper_dir: Path) -> Iterator[LoadedModel]:
    yield load_model(
        Environment.from_env(
            {
                "SAGEMAKER_BASE_DIR": str(titanic_base_dir),
                "H2O_GBM_PREDICTOR_HELPER_DIR": str(helper_dir),
                "H2O_GBM_PREDICTOR_JVM_HEAP": "256m",
            }
        )
    )


def python_answer(model: LoadedModel, body: bytes, content_type: str, accept: str) -> bytes | None:
    """The Python path's response body, or None when it refuses the request."""
    try:
        cells = model.decoder.decode(content_type, body)
        batch = model.scorer.score(cells.text, cells.row_count)
    except (RequestError, InvalidCell):
        return None
    return model.encoder.encode(accept, batch)


def one_call_answer(model: LoadedModel, body: bytes, content_type: str, accept: str) -> bytes | None:
    return model.request_scorer.invoke(body, FORMAT_CODES[content_type], FORMAT_CODES[accept])


def assert_answers_alike(model: LoadedModel, body: bytes, content_type: str, accept: str) -> bool:
    """True when the one-call path answered (and answered exactly as the Python path does)."""
    expected = python_answer(model, body, content_type, accept)
    answer = one_call_answer(model, body, content_type, accept)
    if answer is not None:
        assert expected is not None, f"the Python path refuses {body!r}, the one-call path answered"
        assert answer == expected
    return answer is not None


def csv_text(rows: list[list[str]], terminator: str = "\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator).writerows(rows)
    return buffer.getvalue()


def client_bodies() -> dict[str, tuple[str, bytes]]:
    """The request shapes clients send, over the validation rows, plus typed and unknown values."""
    with VALIDATION_CSV.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    inputs = [{name: record[name] for name in INPUT_COLUMNS} for record in records]
    odd_values = [
        {"Pclass": 3, "Sex": "male", "Age": 22, "Fare": 7.25, "Embarked": None},
        {"Pclass": 3.0, "Age": -0, "SibSp": 1e-3, "Parch": -2.5e-7, "Fare": 1e16, "Embarked": 'X\u00e9"\\'},
        {
            "Pclass": "9",
            "Sex": "m\u2028\x01\x7f\U0001f600",
            "Embarked": "Atlantis",
            "Age": " 22 ",
            "Fare": "NA",
        },
        {},
    ]
    return {
        "csv with header and target": ("text/csv", VALIDATION_CSV.read_bytes()),
        "csv without header": ("text/csv", csv_text([list(row.values()) for row in inputs]).encode()),
        "csv with CRLF and a header subset": (
            "text/csv",
            csv_text([["Sex", "Age"], *[[row["Sex"], row["Age"]] for row in inputs]], "\r\n").encode(),
        ),
        "json list of records": ("application/json", json.dumps(records).encode()),
        "json instances": ("application/json", json.dumps({"instances": inputs}).encode()),
        "json value lists": (
            "application/json",
            json.dumps({"instances": [list(row.values()) for row in inputs]}).encode(),
        ),
        "json one record": ("application/json", json.dumps(inputs[0]).encode()),
        "json typed and unknown values": ("application/json", json.dumps(odd_values).encode()),
        "jsonlines": ("application/jsonlines", "\n".join(map(json.dumps, inputs)).encode()),
        "jsonlines typed and unknown values": (
            "application/jsonlines",
            "\r\n".join(json.dumps(row, ensure_ascii=False) for row in odd_values).encode(),
        ),
    }


@pytest.mark.parametrize("accept", MEDIA_TYPES)
@pytest.mark.parametrize("shape", list(client_bodies()))
def test_what_clients_send_takes_the_one_call_path(model: LoadedModel, shape: str, accept: str) -> None:
    content_type, body = client_bodies()[shape]
    assert assert_answers_alike(model, body, content_type, accept), "handed back to the Python path"


def test_a_response_larger_than_the_output_buffer(model: LoadedModel) -> None:
    body = csv_text(
        [
            INPUT_COLUMNS,
            *[
                ["1", "3", "A, B", "male", str(row % 80), "0", "0", "T", "7.25", "", "X"]
                for row in range(20_000)
            ],
        ]
    )
    assert assert_answers_alike(model, body.encode(), "text/csv", "application/json")
    assert assert_answers_alike(model, b"Age\n1\n", "text/csv", "text/csv")


def test_doubles_are_written_as_repr_and_orjson_write_them() -> None:
    """Ryu's digits and both layouts, over every power of two and ten and random doubles of every magnitude."""
    generator = random.Random(15)
    values = [0.0, -0.0, 0.1, 0.5, 1 / 3, 1e-5, 1e-4, 1e15, 1e16, 5e-324, 1.7976931348623157e308, 1e23]
    values += [2.0**exponent for exponent in range(-1074, 1024)] + [10.0**e for e in range(-323, 309)]
    values += [generator.random() for _ in range(50_000)]
    values += [generator.random() * 10 ** generator.randint(-40, 40) for _ in range(50_000)]
    for _ in range(100_000):
        value = struct.unpack("<d", generator.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            values.append(value)
    decimals = jpype.JClass("h2ogbmpredictor.Decimals")
    array = jpype.JArray(jpype.JDouble)(values)
    assert str(decimals.formatAll(array, False)).splitlines() == list(map(repr, values))
    assert str(decimals.formatAll(array, True)).splitlines() == [
        orjson.dumps(value).decode() for value in values
    ]


# Bodies near the contract: mostly well formed, with the cells and the syntax the parsers must agree on.
CELLS = st.sampled_from(
    ["", "1", "3", "22", "7.25", "0", "male", "female", "S", "C", "Q", "Smith, Mr. A", "NA", " NA ", "nan"]
) | st.sampled_from(
    [
        "Infinity", "1e309", "-1e-400", "-0", "+5", "0x1p3", "22d", " 3 ", "3.", ".5", "1_000", "1e5", "1E+05",
        "\x1f", '"', '""', ",", "\n", "\r", "\r\n", "\x00", "\t7\t", "\x0b", "\u00e9", "\u2028", "\u00a022", "9" * 30,
        "\ufeff", "12345678901234567890", "0.30000000000000004", "1.7976931348623157e308",
    ]
) | st.text(max_size=8)  # fmt: skip
COLUMNS = st.sampled_from(KNOWN_COLUMNS) | st.sampled_from(["instances", "Agee", "age", ""])
JSON_NUMBERS = st.sampled_from(
    ["0", "-0", "22", "-1", "7.25", "1e5", "1E-2", "-0.0", "1e400", "-1e400", "1e-400", "123456789012345678",
     "1234567890123456789", "12345678901234567890123", "0.1e1", "3.0", "01", "1.", ".5", "+1", "--1", "1e", "NaN"]
)  # fmt: skip
JSON_STRINGS = CELLS.map(lambda text: json.dumps(text, ensure_ascii=False)) | st.sampled_from(
    ['"\\u0041ge"', '"\\ud83d\\ude00"', '"\\ud800"', '"a\\/b"', '"\\u001f"', '"\\x41"', '"tab\there"', '"\\u00e9"']
)  # fmt: skip
JSON_SCALARS = JSON_NUMBERS | JSON_STRINGS | st.sampled_from(["null", "true", "false", "nul"])
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(COLUMNS.map(json.dumps), children), max_size=3).map(
            lambda pairs: "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"
        )
    ),
    max_leaves=6,
)
SPACE = st.sampled_from(["", " ", "\n", "\t", "\r\n", "\x0c"])


@st.composite
def json_records(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        pairs = draw(st.lists(st.tuples(COLUMNS, JSON_SCALARS | JSON_VALUES), max_size=8))
        space = draw(SPACE)
        return "{" + ",".join(f"{space}{json.dumps(key)}{space}:{value}" for key, value in pairs) + "}"
    size = draw(st.sampled_from([len(INPUT_COLUMNS)]) | st.integers(0, 13))
    return "[" + ",".join(draw(st.lists(JSON_SCALARS | JSON_VALUES, min_size=size, max_size=size))) + "]"


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    records = draw(st.lists(json_records(), max_size=4))
    space = draw(SPACE)
    document = draw(
        st.sampled_from(
            [
                "[" + f",{space}".join(records) + "]",
                '{"instances": [' + ",".join(records) + "]}",
                records[0] if records else "{}",
                '{"instances": [' + ",".join(records) + '], "Age": 1}',
                "[" + ",".join(records) + ",]",
            ]
        )
    )
    return (draw(SPACE) + document + draw(SPACE)).encode()


@st.composite
def json_lines_bodies(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(json_records() | JSON_VALUES | st.just(""), max_size=5))
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines).encode()


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    header = draw(st.none() | st.lists(COLUMNS, min_size=1, max_size=12))
    width = len(header) if header else draw(st.sampled_from([len(INPUT_COLUMNS)]) | st.integers(1, 12))
    rows = draw(
        st.lists(st.lists(CELLS, min_size=width, max_size=width) | st.lists(CELLS, max_size=12), max_size=5)
    )
    text = csv_text(([header] if header else []) + rows, draw(st.sampled_from(["\n", "\r\n"])))
    # Also raw text the csv module did not write: stray quotes, bare CRs, blank lines, no final newline.
    mangle = draw(st.sampled_from(["", "strip", '"', "\r", "\n\n", 'x"y', '"a"b']))
    if mangle == "strip":
        text = text.rstrip("\r\n")
    elif mangle and text:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + mangle + text[at:]
    return text.encode()


PLAUSIBLE_CELLS = st.sampled_from(["", "1", "3", "22", "7.25", "-0.5", "0", "male", "female", "S", "C", "X"])


@st.composite
def well_formed_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """Known columns with mostly plausible values, in every shape: most of these are scored."""
    columns = draw(st.lists(st.sampled_from(KNOWN_COLUMNS), min_size=1, unique=True))
    cells = PLAUSIBLE_CELLS | PLAUSIBLE_CELLS | PLAUSIBLE_CELLS | CELLS
    rows = draw(
        st.lists(st.lists(cells, min_size=len(columns), max_size=len(columns)), min_size=1, max_size=4)
    )
    shape = draw(st.sampled_from(["csv", "headerless csv", "json", "instances", "value lists", "jsonlines"]))
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if shape == "csv":
        return csv_text([columns, *rows]).encode(), "text/csv"
    if shape == "headerless csv":
        values = [[record.get(name, "") for name in INPUT_COLUMNS] for record in records]
        return csv_text(values, draw(st.sampled_from(["\n", "\r\n"]))).encode(), "text/csv"
    numbers = draw(st.booleans())  # numeric-looking strings sent as JSON numbers
    for record in records:
        for name, value in record.items():
            if numbers and re.fullmatch(r"-?[0-9]+", value):
                record[name] = int(value)
            elif numbers and re.fullmatch(r"-?[0-9]+\.[0-9]+", value):
                record[name] = float(value)
    ascii_only = draw(st.booleans())
    if shape == "value lists":
        lists = [[record.get(name) for name in INPUT_COLUMNS] for record in records]
        return json.dumps({"instances": lists}, ensure_ascii=ascii_only).encode(), "application/json"
    if shape == "jsonlines":
        return "\n".join(
            json.dumps(r, ensure_ascii=ascii_only) for r in records
        ).encode(), "application/jsonlines"
    document = records if shape == "json" else {"instances": records}
    return json.dumps(document, ensure_ascii=ascii_only).encode(), "application/json"


BODIES = st.one_of(
    well_formed_bodies(),
    well_formed_bodies(),
    well_formed_bodies(),
    st.tuples(csv_bodies(), st.just("text/csv")),
    st.tuples(json_bodies(), st.just("application/json")),
    st.tuples(json_lines_bodies(), st.just("application/jsonlines")),
    st.tuples(st.binary(max_size=200), st.sampled_from(MEDIA_TYPES)),
    st.tuples(csv_bodies() | json_bodies(), st.sampled_from(MEDIA_TYPES)),
)
DIFFERENTIAL_SETTINGS = settings(
    max_examples=1500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@DIFFERENTIAL_SETTINGS
@given(request=BODIES, accept=st.sampled_from(MEDIA_TYPES))
def test_the_one_call_path_answers_as_the_python_path_or_hands_back(
    model: LoadedModel, request: tuple[bytes, str], accept: str
) -> None:
    body, content_type = request
    assert_answers_alike(model, body, content_type, accept)
