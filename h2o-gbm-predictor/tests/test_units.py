"""Environment, metadata, content negotiation, decoding and encoding, without a JVM or a server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from h2o_gbm_predictor.app import ModelServerApp
from h2o_gbm_predictor.environment import Environment, InvalidEnvironment
from h2o_gbm_predictor.formats import (
    RequestDecoder,
    RequestError,
    ResponseEncoder,
    accept_of,
    content_type_of,
    contributions_asked,
)
from h2o_gbm_predictor.metadata import Feature, ModelMetadata, ModelMetadataError, load_metadata
from h2o_gbm_predictor.scorer import CELL_SEPARATOR, ScoredBatch
from h2o_gbm_predictor.server import GRACEFUL_STOP_SECONDS, GunicornServer

CLASSIFIER = ModelMetadata(
    mojo_path=Path("model.zip"),
    genmodel_jar_path=Path("h2o-genmodel.jar"),
    model_category="Multinomial",
    target="species",
    target_domain=("setosa", "versi,color", "virginica"),
    input_columns=("id", "petal", "colour"),
    features=(Feature("colour", numeric=False), Feature("petal", numeric=True)),
)
REGRESSOR = ModelMetadata(**{**CLASSIFIER.__dict__, "model_category": "Regression", "target_domain": None})


def test_environment_defaults_follow_sagemaker() -> None:
    environment = Environment.from_env({})
    assert environment.model_dir == Path("/opt/ml/model")
    assert environment.port == 8080
    assert environment.workers >= 1
    assert environment.max_payload_bytes == 6 * 1024 * 1024
    assert environment.default_accept == "application/json"


def test_the_server_stops_before_sagemakers_sigkill() -> None:
    """SageMaker sends SIGKILL 30 s after SIGTERM: gunicorn's workers get less than that to finish."""
    server = GunicornServer(Environment.from_env({}))
    assert server.cfg.graceful_timeout == GRACEFUL_STOP_SECONDS < 30


def test_environment_reads_every_setting() -> None:
    environment = Environment.from_env(
        {
            "SAGEMAKER_BASE_DIR": "/tmp/job",
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "H2O_GBM_PREDICTOR_JVM_HEAP": "2g",
            "H2O_GBM_PREDICTOR_HELPER_DIR": "/opt/helper",
        }
    )
    assert (environment.model_dir, environment.port, environment.workers) == (Path("/tmp/job/model"), 9000, 3)
    assert (environment.max_payload_bytes, environment.default_accept) == (1024 * 1024, "text/csv")
    assert (environment.jvm_heap, environment.helper_dir) == ("2g", Path("/opt/helper"))


def test_environment_reads_batch_transforms_settings() -> None:
    assert not Environment.from_env({}).batch
    # SageMaker sets "true"; the SageMaker SDK's local mode sets "True".
    assert Environment.from_env({"SAGEMAKER_BATCH": "true"}).batch
    assert Environment.from_env({"SAGEMAKER_BATCH": "True"}).batch
    assert Environment.from_env({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0"}).max_payload_bytes is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAGEMAKER_BIND_TO_PORT", "http"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "-1"),
        ("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/html"),
        ("H2O_GBM_PREDICTOR_JVM_HEAP", "lots"),
    ],
)
def test_environment_names_the_bad_variable(name: str, value: str) -> None:
    with pytest.raises(InvalidEnvironment, match=name):
        Environment.from_env({name: value})


def write_model_folder(model_dir: Path, **changes: Any) -> None:
    model_dir.mkdir(exist_ok=True)
    (model_dir / "model.zip").write_bytes(b"mojo")
    (model_dir / "h2o-genmodel.jar").write_bytes(b"jar")
    document = {
        "format_version": 1,
        "mojo_file": "model.zip",
        "genmodel_jar": "h2o-genmodel.jar",
        "model_category": "Binomial",
        "target": "Survived",
        "target_domain": ["0", "1"],
        "input_columns": ["Age", "Sex"],
        "features": [
            {"name": "Sex", "type": "enum", "domain": ["f", "m"]},
            {"name": "Age", "type": "numeric"},
        ],
    } | changes
    (model_dir / "model-metadata.json").write_text(json.dumps(document))


