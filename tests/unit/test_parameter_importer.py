"""The deploy-time import: Create/Update/Delete against moto, one CloudFormation answer per request, always."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import parameter_importer
import pytest
from events import BUCKET, custom_resource_request, example, original_ml_parameters
from moto import mock_aws

if TYPE_CHECKING:
    from conftest import CloudFormationResponses

ML_PARAMETERS = original_ml_parameters()
HYPERPARAMETERS = example("hyperparameters.json")


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="ml-parameters.json", Body=json.dumps(ML_PARAMETERS))
        s3.put_object(Bucket=BUCKET, Key="hyperparameters.json", Body=json.dumps(HYPERPARAMETERS))
        yield {"s3": s3, "ssm": boto3.client("ssm")}


def request(
    request_type: str, responses: CloudFormationResponses, physical_id: str | None = None, **properties: str
) -> dict[str, Any]:
    return custom_resource_request(request_type, responses.url, physical_id, **properties)


def stored(ssm: Any, name: str) -> dict[str, Any]:
    return json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])


def create(
    aws: dict[str, Any], responses: CloudFormationResponses, context: Any, ml_parameters: dict | None = None
) -> dict[str, Any]:
    """The one answer to a Create request, with ``ml_parameters`` as ml-parameters.json when given."""
    if ml_parameters is not None:
        aws["s3"].put_object(Bucket=BUCKET, Key="ml-parameters.json", Body=json.dumps(ml_parameters))
    parameter_importer.lambda_handler(request("Create", responses), context)
    [answer] = responses.bodies
    return answer


def assert_refused_before_any_write(aws: dict[str, Any], answer: dict[str, Any], reason: str) -> None:
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(reason), answer["Reason"]
    assert aws["ssm"].get_parameters_by_path(Path="/ml-project")["Parameters"] == []


def test_create_imports_both_files_and_answers_success(aws, responses, lambda_context) -> None:
    answer = create(aws, responses, lambda_context)
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "ssm-parameters:/ml-project"
    assert answer["Data"]["MlParametersName"] == "/ml-project/ml-parameters"
    assert stored(aws["ssm"], "/ml-project/ml-parameters") == ML_PARAMETERS
    assert stored(aws["ssm"], "/ml-project/hyperparameters") == HYPERPARAMETERS


def test_the_answer_names_what_the_stack_creates_for_the_endpoint(aws, responses, lambda_context) -> None:
    """The model package group (one per stack and endpoint) and the rollback alarms' thresholds."""
    alarms = {"maxErrorRate": 0.05, "maxModelLatencyMilliseconds": 250, "evaluationPeriods": 2}
    answer = create(
        aws, responses, lambda_context, ML_PARAMETERS | {"deployment": {"rollbackAlarms": alarms}}
    )
    data = answer["Data"]
    assert data["EndpointName"] == ML_PARAMETERS["endpointName"]
    group = data["ModelPackageGroupName"]
    assert re.fullmatch(rf"{ML_PARAMETERS['endpointName']}-[0-9a-f]{{8}}", group)
    assert (data["MaxErrorRate"], data["MaxModelLatencyMicroseconds"], data["AlarmEvaluationPeriods"]) == (
        "0.05",
        "250000",
        "2",
    )
    # Another stack (a new stack id) gets another group, so a retained group never blocks a new stack.
    other = custom_resource_request("Create", responses.url, ParameterStorePath="/other-project") | {
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/other/1"
    }
    parameter_importer.lambda_handler(other, lambda_context)
    assert responses.bodies[1]["Data"]["ModelPackageGroupName"] != group
    assert all(len(body["Data"]["ModelPackageGroupName"]) <= 63 for body in responses.bodies)


def test_update_reimports_changed_files(aws, responses, lambda_context) -> None:
    parameter_importer.lambda_handler(request("Create", responses), lambda_context)
    aws["s3"].put_object(
        Bucket=BUCKET,
        Key="ml-parameters.json",
        Body=json.dumps(ML_PARAMETERS | {"maxParallelTrainingJobs": 5}),
    )
    parameter_importer.lambda_handler(
        request("Update", responses, "ssm-parameters:/ml-project", Revision="2"), lambda_context
    )
    assert [body["Status"] for body in responses.bodies] == ["SUCCESS", "SUCCESS"]
    assert stored(aws["ssm"], "/ml-project/ml-parameters")["maxParallelTrainingJobs"] == 5


def test_delete_removes_only_what_this_stack_created(aws, responses, lambda_context) -> None:
    parameter_importer.lambda_handler(request("Create", responses), lambda_context)
    aws["ssm"].put_parameter(Name="/ml-project/someone-elses", Value="keep", Type="String")
    parameter_importer.lambda_handler(
        request("Delete", responses, "ssm-parameters:/ml-project"), lambda_context
    )
    assert responses.bodies[-1]["Status"] == "SUCCESS"
    names = [p["Name"] for p in aws["ssm"].get_parameters_by_path(Path="/ml-project")["Parameters"]]
    assert names == ["/ml-project/someone-elses"]


