"""Training runs network-isolated (and in the VPC when one is given) as SageMaker receives it, and no Lambda logs
its event or the parameter documents: the custom resource's pre-signed response URL, in particular, is a
credential (whoever holds it can answer for the stack)."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import parameter_importer
import pytest
from cfnlint.decode import decode
from events import STACK_RESOURCES, custom_resource_request, minimal_ml_parameters
from h2o_sagemaker_local.stack.custom_resources import ResponseUrl
from moto import mock_aws
from workflow_common.execution_input import RunIdentity, build_execution_input
from workflow_common.ml_parameters import Hyperparameters, Manifest, MlParameters

REPO_ROOT = Path(__file__).resolve().parents[2]
TUNER_ASL = json.loads((REPO_ROOT / "sagemaker-model-tuner/statemachine/model-tuning.asl.json").read_text())
HANDLERS = sorted(REPO_ROOT.glob("*/functions/*/*.py"))
APP_TEMPLATES = sorted(REPO_ROOT.glob("*/template.yaml"))
BUCKET = "my-ml-bucket"
SECRET = "X-Amz-Signature=5ec7e75ec7e75ec7e7"
RUN = RunIdentity(
    BUCKET, "manifests/run-1/manifest.json", "3HL4kqtJlcpXroDTDmJ", datetime(2026, 11, 22, tzinfo=UTC)
)
MANIFEST = Manifest.model_validate(
    {
        "channels": [
            {"channelName": "training", "s3DataSource": {"S3Uri": f"s3://{BUCKET}/titanic/train.csv"}},
            {"channelName": "validation", "s3DataSource": {"S3Uri": f"s3://{BUCKET}/titanic/validation.csv"}},
        ]
    }
)
HYPERPARAMETERS = json.loads((REPO_ROOT / "examples/hyperparameters.json").read_text())
# Names holding a whole event or parameter document in the handlers; a log call must not take any of them.
WHOLE_DOCUMENTS = {
    "event",
    "request",
    "properties",
    "resource_properties",
    "documents",
    "raw",
    "parsed",
    "execution_input",
    "ml_parameters",
    "hyperparameters",
    "manifest",
}


ML_PARAMETERS = minimal_ml_parameters()


def ml_parameters(**changes: Any) -> MlParameters:
    return MlParameters.model_validate(ML_PARAMETERS | changes)


def training_job_sent_to_sagemaker(execution_input: dict[str, Any], algorithm_state: str) -> dict[str, Any]:
    """TuneHyperparameters' TrainingJobDefinition: States.JsonMerge(input definition, algorithm extras, false)."""
    tune = TUNER_ASL["States"]["TuneHyperparameters"]["Parameters"]
    assert tune["TrainingJobDefinition.$"] == (
        "States.JsonMerge($.trainingJobDefinition, $.trainingJobExtras, false)"
    ), "the run's definition first, the algorithm's extras merged over it (shallow)"
    extras = TUNER_ASL["States"][algorithm_state]["Parameters"]
    # Only which top-level keys the extras replace matters here, not their values.
    replaced = {key.removesuffix(".$"): f"<from {algorithm_state}>" for key in extras}
    return execution_input["tuning"]["trainingJobDefinition"] | replaced


@pytest.mark.parametrize("algorithm_state", ["UseTrainingImage", "UseAlgorithmResource"])
def test_training_is_network_isolated_by_default(algorithm_state: str) -> None:
    assert MlParameters.model_fields["enable_network_isolation"].default is True
    execution_input = build_execution_input(
        ml_parameters(), Hyperparameters.model_validate(HYPERPARAMETERS), MANIFEST, RUN, STACK_RESOURCES
    )
    definition = training_job_sent_to_sagemaker(execution_input, algorithm_state)
    assert definition["EnableNetworkIsolation"] is True
    assert "VpcConfig" not in definition