def test_metadata_names_the_mojo_and_the_features(tmp_path: Path) -> None:
    write_model_folder(tmp_path, mojo_file="model.zip")
    (tmp_path / "aaa-first-in-folder.zip").write_bytes(b"not the model")
    metadata = load_metadata(tmp_path)
    assert metadata.mojo_path == tmp_path / "model.zip"
    assert metadata.features == (Feature("Sex", numeric=False), Feature("Age", numeric=True))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 2}, "format_version"),
        ({"mojo_file": "../model.zip"}, "mojo_file"),
        ({"mojo_file": "missing.zip"}, "mojo_file"),
        ({"model_category": "Clustering"}, "model_category"),
        ({"target_domain": None}, "target_domain"),
        ({"features": [{"name": "Sex", "type": "string"}]}, "type"),
        ({"features": [{"name": "Fare", "type": "numeric"}]}, "input_columns"),
    ],
)
def test_bad_metadata_is_named(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    write_model_folder(tmp_path, **changes)
    with pytest.raises(ModelMetadataError, match=message):
        load_metadata(tmp_path)


def test_missing_or_malformed_metadata_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelMetadataError, match="not found"):
        load_metadata(tmp_path)
    (tmp_path / "model-metadata.json").write_text("{")
    with pytest.raises(ModelMetadataError, match="not readable JSON"):
        load_metadata(tmp_path)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "application/json"),
        ("text/csv", "text/csv"),
        ("application/xml, application/jsonlines", "application/jsonlines"),
        ("text/csv;q=0.2, application/json;q=0.9", "application/json"),
        ("text/*", "text/csv"),
        ("*/*", "application/json"),
    ],
)
def test_accept_negotiation(header: str | None, expected: str) -> None:
    assert accept_of(header, "application/json") == expected


def test_content_type_ignores_utf8_charset_and_case() -> None:
    assert content_type_of("Text/CSV; charset=UTF-8") == "text/csv"
    with pytest.raises(RequestError) as refused:
        content_type_of("application/octet-stream")
    assert refused.value.status == 415


def cells(*rows: tuple[str, ...]) -> str:
    return "".join(cell + CELL_SEPARATOR for row in rows for cell in row)


def test_headerless_csv_follows_input_columns_and_keeps_only_features() -> None:
    decoded = RequestDecoder(CLASSIFIER).decode("text/csv", b'7,1.5,"red, dark"\n8,,blue\n')
    assert (decoded.text, decoded.row_count) == (cells(("red, dark", "1.5"), ("blue", "")), 2)


def test_csv_header_may_reorder_add_the_target_and_leave_features_out() -> None:
    decoded = RequestDecoder(CLASSIFIER).decode("text/csv", b"species,colour\nsetosa,red\n")
    assert decoded.text == cells(("red", ""))


def test_json_shapes_decode_alike() -> None:
    decoder = RequestDecoder(CLASSIFIER)
    record = {"colour": "red", "petal": 1.5}
    expected = cells(("red", "1.5"))
    for body in (record, [record], {"instances": [record]}, {"instances": [[9, 1.5, "red"]]}):
        assert decoder.decode("application/json", json.dumps(body).encode()).text == expected
    assert decoder.decode("application/jsonlines", b'\n{"colour": "red", "petal": 1.5}\n\n').text == expected


def test_classifier_rows_have_the_same_fields_in_every_format() -> None:
    batch = ScoredBatch(
        values=[1.0, 0.1, 0.7, 0.2, 0.0, 0.8, 0.1, 0.1], width=4, unknown_levels={1: {"colour": "pink"}}
    )
    encoder = ResponseEncoder(CLASSIFIER)
    first = {"label": "versi,color", "probabilities": {"setosa": 0.1, "versi,color": 0.7, "virginica": 0.2}}
    second = {
        "label": "setosa",
        "probabilities": {"setosa": 0.8, "versi,color": 0.1, "virginica": 0.1},
        "unknown_categorical_levels": {"colour": "pink"},
    }
    assert json.loads(encoder.encode("application/json", batch)) == {"predictions": [first, second]}
    lines = encoder.encode("application/jsonlines", batch).decode().splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    assert encoder.encode("text/csv", batch).decode().splitlines() == [
        'label,probability_setosa,"probability_versi,color",probability_virginica,unknown_categorical_levels',
        '"versi,color",0.1,0.7,0.2,',
        'setosa,0.8,0.1,0.1,"{""colour"":""pink""}"',
    ]


def test_batch_transform_csv_is_one_line_per_row_without_a_header() -> None:
    batch = ScoredBatch(values=[1.0, 0.1, 0.7, 0.2, 0.0, 0.8, 0.1, 0.1], width=4, unknown_levels={})
    encoder = ResponseEncoder(CLASSIFIER, csv_header=False)
    assert encoder.encode("text/csv", batch) == b'"versi,color",0.1,0.7,0.2,\nsetosa,0.8,0.1,0.1,\n'
    assert encoder.fragments().csv_header == b""


