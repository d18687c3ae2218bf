"""The real `serve` process with a MOJO from the real trainer: the SageMaker contract, every format, bad input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h2o
import pytest
import requests
from h2o_sagemaker_local.opt_ml import lay_out_hosting

if TYPE_CHECKING:
    from conftest import ModelServer

pytestmark = pytest.mark.h2o

VALIDATION_CSV = Path(__file__).resolve().parents[2] / "examples" / "validation.csv"
Prediction = dict[str, Any]


def validation_records() -> list[dict[str, str]]:
    with VALIDATION_CSV.open(newline="") as handle:
        return list(csv.DictReader(handle))


def input_columns(model_dir: Path) -> list[str]:
    return json.loads((model_dir / "model-metadata.json").read_text())["input_columns"]


def h2o_predict_csv(base_dir: Path, output_dir: Path, **options: bool) -> list[dict[str, str]]:
    """H2O's own scoring of the validation rows: its PredictCsv tool on the same MOJO, ``options`` its flags."""
    model_dir = base_dir / "model"
    return h2o.mojo_predict_csv(
        str(VALIDATION_CSV),
        str(model_dir / "model.zip"),
        output_csv_path=str(output_dir / "predictions.csv"),
        genmodel_jar_path=str(model_dir / "h2o-genmodel.jar"),
        **options,
    )


@pytest.fixture(scope="module")
def h2o_predictions(titanic_base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Prediction]:
    """H2O's own predictions for the validation rows."""
    rows = h2o_predict_csv(titanic_base_dir, tmp_path_factory.mktemp("h2o"))
    return [
        {"label": row["predict"], "probabilities": {"0": float(row["p0"]), "1": float(row["p1"])}}
        for row in rows
    ]


def invoke(
    server: ModelServer,
    body: bytes | str,
    content_type: str,
    accept: str | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    sent = {"Content-Type": content_type} | ({"Accept": accept} if accept else {}) | (headers or {})
    data = body.encode() if isinstance(body, str) else body
    return requests.post(f"{server.url}/invocations", data=data, headers=sent, timeout=30)


def parse_predictions(response: requests.Response) -> list[Prediction]:
    """Any of the three response formats, as the same list of prediction objects."""
    assert response.status_code == 200, response.text
    content_type = response.headers["Content-Type"]
    if content_type == "application/json":
        return response.json()["predictions"]
    if content_type == "application/jsonlines":
        return [json.loads(line) for line in response.text.splitlines()]
    assert content_type == "text/csv"
    predictions = []
    for row in csv.DictReader(io.StringIO(response.text)):
        prediction: Prediction = {
            "label": row["label"],
            "probabilities": {"0": float(row["probability_0"]), "1": float(row["probability_1"])},
        }
        if row["unknown_categorical_levels"]:
            prediction["unknown_categorical_levels"] = json.loads(row["unknown_categorical_levels"])
        predictions.append(prediction)
    return predictions


def assert_same_predictions(actual: list[Prediction], expected: list[Prediction]) -> None:
    assert len(actual) == len(expected)
    for row, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        assert got["label"] == want["label"], f"row {row}"
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-12), f"row {row}"
        assert got.get("unknown_categorical_levels") == want.get("unknown_categorical_levels"), f"row {row}"


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def request_bodies(model_dir: Path) -> dict[str, tuple[str, str]]:
    """The validation rows in every accepted request shape: name -> (content type, body)."""
    records = validation_records()
    columns = input_columns(model_dir)
    inputs = [{name: record[name] for name in columns} for record in records]
    return {
        "csv with header and target": ("text/csv", VALIDATION_CSV.read_text()),
        "csv without header": (
            "text/csv",
            csv_text([[record[name] for name in columns] for record in records]),
        ),
        "json list of records": ("application/json", json.dumps(records)),
        "json instances": ("application/json", json.dumps({"instances": inputs})),
        "json instances as value lists": (
            "application/json",
            json.dumps({"instances": [list(record.values()) for record in inputs]}),
        ),
        "jsonlines": ("application/jsonlines", "\n".join(json.dumps(record) for record in inputs) + "\n"),
    }


