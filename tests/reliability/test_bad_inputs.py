"""The bad-input suite: every case drives a real component and checks the message and what is left behind.

- ml-parameters.json / hyperparameters.json through the parameter-import custom resource (moto): the deployment
  fails with a reason naming the field, nothing is written to SSM and a good earlier import is kept as it was.
- manifest.json through the manifest trigger (moto): a notification naming the field, no execution started; a
  duplicate delivery of one upload starts exactly one execution.
- training data through the real `train` process: exit code 2, a one-line `output/failure` naming the column or
  setting, no traceback and no model left behind.

The predictor's bad payloads and its fuzz run are in h2o-gbm-predictor/tests (test_server.py, test_fuzz.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import manifest_trigger
import parameter_importer
import pytest
from aws_lambda_powertools.utilities import parameters
from events import (
    BUCKET,
    EXAMPLES,
    OWNER_STACK_NAME,
    STACK_RESOURCES_ENVIRONMENT,
    custom_resource_request,
    edited,
    eventbridge_object_created,
    example,
    s3_object_created,
)
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job
from moto import mock_aws

if TYPE_CHECKING:
    from conftest import CloudFormationResponses, FakeLambdaContext

PARAMETER_STORE_PATH = "/ml-project"
MANIFEST_KEY = "manifests/titanic/manifest.json"
ML_PARAMETERS = example("template-ml-parameters.json")
HYPERPARAMETERS = example("hyperparameters.json")
MANIFEST = example("manifest.json")


def ranges(**groups: list[dict[str, Any]]) -> dict[str, Any]:
    """hyperparameters.json with exactly these parameterRanges and the example's static values."""
    return {"parameterRanges": groups, "staticHyperParameters": HYPERPARAMETERS["staticHyperParameters"]}


def with_static(**values: Any) -> dict[str, Any]:
    return edited(HYPERPARAMETERS, "staticHyperParameters", HYPERPARAMETERS["staticHyperParameters"] | values)


# --------------------------------------------------------------------------------------------------------------
# The provider stack in moto, once per module: data bucket, SNS topic, and the example parameter files imported by
# the real custom resource. Each test gets its own state machine and notification inbox, and the good files back.


def import_request(endpoint_url: str, request_type: str, path: str) -> dict[str, Any]:
    return custom_resource_request(
        request_type,
        endpoint_url,
        physical_resource_id=None if request_type == "Create" else f"ssm-parameters:{path}",
        request_id=str(uuid.uuid4()),
        ParameterStorePath=path,
        Revision="2" if request_type == "Update" else "1",
    )


class Provider:
    def __init__(self, endpoint: CloudFormationResponses, context: FakeLambdaContext) -> None:
        self.endpoint, self.context = endpoint, context
        self.s3, self.sfn, self.ssm, self.sns, self.sqs = (
            boto3.client(name) for name in ("s3", "stepfunctions", "ssm", "sns", "sqs")
        )
        self.s3.create_bucket(Bucket=BUCKET)
        self.topic = self.sns.create_topic(Name="notifications")["TopicArn"]
        self.role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"][
            "Arn"
        ]
        self.machine = self.queue = ""
        self.put_good_files()
        answer = self.run_import("Create")
        assert answer["Status"] == "SUCCESS", answer["Reason"]
        self.imported = self.stored()

    def put_good_files(self) -> None:
        self.put("ml-parameters.json", ML_PARAMETERS)
        self.put("hyperparameters.json", HYPERPARAMETERS)

    def start_test(self) -> None:
        """A new target state machine and SNS inbox, so executions and notifications are this test's alone."""
        name = uuid.uuid4().hex
        self.machine = self.sfn.create_state_machine(
            name=name,
            roleArn=self.role,
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        )["stateMachineArn"]
        self.queue = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(
            TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )
        self.put_good_files()

    def put(self, key: str, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)

    def run_import(self, request_type: str, path: str = PARAMETER_STORE_PATH) -> dict[str, Any]:
        """Run the import custom resource; return the one answer CloudFormation received."""
        received = len(self.endpoint.bodies)
        parameter_importer.lambda_handler(import_request(self.endpoint.url, request_type, path), self.context)
        [answer] = self.endpoint.bodies[received:]
        return answer

    def stored(self, path: str = PARAMETER_STORE_PATH) -> dict[str, str]:
        found = self.ssm.get_parameters_by_path(Path=path, Recursive=True)["Parameters"]
        return {parameter["Name"]: parameter["Value"] for parameter in found}

    def executions(self) -> list[dict[str, Any]]:
        return self.sfn.list_executions(stateMachineArn=self.machine)["executions"]

    def notifications(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]