def test_regression_rows_carry_a_value() -> None:
    batch = ScoredBatch(values=[3.25, -1.0], width=1, unknown_levels={})
    encoder = ResponseEncoder(REGRESSOR)
    assert json.loads(encoder.encode("application/json", batch)) == {
        "predictions": [{"value": 3.25}, {"value": -1.0}]
    }
    assert encoder.encode("text/csv", batch) == b"value,unknown_categorical_levels\n3.25,\n-1.0,\n"


def test_contributions_follow_each_rows_outputs_in_every_format() -> None:
    names = ("colour", "petal", "BiasTerm")
    batch = ScoredBatch(
        values=[3.25, 0.5, 2.0, 0.75, -1.0, -0.25, -1.5, 0.75],
        width=4,
        unknown_levels={1: {"colour": "pink"}},
        contributions=names,
    )
    encoder = ResponseEncoder(REGRESSOR)
    first = {"value": 3.25, "contributions": {"colour": 0.5, "petal": 2.0, "BiasTerm": 0.75}}
    second = {
        "value": -1.0,
        "contributions": {"colour": -0.25, "petal": -1.5, "BiasTerm": 0.75},
        "unknown_categorical_levels": {"colour": "pink"},
    }
    assert json.loads(encoder.encode("application/json", batch)) == {"predictions": [first, second]}
    lines = encoder.encode("application/jsonlines", batch).decode().splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    assert encoder.encode("text/csv", batch).decode().splitlines() == [
        "value,contribution_colour,contribution_petal,contribution_BiasTerm,unknown_categorical_levels",
        "3.25,0.5,2.0,0.75,",
        '-1.0,-0.25,-1.5,0.75,"{""colour"":""pink""}"',
    ]
    # A request without contributions keeps the plain header.
    plain = ScoredBatch(values=[3.25], width=1, unknown_levels={})
    assert encoder.encode("text/csv", plain) == b"value,unknown_categorical_levels\n3.25,\n"
    classified = ScoredBatch(
        values=[0.0, 0.9, 0.1, 0.0, 0.5, -2.0], width=6, unknown_levels={}, contributions=names
    )
    two_classes = ModelMetadata(**{**CLASSIFIER.__dict__, "target_domain": ("no", "yes")})
    assert json.loads(ResponseEncoder(two_classes).encode("application/json", classified)) == {
        "predictions": [
            {
                "label": "no",
                "probabilities": {"no": 0.9, "yes": 0.1},
                "contributions": {"colour": 0.0, "petal": 0.5, "BiasTerm": -2.0},
            }
        ]
    }


@pytest.mark.parametrize(
    ("attributes", "asked"),
    [
        ("contributions=true", True),
        (" trace-id=abc ; Contributions = TRUE ", True),
        ("contributions=false", False),
        ("trace-id=abc", None),  # silent: the server's default holds
        ("", None),
    ],
)
def test_custom_attributes_may_ask_for_contributions(attributes: str, asked: bool | None) -> None:
    assert contributions_asked(attributes) is asked


def test_contributions_default_to_off_and_the_environment_may_turn_them_on() -> None:
    assert Environment.from_env({}).contributions is False
    assert Environment.from_env({"H2O_GBM_PREDICTOR_CONTRIBUTIONS": "True"}).contributions is True
    with pytest.raises(InvalidEnvironment, match="H2O_GBM_PREDICTOR_CONTRIBUTIONS must be true or false"):
        Environment.from_env({"H2O_GBM_PREDICTOR_CONTRIBUTIONS": "1"})


@pytest.mark.parametrize("attributes", ["contributions", "contributions=yes", "contributions="])
def test_a_contributions_attribute_that_is_not_true_or_false_is_refused(attributes: str) -> None:
    with pytest.raises(RequestError) as refused:
        contributions_asked(attributes)
    assert refused.value.status == 400 and "contributions must be true or false" in str(refused.value)


def call(app: ModelServerApp, method: str, path: str) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": method, "path": path, "headers": []}, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_ping_and_invocations_are_503_until_the_model_is_loaded() -> None:
    app = ModelServerApp(Environment.from_env({}))
    assert call(app, "GET", "/ping") == (503, {"error": "model is loading", "row": None})
    assert call(app, "POST", "/invocations") == (503, {"error": "model is loading", "row": None})


def test_execution_parameters_answer_before_the_model_is_loaded() -> None:
    """Batch transform asks for them once the container answers /ping; they do not depend on the model."""
    app = ModelServerApp(Environment.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}))
    assert call(app, "GET", "/execution-parameters") == (
        200,
        {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6},
    )
    status, error = call(app, "POST", "/execution-parameters")
    assert (status, error["error"]) == (405, "use GET /execution-parameters")