def test_ping_is_ready_once_the_model_is_loaded(titanic_server: ModelServer) -> None:
    response = requests.get(f"{titanic_server.url}/ping", timeout=5)
    assert (response.status_code, response.content) == (200, b"")  # SageMaker asks for an empty body


@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv"])
@pytest.mark.parametrize(
    "shape",
    [
        "csv with header and target",
        "csv without header",
        "json list of records",
        "json instances",
        "json instances as value lists",
        "jsonlines",
    ],
)
def test_every_format_scores_as_h2o_does(
    titanic_server: ModelServer,
    titanic_base_dir: Path,
    h2o_predictions: list[Prediction],
    shape: str,
    accept: str,
) -> None:
    content_type, body = request_bodies(titanic_base_dir / "model")[shape]
    response = invoke(titanic_server, body, content_type, accept)
    assert response.headers["Content-Type"] == accept
    assert_same_predictions(parse_predictions(response), h2o_predictions)


def test_a_single_json_record_gives_one_prediction(
    titanic_server: ModelServer, h2o_predictions: list[Prediction]
) -> None:
    response = invoke(titanic_server, json.dumps(validation_records()[0]), "application/json")
    assert_same_predictions(parse_predictions(response), h2o_predictions[:1])


def test_json_numbers_and_nulls_score_like_csv_text(titanic_server: ModelServer) -> None:
    as_text = {"Pclass": "3", "Sex": "male", "Age": "22", "Fare": "7.25", "Embarked": ""}
    as_json_types = {"Pclass": "3", "Sex": "male", "Age": 22, "Fare": 7.25, "Embarked": None}
    assert parse_predictions(
        invoke(titanic_server, json.dumps(as_text), "application/json")
    ) == parse_predictions(invoke(titanic_server, json.dumps(as_json_types), "application/json"))


def test_default_accept_is_json_and_wildcards_are_honoured(titanic_server: ModelServer) -> None:
    body = VALIDATION_CSV.read_text()
    assert invoke(titanic_server, body, "text/csv").headers["Content-Type"] == "application/json"
    assert invoke(titanic_server, body, "text/csv", "*/*").headers["Content-Type"] == "application/json"
    assert invoke(titanic_server, body, "text/csv", "text/*").headers["Content-Type"] == "text/csv"
    preferred = "application/json;q=0.5, application/jsonlines"
    assert (
        invoke(titanic_server, body, "text/csv", preferred).headers["Content-Type"] == "application/jsonlines"
    )


@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv"])
def test_unknown_categorical_levels_score_as_missing_and_are_reported(
    titanic_server: ModelServer, accept: str
) -> None:
    record = {"Pclass": "1", "Sex": "female", "Age": "38", "Fare": "71.28", "Embarked": "C"}
    unknown = record | {"Pclass": "9", "Embarked": "Atlantis"}
    missing = record | {"Pclass": "", "Embarked": ""}
    [unknown_prediction, missing_prediction, known_prediction] = parse_predictions(
        invoke(titanic_server, json.dumps([unknown, missing, record]), "application/json", accept)
    )
    assert unknown_prediction["unknown_categorical_levels"] == {"Pclass": "9", "Embarked": "Atlantis"}
    assert unknown_prediction["probabilities"] == missing_prediction["probabilities"]
    assert "unknown_categorical_levels" not in missing_prediction
    assert "unknown_categorical_levels" not in known_prediction
    assert known_prediction["probabilities"] != missing_prediction["probabilities"]


# As SageMaker passes InvokeEndpoint's CustomAttributes; an attribute of another tool beside it is ignored.
CONTRIBUTIONS_ON = {"X-Amzn-SageMaker-Custom-Attributes": "trace-id=7; contributions=true"}