@pytest.fixture(scope="module")
def provider_stack(
    fake_aws_environment: dict[str, str],
    cloudformation_endpoint: CloudFormationResponses,
    new_lambda_context: Callable[[], FakeLambdaContext],
) -> Iterator[Provider]:
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in fake_aws_environment.items():
            patch.setenv(name, value)
        yield Provider(cloudformation_endpoint, new_lambda_context())


@pytest.fixture
def provider(provider_stack: Provider, monkeypatch: pytest.MonkeyPatch) -> Provider:
    parameters.clear_caches()
    provider_stack.start_test()
    for name, value in {
        "PARAMETER_STORE_PATH": PARAMETER_STORE_PATH,
        "TARGET_STATE_MACHINE_ARN": provider_stack.machine,
        "DATA_BUCKET_NAME": BUCKET,
        "NOTIFICATION_TOPIC_ARN": provider_stack.topic,
        "OWNER_STACK_NAME": OWNER_STACK_NAME,
        **STACK_RESOURCES_ENVIRONMENT,
    }.items():
        monkeypatch.setenv(name, value)
    assert provider_stack.stored() == provider_stack.imported
    return provider_stack


# --------------------------------------------------------------------------------------------------------------
# ml-parameters.json and hyperparameters.json at deploy time.

INTEGER_RANGE = {"Name": "max_depth", "MinValue": "3", "MaxValue": "7", "ScalingType": "Linear"}
CONTINUOUS_RANGE = {"Name": "learn_rate", "MinValue": "0.001", "MaxValue": "0.01", "ScalingType": "Auto"}
LONG_NAME = "n" * 257


def ml(body: Any) -> dict[str, Any]:
    return {"ml-parameters.json": body}


def hp(body: Any) -> dict[str, Any]:
    return {"hyperparameters.json": body}


# (id, uploaded files: name -> a document or raw bytes, words the reason must contain)