@pytest.mark.parametrize("algorithm_state", ["UseTrainingImage", "UseAlgorithmResource"])
def test_training_runs_in_the_given_vpc_still_isolated(algorithm_state: str) -> None:
    model = {
        "artifactsS3OutputPath": f"s3://{BUCKET}/model-artifacts/",
        "name": "survival-model",
        "trainingSubnets": ["subnet-1", "subnet-2"],
        "trainingSecurityGroupIds": ["sg-1"],
    }
    execution_input = build_execution_input(
        ml_parameters(model=model),
        Hyperparameters.model_validate(HYPERPARAMETERS),
        MANIFEST,
        RUN,
        STACK_RESOURCES,
    )
    definition = training_job_sent_to_sagemaker(execution_input, algorithm_state)
    assert definition["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]}
    assert definition["EnableNetworkIsolation"] is True


def test_the_hosted_model_is_network_isolated_too_unless_it_is_served_serverless() -> None:
    for name in ("CreateModel", "CreateModelInVpc"):
        parameters = TUNER_ASL["States"][name]["Parameters"]
        assert parameters["EnableNetworkIsolation.$"] == "$.model.enableNetworkIsolation"
    hyperparameters = Hyperparameters.model_validate(HYPERPARAMETERS)
    instances = build_execution_input(ml_parameters(), hyperparameters, MANIFEST, RUN, STACK_RESOURCES)
    assert instances["tuning"]["model"]["enableNetworkIsolation"] is True
    model = ML_PARAMETERS["model"] | {
        "hosting": {"serverlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
    }
    serverless = build_execution_input(
        ml_parameters(model=model), hyperparameters, MANIFEST, RUN, STACK_RESOURCES
    )
    # SageMaker's serverless feature exclusions; training stays isolated.
    assert serverless["tuning"]["model"]["enableNetworkIsolation"] is False
    assert serverless["tuning"]["trainingJobDefinition"]["EnableNetworkIsolation"] is True


# --- secrets never logged -----------------------------------------------------------------------------------


def log_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "logger"
        ):
            yield node


def test_every_handler_is_checked() -> None:
    assert len(HANDLERS) == 8


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda path: path.name)
def test_handlers_never_log_their_event_or_whole_documents(handler: Path) -> None:
    tree = ast.parse(handler.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", f"{handler.name}:{node.lineno}: print bypasses the logger"
    for decorator in (d for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for d in f.decorator_list):
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "inject_lambda_context":
            assert not any(keyword.arg == "log_event" for keyword in decorator.keywords), handler.name
    for call in log_calls(tree):
        logged = set()
        for argument in [*call.args, *(keyword.value for keyword in call.keywords)]:
            fields = {id(node.value) for node in ast.walk(argument) if isinstance(node, ast.Subscript)}
            for node in ast.walk(argument):
                if isinstance(node, ast.Name) and id(node) not in fields:
                    logged.add(node.id)  # a whole object; one field of it (document["key"]) is fine
                elif isinstance(node, ast.Attribute):
                    logged.add(node.attr)
        assert not logged & WHOLE_DOCUMENTS, f"{handler.name}:{call.lineno} logs {logged & WHOLE_DOCUMENTS}"


@pytest.mark.parametrize("template", APP_TEMPLATES, ids=lambda path: path.parent.name)
def test_no_template_turns_event_logging_on(template: Path) -> None:
    decoded, _ = decode(str(template))
    functions = [
        resource.get("Properties", {})
        for resource in decoded.get("Resources", {}).values()
        if resource["Type"] == "AWS::Serverless::Function"
    ] + [decoded.get("Globals", {}).get("Function", {})]
    for properties in functions:
        variables = properties.get("Environment", {}).get("Variables", {})
        assert str(variables.get("POWERTOOLS_LOGGER_LOG_EVENT", "false")).lower() == "false"


@pytest.fixture
def response_url() -> Iterator[ResponseUrl]:
    """CloudFormation's pre-signed response URL on loopback, with a signature that must never be logged."""
    with ResponseUrl(f"/stack-response?{SECRET}") as endpoint:
        yield endpoint


@pytest.mark.parametrize("outcome", ["imported", "rejected", "crashed"])
def test_the_parameter_import_never_logs_its_response_url_or_the_documents(
    outcome: str,
    response_url: ResponseUrl,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch,
) -> None:
    hyperparameters = json.loads(json.dumps(HYPERPARAMETERS))
    hyperparameters["staticHyperParameters"]["document_marker"] = "d0cument-marker-7e1f"
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        documents = {
            "ml-parameters.json": ML_PARAMETERS,
            "hyperparameters.json": hyperparameters,
        }
        for key, document in documents.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document))
        if outcome == "crashed":
            monkeypatch.setattr(parameter_importer, "write_documents", lambda *args: 1 / 0)
        parameter_importer.lambda_handler(
            custom_resource_request(
                "Create",
                response_url.url,
                BucketName=BUCKET,
                HyperparametersKey="missing.json" if outcome == "rejected" else "hyperparameters.json",
                Revision="1",
            ),
            lambda_context,
        )
    (answer,) = response_url.bodies
    assert answer["Status"] == ("SUCCESS" if outcome == "imported" else "FAILED"), answer
    assert caplog.records, "the function logged nothing: the check would prove nothing"
    formatter = logging.Formatter()
    for record in caplog.records:
        emitted = formatter.format(record) + repr(vars(record))  # message, traceback and every extra key
        for secret in (SECRET, "d0cument-marker-7e1f"):
            assert secret not in emitted, record.getMessage()