@pytest.fixture(scope="module")
def h2o_contributions(
    titanic_base_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, float]]:
    """H2O's own feature contributions for the validation rows (PredictCsv --predictContributions)."""
    rows = h2o_predict_csv(titanic_base_dir, tmp_path_factory.mktemp("h2o"), predict_contributions=True)
    return [{name: float(value) for name, value in row.items()} for row in rows]


def parse_contributions(response: requests.Response) -> list[dict[str, float]]:
    assert response.status_code == 200, response.text
    if response.headers["Content-Type"] == "text/csv":
        prefix = "contribution_"
        return [
            {
                name.removeprefix(prefix): float(value)
                for name, value in row.items()
                if name.startswith(prefix)
            }
            for row in csv.DictReader(io.StringIO(response.text))
        ]
    return [prediction["contributions"] for prediction in parse_predictions(response)]


@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv"])
def test_contributions_are_h2os_own_beside_unchanged_predictions(
    titanic_server: ModelServer,
    h2o_predictions: list[Prediction],
    h2o_contributions: list[dict[str, float]],
    accept: str,
) -> None:
    response = invoke(titanic_server, VALIDATION_CSV.read_text(), "text/csv", accept, CONTRIBUTIONS_ON)
    contributions = parse_contributions(response)
    assert len(contributions) == len(h2o_contributions) == 179
    for row, (got, want) in enumerate(zip(contributions, h2o_contributions, strict=True), start=1):
        assert list(got) == list(want), f"row {row}"  # the features in the model's order, then BiasTerm
        assert got == pytest.approx(want, rel=1e-6, abs=1e-7), f"row {row}"
    predictions = parse_predictions(response)
    for prediction in predictions:
        prediction.pop("contributions", None)
    assert_same_predictions(predictions, h2o_predictions)


def test_contributions_are_off_unless_asked_and_a_bad_value_is_refused(titanic_server: ModelServer) -> None:
    body = VALIDATION_CSV.read_text()
    for attributes in ("contributions=false", "trace-id=7"):
        answer = invoke(
            titanic_server, body, "text/csv", headers={"X-Amzn-SageMaker-Custom-Attributes": attributes}
        )
        assert "contributions" not in answer.json()["predictions"][0]
    refused = invoke(
        titanic_server, body, "text/csv", headers={"X-Amzn-SageMaker-Custom-Attributes": "contributions=1"}
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "custom attribute contributions must be true or false, got 'contributions=1'",
        "row": None,
    }


def test_a_regressions_contributions_add_up_to_its_prediction(
    other_base_dirs: dict[str, Path], start_server: Callable[..., ModelServer]
) -> None:
    base_dir = other_base_dirs["Regression"]
    server = start_server(base_dir)
    try:
        server.wait_ready()
        response = invoke(server, VALIDATION_CSV.read_text(), "text/csv", headers=CONTRIBUTIONS_ON)
    finally:
        server.stop()
    predictions = response.json()["predictions"]
    features = [
        feature["name"]
        for feature in json.loads((base_dir / "model" / "model-metadata.json").read_text())["features"]
    ]
    assert len(predictions) == 179 and "Fare" not in features
    for prediction in predictions:
        assert list(prediction["contributions"]) == [*features, "BiasTerm"]
        # float32 contributions: their sum matches the prediction to float32 precision
        assert sum(prediction["contributions"].values()) == pytest.approx(
            prediction["value"], rel=1e-5, abs=1e-4
        )


def test_a_multinomial_model_refuses_contributions_and_scores_without(
    other_base_dirs: dict[str, Path], start_server: Callable[..., ModelServer]
) -> None:
    server = start_server(other_base_dirs["Multinomial"])
    try:
        server.wait_ready()
        refused = invoke(server, VALIDATION_CSV.read_text(), "text/csv", headers=CONTRIBUTIONS_ON)
        scored = invoke(server, VALIDATION_CSV.read_text(), "text/csv")
    finally:
        server.stop()
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "contributions are computed for binomial and regression models, not multinomial",
        "row": None,
    }
    assert set(scored.json()["predictions"][0]["probabilities"]) == {"1", "2", "3"}