# (id, file, body: a document or raw bytes, words the reason must contain)
PARAMETER_FILE_CASES: list[tuple[str, dict[str, Any], str]] = [
    # ml-parameters.json: structure and types
    (
        "missing required key",
        ml(edited(ML_PARAMETERS, "tuningJobName")),
        "ml-parameters.json: tuningJobName: Field required",
    ),
    (
        "missing nested key",
        ml(edited(ML_PARAMETERS, "model.artifactsS3OutputPath")),
        "ml-parameters.json: model.artifactsS3OutputPath: Field required",
    ),
    (
        "text where a number belongs",
        ml(edited(ML_PARAMETERS, "maxParallelTrainingJobs", "two")),
        "maxParallelTrainingJobs: Input should be a valid integer",
    ),
    (
        "boolean where a number belongs",
        ml(edited(ML_PARAMETERS, "maxParallelTrainingJobs", True)),
        "maxParallelTrainingJobs: Input should be a number, not a boolean",
    ),
    (
        "text where an object belongs",
        ml(edited(ML_PARAMETERS, "model", "survival-model")),
        "model: Input should be a valid dictionary",
    ),
    (
        "misspelt key",
        ml(edited(ML_PARAMETERS, "maxParalelTrainingJobs", 2)),
        "maxParalelTrainingJobs: Extra inputs are not permitted",
    ),
    (
        "key given twice",
        ml(b'{"tuningJobName": "a", "maxParallelTrainingJobs": 2, "maxParallelTrainingJobs": 20}'),
        "ml-parameters.json: key 'maxParallelTrainingJobs' appears twice",
    ),
    (
        "array instead of object",
        ml([ML_PARAMETERS]),
        "ml-parameters.json: must be a JSON object, got an array",
    ),
    (
        "truncated JSON",
        ml(json.dumps(ML_PARAMETERS).encode()[:-2]),
        "ml-parameters.json is not valid JSON: Expecting",
    ),
    (
        "not UTF-8",
        ml(
            json.dumps(ML_PARAMETERS, ensure_ascii=False)
            .replace("survival-endpoint", "caf\u00e9")
            .encode("latin-1")
        ),
        "ml-parameters.json is not valid JSON: not UTF-8 text",
    ),
    (
        "template placeholder left in",
        ml(edited(ML_PARAMETERS, "trainingImage", "<account-id>.dkr.ecr.us-east-1.amazonaws.com/h2o:1")),
        "trainingImage still holds the template placeholder",
    ),
    # ml-parameters.json: values SageMaker or Auto Scaling would refuse minutes into a run
    (
        "endpoint name over 63 characters",
        ml(edited(ML_PARAMETERS, "endpointName", "e" * 64)),
        "endpointName: String should have at most 63 characters",
    ),
    (
        "name with characters SageMaker refuses",
        ml(edited(ML_PARAMETERS, "tuningJobName", "survival_tuning")),
        "tuningJobName: String should match pattern",
    ),
    (
        "instance type without ml. prefix",
        ml(edited(ML_PARAMETERS, "trainingInstanceType", "c5.2xlarge")),
        "trainingInstanceType: String should match pattern",
    ),
    (
        "min capacity above max capacity",
        ml(edited(ML_PARAMETERS, "autoscalingMinCapacity", 5)),
        "autoscalingMinCapacity (5) is greater than autoscalingMaxCapacity (4)",
    ),
    (
        "unknown tuning strategy",
        ml(edited(ML_PARAMETERS, "tuningStrategy", "Genetic")),
        "tuningStrategy: Input should be 'Bayesian', 'Random', 'Grid' or 'Hyperband'",
    ),
    # hyperparameters.json: ranges
    (
        "MinValue above MaxValue",
        hp(ranges(IntegerParameterRanges=[INTEGER_RANGE | {"MinValue": "9"}])),
        "max_depth: MinValue (9) is greater than MaxValue (7)",
    ),
    (
        "unknown ScalingType",
        hp(ranges(ContinuousParameterRanges=[CONTINUOUS_RANGE | {"ScalingType": "Exponential"}])),
        "parameterRanges.ContinuousParameterRanges.0.ScalingType: Input should be 'Auto'",
    ),
    (
        "logarithmic range from 0",
        hp(
            ranges(
                ContinuousParameterRanges=[CONTINUOUS_RANGE | {"MinValue": "0", "ScalingType": "Logarithmic"}]
            )
        ),
        "learn_rate: Logarithmic scaling needs MinValue > 0",
    ),
    (
        "reverse-logarithmic integer range",
        hp(ranges(IntegerParameterRanges=[INTEGER_RANGE | {"ScalingType": "ReverseLogarithmic"}])),
        "max_depth: ReverseLogarithmic scaling is for ContinuousParameterRanges within 0 <= x < 1",
    ),
    (
        "reverse-logarithmic range below 0",
        hp(
            ranges(
                ContinuousParameterRanges=[
                    CONTINUOUS_RANGE
                    | {"MinValue": "-0.5", "MaxValue": "0.5", "ScalingType": "ReverseLogarithmic"}
                ]
            )
        ),
        "learn_rate: ReverseLogarithmic scaling needs 0 <= MinValue and MaxValue < 1",
    ),
    (
        "bound without a value",
        hp(ranges(ContinuousParameterRanges=[edited(CONTINUOUS_RANGE, "MaxValue")])),
        "parameterRanges.ContinuousParameterRanges.0.MaxValue: Field required",
    ),
    (
        "fractional integer bound",
        hp(ranges(IntegerParameterRanges=[INTEGER_RANGE | {"MinValue": "2.5"}])),
        "parameterRanges.IntegerParameterRanges.0.MinValue: Input should be a valid integer",
    ),
    (
        "nan as a bound",
        hp(ranges(ContinuousParameterRanges=[CONTINUOUS_RANGE | {"MinValue": "nan"}])),
        "parameterRanges.ContinuousParameterRanges.0.MinValue: Input should be a finite number",
    ),
    (
        "NaN literal in the JSON",
        hp(
            json.dumps(ranges(ContinuousParameterRanges=[CONTINUOUS_RANGE])).replace('"0.01"', "NaN").encode()
        ),
        "hyperparameters.json: NaN is not a JSON number",
    ),
    (
        "range name over 256 characters",
        hp(ranges(IntegerParameterRanges=[INTEGER_RANGE | {"Name": LONG_NAME}])),
        "parameterRanges.IntegerParameterRanges.0.Name: String should have at most 256 characters",
    ),
    (
        "categorical value over 256 characters",
        hp(ranges(CategoricalParameterRanges=[{"Name": "histogram_type", "Values": ["AUTO", LONG_NAME]}])),
        "parameterRanges.CategoricalParameterRanges.0.Values.1: String should have at most 256 characters",
    ),
    (
        "31 categorical values",
        hp(ranges(CategoricalParameterRanges=[{"Name": "nbins", "Values": [str(n) for n in range(31)]}])),
        "parameterRanges.CategoricalParameterRanges.0.Values: List should have at most 30 items",
    ),
    (
        "31 ranges",
        hp(ranges(IntegerParameterRanges=[INTEGER_RANGE | {"Name": f"p{n}"} for n in range(31)])),
        "parameterRanges: 31 ranges; a SageMaker tuning job searches at most 30",
    ),
    (
        "Grid strategy with an integer range",
        ml(edited(ML_PARAMETERS, "warmStart") | {"tuningStrategy": "Grid"})
        | hp(ranges(IntegerParameterRanges=[INTEGER_RANGE])),
        "hyperparameters.json: parameterRanges: the Grid strategy takes only CategoricalParameterRanges",
    ),
    # hyperparameters.json: static values and Hyperband
    (
        "static name over 256 characters",
        hp(with_static(**{LONG_NAME: "1"})),
        "staticHyperParameters: 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn'...: hyperparameter names have 1 to 256",
    ),
    (
        "static value over 2500 characters",
        hp(with_static(seed="1" * 2501)),
        "staticHyperParameters.seed: String should have at most 2500 characters",
    ),
    (
        "static value that is an object",
        hp(with_static(seed={"value": 1})),
        "staticHyperParameters: seed: hyperparameter values must be strings, numbers or booleans, not dict",
    ),
    (
        "static training dict that does not parse",
        hp(with_static(training="{'target': 'Survived'")),
        "staticHyperParameters: training is not a dict literal",
    ),
    (
        "tuned and static at once",
        hp(with_static(max_depth="5") | {"parameterRanges": {"IntegerParameterRanges": [INTEGER_RANGE]}}),
        "parameters are both tuned and static: max_depth",
    ),
    (
        "Hyperband MinResource above MaxResource",
        hp(HYPERPARAMETERS | {"hyperbandStrategyConfig": {"MinResource": 50, "MaxResource": 10}}),
        "hyperbandStrategyConfig: MinResource (50) is greater than MaxResource (10)",
    ),
    (
        "Hyperband misspelt key",
        hp(HYPERPARAMETERS | {"hyperbandStrategyConfig": {"MaxResources": 10}}),
        "hyperbandStrategyConfig.MaxResources: Extra inputs are not permitted",
    ),
    (
        "document over SSM's 8 KB",
        hp(with_static(**{f"custom_{n}": "v" * 100 for n in range(80)})),
        "hyperparameters is 10",  # ... bytes as stored; the message gives the size and the limit
    ),
]


