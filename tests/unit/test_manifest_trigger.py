"""The manifest trigger against moto: starts one run per upload, rejects bad files clearly, starts nothing then.

The bad manifests and duplicate deliveries are listed in tests/reliability/test_bad_inputs.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import manifest_trigger
import pytest
from aws_lambda_powertools.utilities import parameters
from events import (
    BUCKET,
    OWNER_STACK_NAME,
    STACK_RESOURCES_ENVIRONMENT,
    eventbridge_object_created,
    example,
    s3_object_created,
)
from moto import mock_aws
from workflow_common.parameter_store import write_documents

KEY = "manifests/titanic run/manifest.json"
ML_PARAMETERS = {
    "tuningJobName": "survival-tuning",
    "trainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-trainer:1",
    "inferenceImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-predictor:1",
    "maxParallelTrainingJobs": "2",
    "maxNumberOfTrainingJobs": "4",
    "endpointName": "survival-endpoint",
    "model": {"artifactsS3OutputPath": f"s3://{BUCKET}/model-artifacts/", "name": "survival-model"},
}
MANIFEST = example("manifest.json")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    parameters.clear_caches()
    with mock_aws():
        s3, sfn, sns, ssm = (boto3.client(name) for name in ("s3", "stepfunctions", "sns", "ssm"))
        s3.create_bucket(Bucket=BUCKET)
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        queue = boto3.client("sqs").create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = sfn.create_state_machine(
            name="workflow",
            roleArn=role,
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        )["stateMachineArn"]
        write_documents(
            ssm,
            "/ml-project",
            {
                "ml-parameters": ML_PARAMETERS,
                "hyperparameters": example("hyperparameters.json"),
            },
            owner="stack",
        )
        for name, value in {
            "PARAMETER_STORE_PATH": "/ml-project",
            "TARGET_STATE_MACHINE_ARN": machine,
            "DATA_BUCKET_NAME": BUCKET,
            "NOTIFICATION_TOPIC_ARN": topic,
            "OWNER_STACK_NAME": OWNER_STACK_NAME,
            **STACK_RESOURCES_ENVIRONMENT,
        }.items():
            monkeypatch.setenv(name, value)
        yield {"s3": s3, "sfn": sfn, "ssm": ssm, "machine": machine, "queue": queue}


def upload(aws: dict[str, Any], body: str | bytes, key: str = KEY) -> dict[str, Any]:
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=body)
    return s3_object_created(key)


def executions(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]


def notifications(aws: dict[str, Any]) -> list[dict[str, Any]]:
    messages = (
        boto3.client("sqs").receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", [])
    )
    return [json.loads(message["Body"]) for message in messages]


def test_upload_starts_one_run_with_the_workflow_input(aws, lambda_context) -> None:
    result = manifest_trigger.lambda_handler(upload(aws, json.dumps(MANIFEST)), lambda_context)
    [run] = result["runs"]
    assert run["status"] == "STARTED"
    [execution] = executions(aws)
    assert execution["name"].startswith("survival-tuning-11222100-")
    document = json.loads(aws["sfn"].describe_execution(executionArn=execution["executionArn"])["input"])
    assert document["manifest"] == f"s3://{BUCKET}/{KEY}"  # the URL-encoded key was decoded
    assert document["tuning"]["hyperParameterTuningJobName"] == execution["name"]
    assert (
        document["tuning"]["hyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] == 2
    )
    assert len(document["tuning"]["trainingJobDefinition"]["InputDataConfig"]) == 2


def test_eventbridge_delivery_starts_the_same_run(aws, lambda_context) -> None:
    aws["s3"].put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(MANIFEST))
    via_notification = manifest_trigger.manifest_uploads(s3_object_created(KEY))
    via_eventbridge = manifest_trigger.manifest_uploads(eventbridge_object_created(KEY))
    assert via_notification == via_eventbridge
    manifest_trigger.lambda_handler(eventbridge_object_created(KEY), lambda_context)
    assert len(executions(aws)) == 1


def test_a_new_upload_of_the_same_key_starts_a_new_run(aws, lambda_context) -> None:
    manifest_trigger.lambda_handler(upload(aws, json.dumps(MANIFEST)), lambda_context)
    manifest_trigger.lambda_handler(s3_object_created(KEY, sequencer="0055AED6DCD90281F0"), lambda_context)
    assert len(executions(aws)) == 2


def test_missing_parameters_are_explained(aws, lambda_context) -> None:
    aws["ssm"].delete_parameter(Name="/ml-project/hyperparameters")
    [run] = manifest_trigger.lambda_handler(upload(aws, json.dumps(MANIFEST)), lambda_context)["runs"]
    assert run["status"] == "REJECTED"
    assert run["reason"].startswith("no hyperparameters under SSM path /ml-project")
    assert executions(aws) == []
    assert [message["error"] for message in notifications(aws)] == [run["reason"]]


def test_invalid_stored_parameters_are_named(aws, lambda_context) -> None:
    aws["ssm"].put_parameter(
        Name="/ml-project/ml-parameters",
        Value=json.dumps(ML_PARAMETERS | {"tuningStrategy": "Genetic"}),
        Overwrite=True,
    )
    [run] = manifest_trigger.lambda_handler(upload(aws, json.dumps(MANIFEST)), lambda_context)["runs"]
    assert run["reason"].startswith("ml-parameters: tuningStrategy: Input should be")
    assert executions(aws) == []


def test_aws_errors_propagate_for_lambda_retries(aws, lambda_context) -> None:
    with pytest.raises(aws["s3"].exceptions.NoSuchKey):
        manifest_trigger.lambda_handler(s3_object_created("manifests/gone/manifest.json"), lambda_context)


def test_with_warm_start_a_run_starts_from_the_stacks_last_completed_tuning_job(aws, lambda_context) -> None:
    aws["ssm"].put_parameter(
        Name="/ml-project/ml-parameters",
        Value=json.dumps(ML_PARAMETERS | {"warmStart": {"maxParents": 2}}),
        Overwrite=True,
    )
    manifest_trigger.lambda_handler(upload(aws, json.dumps(MANIFEST)), lambda_context)
    [first] = executions(aws)
    first_input = json.loads(aws["sfn"].describe_execution(executionArn=first["executionArn"])["input"])
    assert "warmStartConfig" not in first_input["tuning"], "no tuning job of the stack had completed yet"
    # The first run's tuning job, as its state machine creates it (moto's are Completed at once).
    tuning = first_input["tuning"]
    boto3.client("sagemaker").create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning["hyperParameterTuningJobName"],
        HyperParameterTuningJobConfig=tuning["hyperParameterTuningJobConfig"],
        TrainingJobDefinition=tuning["trainingJobDefinition"]
        | {
            "AlgorithmSpecification": {"TrainingImage": "trainer:1", "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        },
        Tags=[{"Key": "h2o-sagemaker:stack", "Value": OWNER_STACK_NAME}],
    )

    manifest_trigger.lambda_handler(s3_object_created(KEY, sequencer="0055AED6DCD90281F0"), lambda_context)

    second = next(item for item in executions(aws) if item["name"] != first["name"])
    second_input = json.loads(aws["sfn"].describe_execution(executionArn=second["executionArn"])["input"])
    assert second_input["tuning"]["warmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": first["name"]}],
        "WarmStartType": "TransferLearning",
    }