def test_the_environment_turns_contributions_on_for_every_request_as_batch_transform_needs(
    titanic_base_dir: Path,
    other_base_dirs: dict[str, Path],
    start_server: Callable[..., ModelServer],
    h2o_contributions: list[dict[str, float]],
) -> None:
    """A transform job cannot send CustomAttributes; its Environment can set H2O_GBM_PREDICTOR_CONTRIBUTIONS."""
    server = start_server(titanic_base_dir, H2O_GBM_PREDICTOR_CONTRIBUTIONS="true", SAGEMAKER_BATCH="true")
    try:
        server.wait_ready()
        lines = invoke(server, VALIDATION_CSV.read_text(), "text/csv", "text/csv").text.splitlines()
        off = invoke(
            server,
            VALIDATION_CSV.read_text(),
            "text/csv",
            "text/csv",
            {"X-Amzn-SageMaker-Custom-Attributes": "contributions=false"},
        ).text.splitlines()
    finally:
        server.stop()
    # Batch CSV: no header; label, 2 probabilities, the contributions, the unknown levels' (empty) column.
    assert len(lines) == len(off) == 179
    fields = next(csv.reader([lines[0]]))
    assert len(fields) == 3 + len(h2o_contributions[0]) + 1
    assert [float(value) for value in fields[3:-1]] == pytest.approx(
        list(h2o_contributions[0].values()), rel=1e-6
    )
    assert len(next(csv.reader([off[0]]))) == 4
    multinomial = start_server(other_base_dirs["Multinomial"], H2O_GBM_PREDICTOR_CONTRIBUTIONS="true")
    try:
        answer = multinomial.wait_listening()
    finally:
        multinomial.stop()
    assert answer.status_code == 503
    assert (
        "H2O_GBM_PREDICTOR_CONTRIBUTIONS is true, but h2o-genmodel computes no contributions" in answer.text
    )


def test_regression_shape_is_not_used_for_a_classifier(titanic_server: ModelServer) -> None:
    prediction = invoke(titanic_server, '{"Sex": "male"}', "application/json").json()["predictions"][0]
    assert set(prediction) == {"label", "probabilities"}