@pytest.mark.parametrize(
    ("uploads", "reason"),
    [case[1:] for case in PARAMETER_FILE_CASES],
    ids=[case[0] for case in PARAMETER_FILE_CASES],
)
def test_bad_parameter_file_fails_the_deployment_and_leaves_ssm_as_it_was(
    provider: Provider, uploads: dict[str, Any], reason: str
) -> None:
    for file, body in uploads.items():
        provider.put(file, body)
    new_path = f"/another-stack-{uuid.uuid4().hex[:8]}"

    created = provider.run_import("Create", path=new_path)
    assert created["Status"] == "FAILED"
    assert reason in created["Reason"]
    assert provider.stored(new_path) == {}

    updated = provider.run_import("Update")
    assert updated["Status"] == "FAILED"
    assert updated["Reason"] == created["Reason"]
    assert updated["PhysicalResourceId"] == f"ssm-parameters:{PARAMETER_STORE_PATH}"
    assert provider.stored() == provider.imported


# --------------------------------------------------------------------------------------------------------------
# manifest.json at run time.


TRAINING_CHANNEL, VALIDATION_CHANNEL = MANIFEST["channels"]

# (id, manifest body: a document or raw bytes, words the notified reason must contain)
MANIFEST_CASES: list[tuple[str, Any, str]] = [
    ("malformed JSON", b'{"channels": [', "manifest.json is not valid JSON: Expecting"),
    ("empty file", b"", "manifest.json is not valid JSON: Expecting value"),
    ("not UTF-8", b'{"channels": "\xe9"}', "manifest.json is not valid JSON: not UTF-8 text"),
    ("array instead of object", [TRAINING_CHANNEL], "manifest.json: must be a JSON object, got an array"),
    ("key given twice", b'{"channels": [], "channels": []}', "manifest.json: key 'channels' appears twice"),
    ("no channels key", {}, "manifest.json: channels: Field required"),
    ("empty channel list", {"channels": []}, "manifest.json: channels: List should have at least 1 item"),
    ("no training channel", {"channels": [VALIDATION_CHANNEL]}, "the 'training' channel is required"),
    (
        "unknown channel name",
        {"channels": [TRAINING_CHANNEL, edited(VALIDATION_CHANNEL, "channelName", "test")]},
        "channels.1.channelName: Input should be 'training' or 'validation'",
    ),
    (
        "channel given twice",
        {"channels": [TRAINING_CHANNEL, TRAINING_CHANNEL]},
        "channel names must be unique, got ['training', 'training']",
    ),
    (
        "S3 URI in another bucket",
        {"channels": [edited(TRAINING_CHANNEL, "s3DataSource.S3Uri", "s3://someone-elses-bucket/t.csv")]},
        "channel 'training' S3Uri s3://someone-elses-bucket/t.csv is outside the data bucket s3://my-ml-bucket/",
    ),
    (
        "S3 URI in a look-alike bucket",
        {"channels": [edited(TRAINING_CHANNEL, "s3DataSource.S3Uri", f"s3://{BUCKET}-copy/t.csv")]},
        f"channel 'training' S3Uri s3://{BUCKET}-copy/t.csv is outside the data bucket",
    ),
    (
        "HTTPS URL instead of S3 URI",
        {
            "channels": [
                edited(TRAINING_CHANNEL, "s3DataSource.S3Uri", f"https://{BUCKET}.s3.amazonaws.com/t")
            ]
        },
        "channels.0.s3DataSource.S3Uri: String should match pattern",
    ),
    (
        "misspelt S3Uri",
        {"channels": [edited(TRAINING_CHANNEL, "s3DataSource", {"S3URI": f"s3://{BUCKET}/t.csv"})]},
        "channels.0.s3DataSource.S3Uri: Field required; channels.0.s3DataSource.S3URI: Extra inputs",
    ),
    (
        "content type that is a number",
        {"channels": [TRAINING_CHANNEL | {"contentType": 1}]},
        "channels.0.contentType: Input should be a valid string",
    ),
]