def test_delete_after_a_failed_create_succeeds_without_touching_anything(
    aws, responses, lambda_context
) -> None:
    aws["ssm"].put_parameter(Name="/ml-project/ml-parameters", Value="{}", Type="String")
    parameter_importer.lambda_handler(request("Delete", responses, "ImportedParameters"), lambda_context)
    assert responses.bodies[-1]["Status"] == "SUCCESS"
    assert aws["ssm"].get_parameter(Name="/ml-project/ml-parameters")["Parameter"]["Value"] == "{}"


def test_missing_file_fails_the_deployment_with_a_reason(aws, responses, lambda_context) -> None:
    parameter_importer.lambda_handler(
        request("Create", responses, HyperparametersKey="nope.json"), lambda_context
    )
    [answer] = responses.bodies
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "s3://my-ml-bucket/nope.json does not exist: upload it before deploying"
    assert aws["ssm"].get_parameters_by_path(Path="/ml-project")["Parameters"] == []  # nothing half made


def test_invalid_file_fails_the_deployment_naming_the_field(aws, responses, lambda_context) -> None:
    answer = create(aws, responses, lambda_context, ML_PARAMETERS | {"autoscalingMaxCapacity": 0})
    assert_refused_before_any_write(
        aws, answer, "ml-parameters.json: autoscalingMaxCapacity: Input should be greater than or equal to 1"
    )


def with_algorithm_of(account: str) -> dict[str, Any]:
    return ML_PARAMETERS | {"algorithmARN": f"arn:aws:sagemaker:us-east-1:{account}:algorithm/h2o-gbm"}


def with_data_captured_in(bucket: str) -> dict[str, Any]:
    document = copy.deepcopy(ML_PARAMETERS)
    document["model"]["hosting"]["dataCapture"] = {"destinationS3Uri": f"s3://{bucket}/data-capture/"}
    return document


@pytest.mark.parametrize(
    ("document", "refusal"),
    [
        (with_algorithm_of("123456789012"), None),
        # A Marketplace algorithm is hosted through a model package, which the workflow does not make: refused
        # now, not at CreateModel after the whole tuning job.
        (
            with_algorithm_of("865070037744"),
            "ml-parameters: algorithmARN arn:aws:sagemaker:us-east-1:865070037744:algorithm/h2o-gbm belongs to "
            "account 865070037744, not this stack's 123456789012: an AWS Marketplace algorithm is hosted through "
            "a model package",
        ),
        (with_data_captured_in(BUCKET), None),
        # The model's execution role writes the captured data and may write the data bucket only: elsewhere,
        # every capture would be lost while the endpoint serves.
        (
            with_data_captured_in("another-bucket"),
            "ml-parameters: model.hosting.dataCapture.destinationS3Uri s3://another-bucket/data-capture/ is "
            f"outside the data bucket s3://{BUCKET}/",
        ),
    ],
    ids=["own-algorithm", "marketplace-algorithm", "captured-in-data-bucket", "captured-elsewhere"],
)
def test_what_only_the_stack_can_check_fails_the_deployment(
    aws, responses, lambda_context, document: dict[str, Any], refusal: str | None
) -> None:
    """The stack's account and data bucket are known when it imports the files, not when a run starts."""
    answer = create(aws, responses, lambda_context, document)
    if refusal is None:
        assert answer["Status"] == "SUCCESS", answer.get("Reason")
    else:
        assert_refused_before_any_write(aws, answer, refusal)


def test_parameters_owned_by_someone_else_are_not_overwritten(aws, responses, lambda_context) -> None:
    aws["ssm"].put_parameter(Name="/ml-project/hyperparameters", Value="{}", Type="String")
    answer = create(aws, responses, lambda_context)
    assert answer["Status"] == "FAILED"
    assert (
        "/ml-project/hyperparameters already exist(s) and were not created by this stack" in answer["Reason"]
    )
    assert aws["ssm"].get_parameter(Name="/ml-project/hyperparameters")["Parameter"]["Value"] == "{}"


def test_an_unexpected_error_still_answers_failed(aws, responses, lambda_context, monkeypatch) -> None:
    def explode(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(parameter_importer, "write_documents", explode)
    parameter_importer.lambda_handler(request("Create", responses), lambda_context)
    assert responses.bodies == [
        responses.bodies[0]
        | {"Status": "FAILED", "Reason": "RuntimeError: boom", "PhysicalResourceId": "ImportedParameters"}
    ]


def test_a_hanging_import_answers_failed_before_lambda_times_out(
    aws, responses, lambda_context, monkeypatch
) -> None:
    finished = threading.Event()
    monkeypatch.setattr(parameter_importer, "write_documents", lambda *args: finished.wait(5) and [])
    lambda_context.remaining_millis = 10_500  # the deadline guard fires after 0.5 s
    worker = threading.Thread(
        target=parameter_importer.lambda_handler, args=(request("Create", responses), lambda_context)
    )
    worker.start()
    worker.join(3)
    assert [body["Status"] for body in responses.bodies] == ["FAILED"]
    assert responses.bodies[0]["Reason"] == "timed out before the import finished"
    finished.set()
    worker.join()
    assert len(responses.bodies) == 1  # the late outcome is not sent a second time