HEADER = "PassengerId,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked\n"
GOOD_ROW = '1,3,"Braund, Mr. Owen",male,22,1,0,A/5 21171,7.25,,S\n'
BAD_REQUESTS = [
    # (name, content type, accept, body, status, row, words in the error)
    ("empty body", "text/csv", None, "", 400, None, "empty"),
    ("blank body", "application/json", None, "  \n", 400, None, "empty"),
    ("header only", "text/csv", None, HEADER, 400, None, "no rows"),
    ("unterminated quote", "text/csv", None, HEADER + GOOD_ROW + '2,1,"Cumings\n', 400, 2, "malformed CSV"),
    (
        "too few fields",
        "text/csv",
        None,
        HEADER + GOOD_ROW + "2,1,x,female\n",
        400,
        2,
        "4 fields, expected 11",
    ),
    (
        "too many fields without header",
        "text/csv",
        None,
        GOOD_ROW + GOOD_ROW.strip() + ",extra\n",
        400,
        2,
        "expected 11",
    ),
    ("unknown header column", "text/csv", None, "Pclass,Sex,Agee\n3,male,22\n", 400, None, "'Agee'"),
    ("duplicate header column", "text/csv", None, "Pclass,Sex,Sex\n3,male,male\n", 400, None, "duplicate"),
    (
        "text in a numeric column",
        "text/csv",
        None,
        HEADER + GOOD_ROW + GOOD_ROW.replace(",22,", ",old,"),
        400,
        2,
        "Age expects a number, got 'old'",
    ),
    ("java-only number syntax", "text/csv", None, "Age\n22d\n", 400, 1, "Age expects a number"),
    ("malformed JSON", "application/json", None, '[{"Age": 22}', 400, None, "malformed JSON"),
    ("JSON scalar record", "application/json", None, "[1, 2]", 400, 1, "JSON object"),
    (
        "JSON nested value",
        "application/json",
        None,
        '[{"Age": 1}, {"Age": [22]}]',
        400,
        2,
        "Age expects a number, a string or null",
    ),
    ("JSON boolean", "application/json", None, '{"Age": true}', 400, 1, "Age expects"),
    (
        "JSON text in numeric column",
        "application/json",
        None,
        '{"Fare": "cheap"}',
        400,
        1,
        "Fare expects a number",
    ),
    ("JSON unknown column", "application/json", None, '{"Agee": 22}', 400, 1, "'Agee'"),
    ("instances not a list", "application/json", None, '{"instances": {"Age": 22}}', 400, None, "instances"),
    (
        "value list of wrong length",
        "application/json",
        None,
        '{"instances": [[1, 2]]}',
        400,
        1,
        "2 values, expected 11",
    ),
    (
        "malformed JSON line",
        "application/jsonlines",
        None,
        '{"Age": 22}\n{"Age": \n',
        400,
        2,
        "malformed JSON line",
    ),
    ("invalid UTF-8", "text/csv", None, b"Name\n\xff\xfe\n", 400, None, "UTF-8"),
    (
        "separator control character",
        "application/json",
        None,
        '{"Embarked": "a\\u001fb"}',
        400,
        None,
        "U+001F",
    ),
    ("unsupported content type", "application/x-parquet", None, "x", 415, None, "application/x-parquet"),
    ("missing content type", "", None, "x", 415, None, "Content-Type"),
    ("latin-1 charset", "text/csv; charset=latin-1", None, "Age\n1\n", 415, None, "charset"),
    ("unsupported accept", "text/csv", "application/xml", GOOD_ROW, 406, None, "application/xml"),
    ("accept refused with q=0", "text/csv", "text/csv;q=0", GOOD_ROW, 406, None, "Accept"),
]