@pytest.mark.parametrize(
    ("body", "reason"), [case[1:] for case in MANIFEST_CASES], ids=[case[0] for case in MANIFEST_CASES]
)
def test_bad_manifest_is_notified_and_starts_nothing(
    provider: Provider, lambda_context: FakeLambdaContext, body: Any, reason: str
) -> None:
    provider.put(MANIFEST_KEY, body)

    [run] = manifest_trigger.lambda_handler(s3_object_created(MANIFEST_KEY), lambda_context)["runs"]

    assert run["status"] == "REJECTED"
    assert reason in run["reason"]
    assert provider.executions() == []
    assert provider.notifications() == [
        {
            "workflow": "ml-parameter-provider",
            "manifest": f"s3://{BUCKET}/{MANIFEST_KEY}",
            "error": run["reason"],
        }
    ]


DUPLICATE_DELIVERIES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "S3 notification twice": lambda: [s3_object_created(MANIFEST_KEY), s3_object_created(MANIFEST_KEY)],
    "EventBridge event twice": lambda: [
        eventbridge_object_created(MANIFEST_KEY),
        eventbridge_object_created(MANIFEST_KEY),
    ],
    "S3 notification and EventBridge event": lambda: [
        s3_object_created(MANIFEST_KEY),
        eventbridge_object_created(MANIFEST_KEY),
    ],
    "one batch holding the record twice": lambda: [s3_object_created(MANIFEST_KEY, records=2)],
}


