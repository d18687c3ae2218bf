"""Fuzzing POST /invocations of the real `serve` process: whatever the body and headers, never a 5xx.

Random bytes, CSV-ish and JSON-ish bodies built from the model's own column names (so many reach the scorer),
sent with random Content-Type and Accept headers. A 200 carries the negotiated format; anything else is a JSON
error {"error", "row"} with a 4xx status. The named bad payloads are in test_server.py (BAD_REQUESTS).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from titanic_columns import INPUT_COLUMNS, KNOWN_COLUMNS

if TYPE_CHECKING:
    from conftest import ModelServer

pytestmark = pytest.mark.h2o

COLUMN_NAMES = st.sampled_from(KNOWN_COLUMNS) | st.sampled_from(KNOWN_COLUMNS) | st.text(max_size=8)
MEDIA_TYPES = ["text/csv", "application/json", "application/jsonlines"]
HEADER_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
CONTENT_TYPES = st.sampled_from(
    ["TEXT/CSV; charset=UTF-8", "application/json; charset=latin-1", "application/jsonlines;charset=", "text/plain"]
) | st.sampled_from(MEDIA_TYPES) | HEADER_TEXT  # fmt: skip
ACCEPTS = (
    st.none()
    | st.sampled_from(MEDIA_TYPES)
    | st.sampled_from(
        ["*/*", "text/*", "application/*", "text/csv;q=0", "application/json;q=nan", "application/jsonlines;q=inf, text/csv"]
    )
    | HEADER_TEXT
)  # fmt: skip
# Values the model knows, values that probe the number parser, missing values and CSV quoting, and noise.
PLAUSIBLE_CELLS = st.sampled_from(
    ["", "1", "3", "22", "7.25", "0", "male", "female", "S", "C", "Q", "Smith, Mr. A"]
)
TRICKY_CELLS = st.sampled_from(
    [
        "NA", "nan", "NaN", "Infinity", "-inf", "1e309", "-1e-400", "-0", "0x1p3", "22d", " 3 ", "3.", ".5", "1_000",
        "\x1f", '"', ",", "\n", "\r", "\x00", "\u00e9", "\u2028", "9" * 400,
    ]
)  # fmt: skip
CELLS = PLAUSIBLE_CELLS | PLAUSIBLE_CELLS | TRICKY_CELLS | st.text(max_size=12) | st.floats().map(repr)
JSON_SCALARS = CELLS | st.none() | st.booleans() | st.integers() | st.floats()
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(COLUMN_NAMES, children, max_size=4),
    max_leaves=12,
)
RECORDS = (
    st.dictionaries(COLUMN_NAMES, JSON_SCALARS, max_size=12)
    | st.dictionaries(COLUMN_NAMES, JSON_VALUES, max_size=4)
    | st.lists(JSON_SCALARS, min_size=len(INPUT_COLUMNS), max_size=len(INPUT_COLUMNS))
    | st.lists(JSON_SCALARS, max_size=13)
)


def json_text(value: Any) -> str:
    """JSON as Python writes it, NaN and Infinity included (not valid JSON: the server must refuse them)."""
    return json.dumps(value, ensure_ascii=False)


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    """Mostly well-shaped CSV (a header of known columns, or a row per input column) with random cells."""
    header = draw(
        st.none()
        | st.lists(st.sampled_from(KNOWN_COLUMNS), min_size=1, unique=True)
        | st.lists(COLUMN_NAMES, min_size=1, max_size=13)
    )
    width = len(header) if header else draw(st.sampled_from([len(INPUT_COLUMNS)]) | st.integers(1, 13))
    rows = draw(
        st.lists(st.lists(CELLS, min_size=width, max_size=width) | st.lists(CELLS, max_size=13), max_size=6)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerows(([header] if header else []) + rows)
    return buffer.getvalue().encode()


JSON_BODIES = st.one_of(
    RECORDS.map(json_text),
    st.lists(RECORDS, max_size=6).map(json_text),
    st.lists(RECORDS, max_size=6).map(lambda records: json_text({"instances": records})),
    st.dictionaries(st.sampled_from(["instances", "Age"]), JSON_VALUES, max_size=2).map(json_text),
    JSON_VALUES.map(json_text),
).map(str.encode)


@st.composite
def well_formed_requests(draw: st.DrawFn) -> tuple[bytes, str]:
    """Right shape and Content-Type, random cells: these reach the scorer and its number parser."""
    columns = draw(st.lists(st.sampled_from(KNOWN_COLUMNS), min_size=1, unique=True))
    rows = draw(
        st.lists(st.lists(CELLS, min_size=len(columns), max_size=len(columns)), min_size=1, max_size=5)
    )
    media_type = draw(st.sampled_from(MEDIA_TYPES))
    if media_type == "text/csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([columns, *rows])
        return buffer.getvalue().encode(), media_type
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if media_type == "application/json":
        return json_text(draw(st.sampled_from([records, {"instances": records}]))).encode(), media_type
    return "\n".join(map(json_text, records)).encode(), media_type


JSON_LINES_BODIES = st.lists(RECORDS | JSON_VALUES, max_size=6).map(
    lambda records: "\n".join(map(json_text, records)).encode()
)

FUZZ_SETTINGS = settings(
    max_examples=75,  # per test: 300 requests in all
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def post(titanic_server: ModelServer) -> Iterator[Any]:
    with requests.Session() as session:

        def send(body: bytes, content_type: str, accept: str | None) -> requests.Response:
            headers = {"Content-Type": content_type} | ({"Accept": accept} if accept is not None else {})
            return session.post(f"{titanic_server.url}/invocations", data=body, headers=headers, timeout=30)

        yield send


def check_answer(response: requests.Response, accept: str | None) -> None:
    assert response.status_code < 500, response.text
    content_type = response.headers["Content-Type"]
    if response.status_code == 200:
        assert content_type in MEDIA_TYPES
        if accept in MEDIA_TYPES:
            assert content_type == accept
        return
    assert response.status_code in (400, 406, 413, 415), response.text
    assert content_type == "application/json"
    error = response.json()
    assert set(error) == {"error", "row"}
    assert isinstance(error["error"], str) and error["error"]
    assert error["row"] is None or (isinstance(error["row"], int) and error["row"] >= 1)


@FUZZ_SETTINGS
@given(body=st.binary(max_size=400), content_type=CONTENT_TYPES, accept=ACCEPTS)
def test_random_bytes_never_get_a_5xx(post, body: bytes, content_type: str, accept: str | None) -> None:
    check_answer(post(body, content_type, accept), accept)


@FUZZ_SETTINGS
@given(body=csv_bodies(), content_type=st.just("text/csv") | CONTENT_TYPES, accept=ACCEPTS)
def test_csv_like_bodies_never_get_a_5xx(post, body: bytes, content_type: str, accept: str | None) -> None:
    check_answer(post(body, content_type, accept), accept)


@FUZZ_SETTINGS
@given(
    body_and_type=st.tuples(JSON_BODIES, st.just("application/json") | CONTENT_TYPES)
    | st.tuples(JSON_LINES_BODIES, st.just("application/jsonlines") | CONTENT_TYPES),
    accept=ACCEPTS,
)
def test_json_like_bodies_never_get_a_5xx(post, body_and_type: tuple[bytes, str], accept: str | None) -> None:
    body, content_type = body_and_type
    check_answer(post(body, content_type, accept), accept)


@FUZZ_SETTINGS
@given(request=well_formed_requests(), accept=ACCEPTS)
def test_well_formed_requests_with_random_values_never_get_a_5xx(
    post, request: tuple[bytes, str], accept: str | None
) -> None:
    body, content_type = request
    check_answer(post(body, content_type, accept), accept)


def test_the_server_still_scores_after_the_fuzz(post, titanic_server: ModelServer) -> None:
    assert requests.get(f"{titanic_server.url}/ping", timeout=5).status_code == 200
    row = (
        Path(__file__)
        .resolve()
        .parents[2]
        .joinpath("examples", "validation.csv")
        .read_text()
        .splitlines()[:2]
    )
    response = post("\n".join(row).encode(), "text/csv", "application/json")
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1
    assert "unexpected error" not in titanic_server.log()