@pytest.mark.parametrize(
    ("content_type", "accept", "body", "status", "row", "words"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_gets_a_clear_json_error(
    titanic_server: ModelServer,
    content_type: str,
    accept: str | None,
    body: str | bytes,
    status: int,
    row: int | None,
    words: str,
) -> None:
    response = invoke(titanic_server, body, content_type, accept)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()
    assert set(error) == {"error", "row"}
    assert words in error["error"]
    assert error["row"] == row


def test_body_over_the_limit_is_refused_without_breaking_the_server(titanic_server: ModelServer) -> None:
    oversized = HEADER + GOOD_ROW * (6 * 1024 * 1024 // len(GOOD_ROW) + 1)
    response = invoke(titanic_server, oversized, "text/csv")
    assert response.status_code == 413
    assert "6 MB" in response.json()["error"]
    assert invoke(titanic_server, HEADER + GOOD_ROW, "text/csv").status_code == 200


def test_a_body_just_under_the_limit_is_scored(titanic_server: ModelServer) -> None:
    rows = (6 * 1024 * 1024 - len(HEADER)) // len(GOOD_ROW)
    response = invoke(titanic_server, HEADER + GOOD_ROW * rows, "text/csv", "text/csv")
    assert response.status_code == 200
    assert response.text.count("\n") == rows + 1


def test_wrong_routes_and_methods_are_not_500(titanic_server: ModelServer) -> None:
    assert requests.get(f"{titanic_server.url}/invocations", timeout=5).status_code == 405
    assert requests.post(f"{titanic_server.url}/ping", timeout=5).status_code == 405
    assert requests.get(f"{titanic_server.url}/predict", timeout=5).status_code == 404


def test_concurrent_clients_each_get_their_own_rows(
    titanic_server: ModelServer, titanic_base_dir: Path, h2o_predictions: list[Prediction]
) -> None:
    records = validation_records()

    def client(start: int) -> None:
        with requests.Session() as session:
            for offset in range(0, 40, 4):
                chunk = slice(start + offset, start + offset + 4)
                response = session.post(
                    f"{titanic_server.url}/invocations",
                    data=json.dumps(records[chunk]),
                    headers={"Content-Type": "application/json", "Accept": "text/csv"},
                    timeout=30,
                )
                assert_same_predictions(parse_predictions(response), h2o_predictions[chunk])
                # An error on a kept-alive connection must not disturb the next request.
                bad = session.post(
                    f"{titanic_server.url}/invocations", data="", headers={"Content-Type": "text/csv"}
                )
                assert bad.status_code == 400

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(client, range(0, 8 * 17, 17)))


def test_a_model_folder_without_metadata_is_never_ready(
    tmp_path: Path, start_server: Callable[..., ModelServer]
) -> None:
    lay_out_hosting(tmp_path, {"model.zip": b"not read: the metadata names the MOJO"})
    server = start_server(tmp_path)
    try:
        response = server.wait_listening()
        assert response.status_code == 503
        assert "model-metadata.json not found" in response.json()["error"]
        assert invoke(server, GOOD_ROW, "text/csv").status_code == 503
        assert "model-metadata.json not found" in server.log()
    finally:
        server.stop()


def batch_transform(server: ModelServer, lines: list[str], records_per_request: int, accept: str) -> str:
    """What a transform job with SplitType Line, MultiRecord and AssembleWith Line writes: each mini-batch's
    response, its trailing line break stripped, then a newline (as the SageMaker SDK's local mode assembles)."""
    output = ""
    for start in range(0, len(lines), records_per_request):
        response = invoke(server, "".join(lines[start : start + records_per_request]), "text/csv", accept)
        assert response.status_code == 200, response.text
        output += response.text.rstrip("\n") + "\n"
    return output


def test_batch_transform_writes_one_line_per_input_record(
    batch_transform_server: ModelServer, titanic_base_dir: Path, h2o_predictions: list[Prediction]
) -> None:
    columns = input_columns(titanic_base_dir / "model")
    lines = csv_text([[record[name] for name in columns] for record in validation_records()]).splitlines(True)
    as_csv = batch_transform(batch_transform_server, lines, 50, "text/csv").splitlines()
    assert len(as_csv) == len(lines)
    assert_same_predictions(
        [
            {"label": label, "probabilities": {"0": float(p0), "1": float(p1)}}
            for label, p0, p1, _ in csv.reader(as_csv)
        ],
        h2o_predictions,
    )
    as_json_lines = batch_transform(batch_transform_server, lines, 1, "application/jsonlines").splitlines()
    assert_same_predictions([json.loads(line) for line in as_json_lines], h2o_predictions)


def test_batch_transform_execution_parameters_and_unlimited_chunked_bodies(
    batch_transform_server: ModelServer,
) -> None:
    parameters = requests.get(f"{batch_transform_server.url}/execution-parameters", timeout=5)
    assert parameters.json() == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 0,
    }
    # MaxPayloadInMB 0: SageMaker streams the mini-batch with chunked encoding and sets no size limit.
    rows = 7 * 1024 * 1024 // len(GOOD_ROW) + 1
    chunks = (
        HEADER.encode() if chunk == 0 else GOOD_ROW.encode() * 1000 for chunk in range(rows // 1000 + 2)
    )
    response = requests.post(
        f"{batch_transform_server.url}/invocations",
        data=chunks,
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        timeout=60,
    )
    assert response.status_code == 200, response.text[:200]
    assert response.text.count("\n") == (rows // 1000 + 1) * 1000