@pytest.mark.parametrize("deliveries", DUPLICATE_DELIVERIES.values(), ids=DUPLICATE_DELIVERIES.keys())
def test_duplicate_delivery_of_one_upload_starts_exactly_one_run(
    provider: Provider, lambda_context: FakeLambdaContext, deliveries: Callable[[], list[dict[str, Any]]]
) -> None:
    provider.put(MANIFEST_KEY, MANIFEST)

    runs = [
        run
        for event in deliveries()
        for run in manifest_trigger.lambda_handler(event, lambda_context)["runs"]
    ]

    assert [run["status"] for run in runs] == ["STARTED", "STARTED"]
    [execution] = provider.executions()
    assert {run["executionArn"] for run in runs} == {execution["executionArn"]}
    assert provider.notifications() == []


# --------------------------------------------------------------------------------------------------------------
# Training data through the real `train` process. The jobs that need the H2O JVM start together, once per module,
# so the group costs about one JVM start rather than one each.

TRAIN_EXECUTABLE = Path(sys.executable).with_name("train")
TITANIC = EXAMPLES / "train.csv"
CLASSIFIER = {
    "target": "Survived",
    "classification": "true",
    "ntrees": "5",
    "ignored_columns": "PassengerId,Name,Ticket,Cabin",
}
REGRESSOR = CLASSIFIER | {"target": "Fare", "classification": "false"}
TITANIC_ROWS = len(TITANIC.read_text().splitlines()) - 1
# As the local pipeline runs its jobs: H2O's JVM without the C2 compiler and with the serial GC starts faster.
JOB_ENVIRONMENT = {
    "H2O_GBM_TRAINER_MAX_MEM_SIZE": "512M",
    "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


def titanic_csv(columns: dict[str, Callable[[str], str] | None] | None = None) -> bytes:
    """The example training data with some columns rewritten (a function of the value) or dropped (None)."""
    with TITANIC.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = columns or {}
    names = [name for name in rows[0] if columns.get(name, str) is not None]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: (columns.get(name) or str)(row[name]) for name in names})
    return buffer.getvalue().encode()


# (id, hyperparameters, training CSV, words the failure reason must contain)
TRAINING_DATA_CASES: list[tuple[str, dict[str, str], bytes, str]] = [
    (
        "empty file",
        CLASSIFIER,
        b"",
        "channel 'training': train.csv is empty: its first line must be the CSV header",
    ),
    (
        "header not UTF-8",
        CLASSIFIER,
        b"Survived,Pclass,Na\xefve\n1,3,x\n",
        "channel 'training': cannot read the CSV header of train.csv",
    ),
    (
        "target column missing",
        CLASSIFIER,
        titanic_csv({"Survived": None}),
        "target 'Survived' is not a column of the training data",
    ),
    (
        "header only",
        CLASSIFIER,
        titanic_csv().splitlines(keepends=True)[0],
        "channel 'training' has a header but no rows",
    ),
    (
        "target all missing",
        CLASSIFIER,
        titanic_csv({"Survived": lambda value: ""}),
        f"channel 'training': the target 'Survived' has no values (all {TITANIC_ROWS} rows are missing)",
    ),
    (
        "feature all missing",
        CLASSIFIER,
        titanic_csv({"Age": lambda value: ""}),
        f"channel 'training': column 'Age' has no values (all {TITANIC_ROWS} rows are missing); fix the data or "
        "list it in "
        "ignored_columns",
    ),
    (
        "one-class target",
        CLASSIFIER,
        titanic_csv({"Survived": lambda value: "1"}),
        "channel 'training': the target 'Survived' has one class ('1'); classification needs at least two",
    ),
    (
        "text in a numeric target",
        REGRESSOR,
        titanic_csv({"Fare": lambda value: "cheap" if float(value) < 20 else "dear"}),
        "channel 'training': classification is false but the target 'Fare' is not numeric",
    ),
    (
        "constant numeric target",
        REGRESSOR,
        titanic_csv({"Fare": lambda value: "7.25"}),
        "channel 'training': the target 'Fare' has one value (7.25); regression needs it to vary",
    ),
]


@pytest.fixture(scope="module")
def training_jobs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[subprocess.Popen, Path]]]:
    """Every training-data case started as its own `train` process, all at once."""
    started = {}
    for name, hyperparameters, training_csv, _ in TRAINING_DATA_CASES:
        base_dir = lay_out_training_job(
            tmp_path_factory.mktemp("job"),
            hyperparameters,
            [InputChannel("training", {"train.csv": training_csv})],
        )
        with (base_dir / "stderr").open("wb") as stderr:
            process = subprocess.Popen(
                [str(TRAIN_EXECUTABLE)],
                env=os.environ | JOB_ENVIRONMENT | {"SAGEMAKER_BASE_DIR": str(base_dir)},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        started[name] = (process, base_dir)
    yield started
    for process, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.h2o
@pytest.mark.parametrize(
    ("name", "reason"),
    [(case[0], case[3]) for case in TRAINING_DATA_CASES],
    ids=[case[0] for case in TRAINING_DATA_CASES],
)
def test_bad_training_data_fails_the_job_naming_the_column(
    training_jobs: dict[str, tuple[subprocess.Popen, Path]], name: str, reason: str
) -> None:
    process, base_dir = training_jobs[name]
    process.wait(timeout=180)
    stderr = (base_dir / "stderr").read_text(errors="replace")

    assert process.returncode == 2, stderr
    failure = (base_dir / "output" / "failure").read_text()
    assert reason in failure
    assert failure.count("\n") == 1 and failure.endswith("\n")
    assert "Traceback" not in stderr
    assert not any((base_dir / "model").glob("*"))  # no MOJO, no metadata, no genmodel jar
