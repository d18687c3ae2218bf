"""Each moto patch, exercised through small state machines and Lambda functions built here."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel
from botocore.exceptions import ClientError
from h2o_sagemaker_local import moto_patches
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/local"
TERMINAL_STATUSES = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class ModelNotReadyError(Exception):
    pass


class BadInputError(Exception):
    pass


class Handlers:
    """Function name -> handler, with every call recorded."""

    def __init__(self) -> None:
        self.handlers: dict[str, moto_patches.Handler] = {}
        self.calls: list[tuple[str, Any, Any]] = []

    def add(self, name: str, handler: moto_patches.Handler) -> str:
        self.handlers[name] = handler
        client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=ROLE_ARN,
            Handler=f"{name}.handler",
            Code={"ZipFile": _empty_zip()},
            MemorySize=256,
            Timeout=30,
        )
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    def resolve(self, name: str) -> moto_patches.Handler:
        handler = self.handlers[name]

        def recorded(event: Any, context: Any) -> Any:
            self.calls.append((name, event, context))
            return handler(event, context)

        return recorded


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "")
    return buffer.getvalue()


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Handlers]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    registry = Handlers()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client("iam").create_role(RoleName="local", AssumeRolePolicyDocument="{}")
        moto_patches.install(registry.resolve, sync_poll_seconds=0.05)
        try:
            yield registry
        finally:
            moto_patches.uninstall()


def run(definition: dict[str, Any], execution_input: Any = None, timeout: float = 30) -> dict[str, Any]:
    """Create the state machine, run it to its end and return DescribeExecution (output decoded)."""
    sfn = client("stepfunctions")
    machine_arn = create_machine(definition)
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(execution_input or {}))[
        "executionArn"
    ]
    return wait_for(execution_arn, timeout)


def create_machine(definition: dict[str, Any]) -> str:
    return client("stepfunctions").create_state_machine(
        name=f"machine-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]


def wait_for(execution_arn: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        description = client("stepfunctions").describe_execution(executionArn=execution_arn)
        if description["status"] in TERMINAL_STATUSES:
            if "output" in description:
                description["output"] = json.loads(description["output"])
            return description
        assert time.monotonic() < deadline, f"{execution_arn} still running after {timeout} s"
        time.sleep(0.05)


def single_task(resource: str, parameters: dict[str, Any] | None = None, **task: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": resource, "End": True, **task}
    if parameters is not None:
        state["Parameters"] = parameters
    return {"StartAt": "Task", "States": {"Task": state}}


# --- the pin ----------------------------------------------------------------------------------------


def test_installed_moto_is_the_version_the_patches_were_written_for() -> None:
    assert version("moto") == moto_patches.MOTO_VERSION, (
        "moto_patches relies on private moto internals: re-check every patch before moving the pin"
    )


def test_install_refuses_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_patches.moto, "__version__", "5.2.6")
    with pytest.raises(moto_patches.MotoVersionError, match=r"moto 5\.2\.6 is installed"):
        moto_patches.install(lambda name: lambda event, context: None)


def test_install_is_idempotent_and_uninstall_restores_moto(handlers: Handlers) -> None:
    patched_invoke = LambdaFunction.invoke
    replacement = Handlers()
    moto_patches.install(replacement.resolve, sync_poll_seconds=0.01)
    assert LambdaFunction.invoke is patched_invoke
    assert moto_patches._state.resolver == replacement.resolve
    assert state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK == 0.01

    moto_patches.uninstall()
    assert LambdaFunction.invoke is not patched_invoke
    assert state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK == 0.5
    assert "applicationautoscaling" not in moto_patches.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    moto_patches.install(handlers.resolve, sync_poll_seconds=0.05)  # the fixture uninstalls again


def test_uninstall_also_removes_the_sagemaker_emulations_patches(handlers: Handlers, tmp_path: Path) -> None:
    from h2o_sagemaker_local.sagemaker_emulator import LocalSageMaker
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    original_create_model = SageMakerResponse.create_model
    original_invoke = SageMakerRuntimeResponse.invoke_endpoint
    emulator = LocalSageMaker(tmp_path)
    emulator.install()
    assert SageMakerResponse.create_model is not original_create_model
    assert SageMakerResponse.update_endpoint  # moto has none: the emulation adds it

    emulator.uninstall()
    emulator.shutdown()
    moto_patches.uninstall()
    assert SageMakerResponse.create_model is original_create_model
    assert SageMakerRuntimeResponse.invoke_endpoint is original_invoke
    assert not hasattr(SageMakerResponse, "update_endpoint")
    assert not hasattr(SageMakerResponse, "_routed_to_local_sagemaker")
    moto_patches.install(handlers.resolve, sync_poll_seconds=0.05)  # the fixture uninstalls again


# --- 1. Lambda in process ----------------------------------------------------------------------------


def test_lambda_invoke_task_runs_the_handler_with_a_context(handlers: Handlers) -> None:
    def score(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "doubled": event["value"] * 2,
            "function": context.function_name,
            "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "request_id": context.aws_request_id,
            "stream": context.log_stream_name,
        }

    arn = handlers.add("score", score)
    definition = single_task(
        "arn:aws:states:::lambda:invoke",
        {"FunctionName": arn, "Payload": {"value.$": "$.value"}},
        OutputPath="$.Payload",
    )

    result = run(definition, {"value": 21})

    assert result["status"] == "SUCCEEDED", result
    output = result["output"]
    assert output["doubled"] == 42
    assert output["function"] == "score"
    assert output["memory"] == 256
    assert output["arn"] == arn
    assert 0 < output["remaining_ms"] <= 30_000
    uuid.UUID(output["request_id"])
    assert output["stream"].endswith(output["request_id"])


def test_raised_errors_drive_retry_and_catch_by_their_type_name(handlers: Handlers) -> None:
    attempts: list[int] = []

    def flaky(event: dict[str, Any], context: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ModelNotReadyError("endpoint still creating")
        raise BadInputError("column Age is missing")

    arn = handlers.add("flaky", flaky)
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": arn,
                "Retry": [{"ErrorEquals": ["ModelNotReadyError"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["BadInputError"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }

    result = run(definition)

    assert result["status"] == "SUCCEEDED", result
    assert len(attempts) == 2
    error = result["output"]["error"]
    assert error["Error"] == "BadInputError"
    cause = json.loads(error["Cause"])
    assert cause["errorType"] == "BadInputError"
    assert cause["errorMessage"] == "column Age is missing"
    assert any("flaky" in line for line in cause["stackTrace"])


def test_boto3_invoke_reports_a_raised_error_as_unhandled_function_error(handlers: Handlers) -> None:
    def reject(event: dict[str, Any], context: Any) -> None:
        raise BadInputError(f"no manifest in {event['bucket']}")

    handlers.add("reject", reject)

    response = client("lambda").invoke(
        FunctionName="reject", Payload=json.dumps({"bucket": "data"}), LogType="Tail"
    )

    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "BadInputError"
    assert payload["errorMessage"] == "no manifest in data"
    assert "BadInputError" in base64.b64decode(response["LogResult"]).decode()


def test_boto3_invoke_returns_the_json_encoded_result(handlers: Handlers) -> None:
    handlers.add("echo", lambda event, context: {"received": event})

    response = client("lambda").invoke(FunctionName="echo", Payload=b'{"a": [1, 2]}')

    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"received": {"a": [1, 2]}}


def test_unserialisable_result_is_a_marshal_error(handlers: Handlers) -> None:
    handlers.add("leaky", lambda event, context: {"when": object()})

    response = client("lambda").invoke(FunctionName="leaky")

    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.MarshalError"


def test_unknown_handler_is_an_import_error_not_a_crash(handlers: Handlers) -> None:
    handlers.add("ghost", lambda event, context: None)
    del handlers.handlers["ghost"]

    response = client("lambda").invoke(FunctionName="ghost")

    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "ghost" in payload["errorMessage"]


def test_s3_notification_invokes_the_handler_in_process(handlers: Handlers) -> None:
    seen: list[str] = []
    # Event keys arrive URL-encoded, as on AWS (moto also encodes "/").
    arn = handlers.add(
        "on_manifest",
        lambda event, context: seen.append(unquote_plus(event["Records"][0]["s3"]["object"]["key"])),
    )
    s3 = client("s3")
    s3.create_bucket(Bucket="data")
    s3.put_bucket_notification_configuration(
        Bucket="data",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "manifest.json"}]}},
                }
            ]
        },
    )

    s3.put_object(Bucket="data", Key="runs/train.csv", Body=b"a,b\n")
    s3.put_object(Bucket="data", Key="runs/manifest.json", Body=b"{}")

    assert seen == ["runs/manifest.json"]


def test_sns_delivers_to_a_lambda_subscriber_the_event_sns_sends_asynchronously_and_filtered(
    handlers: Handlers,
) -> None:
    received: list[dict[str, Any]] = []

    def failing_once_then_recording(event: dict[str, Any], context: Any) -> None:
        if not received and len(handlers.calls) == 1:
            raise BadInputError("first attempt fails")
        received.append(event)

    arn = handlers.add("on_notification", failing_once_then_recording)
    sns = client("sns")
    topic = sns.create_topic(Name="notifications")["TopicArn"]
    subscription = sns.subscribe(
        TopicArn=topic,
        Protocol="lambda",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps({"status": ["FAILED"]})},
    )["SubscriptionArn"]

    def publish(status: str) -> str:
        return sns.publish(
            TopicArn=topic,
            Message='{"stage": "Failed"}',
            Subject="failed",
            MessageAttributes={"status": {"DataType": "String", "StringValue": status}},
        )["MessageId"]

    publish("SUCCEEDED")  # filtered out
    message_id = publish("FAILED")

    assert len(handlers.calls) == 2, "the failed attempt is retried, as for any asynchronous event"
    [event] = received
    [record] = SnsModel.model_validate(event).Records
    assert record.EventSubscriptionArn == subscription
    assert (record.Sns.TopicArn, record.Sns.MessageId, record.Sns.Subject) == (topic, message_id, "failed")
    assert event["Records"][0]["Sns"]["MessageAttributes"] == {
        "status": {"Type": "String", "Value": "FAILED"}
    }


def test_s3_events_carry_a_sequencer_that_grows_and_a_version_id_when_versioned(handlers: Handlers) -> None:
    objects: list[dict[str, Any]] = []
    arn = handlers.add(
        "on_upload", lambda event, context: objects.append(event["Records"][0]["s3"]["object"])
    )
    s3 = client("s3")
    s3.create_bucket(Bucket="data")
    s3.put_bucket_notification_configuration(
        Bucket="data",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )

    s3.put_object(Bucket="data", Key="manifest.json", Body=b"{}")
    s3.put_object(Bucket="data", Key="manifest.json", Body=b"{}")
    s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
    version_id = s3.put_object(Bucket="data", Key="manifest.json", Body=b"{}")["VersionId"]

    sequencers = [int(item["sequencer"], 16) for item in objects]
    assert sequencers == sorted(set(sequencers)) and len(sequencers) == 3
    assert [item.get("versionId") for item in objects] == [None, None, version_id]


# --- 2. and 3. normalisation, startExecution.sync, datetimes ----------------------------------------------


def child_machine(states: dict[str, Any]) -> str:
    return create_machine({"StartAt": next(iter(states)), "States": states})


def parent_of(child_arn: str, resource: str, **task: Any) -> dict[str, Any]:
    return single_task(
        resource,
        {"StateMachineArn": child_arn, "Name.$": "$.runName", "Input": {"value.$": "$.value"}},
        **task,
    )


def test_start_execution_sync2_returns_the_child_output_as_json(handlers: Handlers) -> None:
    child_arn = child_machine({"Score": {"Type": "Pass", "Parameters": {"score.$": "$.value"}, "End": True}})

    result = run(
        parent_of(child_arn, "arn:aws:states:::states:startExecution.sync:2"),
        {"runName": "run-1", "value": 7},
    )

    assert result["status"] == "SUCCEEDED", result
    output = result["output"]
    assert output["Status"] == "SUCCEEDED"
    assert output["Output"] == {"score": 7}
    assert output["Input"] == {"value": 7}
    assert output["ExecutionArn"].endswith(":run-1")
    assert isinstance(output["StartDate"], int)
    assert isinstance(output["StopDate"], int)


def test_start_execution_sync_keeps_the_child_output_a_string(handlers: Handlers) -> None:
    child_arn = child_machine({"Score": {"Type": "Pass", "Parameters": {"score.$": "$.value"}, "End": True}})

    result = run(
        parent_of(child_arn, "arn:aws:states:::states:startExecution.sync"), {"runName": "run-2", "value": 3}
    )

    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]["Output"]) == {"score": 3}


def test_failed_child_fails_the_task_with_its_error_in_the_cause(handlers: Handlers) -> None:
    child_arn = child_machine(
        {"Broken": {"Type": "Fail", "Error": "TuningFailed", "Cause": "no job succeeded"}}
    )
    definition = parent_of(
        child_arn,
        "arn:aws:states:::states:startExecution.sync:2",
        Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}],
    )
    definition["States"]["Task"].pop("End")
    definition["States"]["Task"]["Next"] = "Done"
    definition["States"]["Done"] = {"Type": "Succeed"}
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}

    result = run(definition, {"runName": "run-3", "value": 1})

    assert result["status"] == "SUCCEEDED", result
    error = result["output"]["error"]
    assert error["Error"] == "States.TaskFailed"
    child = json.loads(error["Cause"])
    assert child["Status"] == "FAILED"
    assert child["Error"] == "TuningFailed"
    assert child["Cause"] == "no job succeeded"
    assert child["ExecutionArn"].endswith(":run-3")


def test_start_execution_without_name_gets_a_unique_uuid_name(handlers: Handlers) -> None:
    sfn = client("stepfunctions")
    machine_arn = child_machine({"Done": {"Type": "Succeed"}})

    first = sfn.start_execution(stateMachineArn=machine_arn)["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine_arn)["executionArn"]

    assert first != second
    uuid.UUID(first.rsplit(":", 1)[-1])


def test_aws_sdk_application_autoscaling_and_its_datetimes(handlers: Handlers) -> None:
    resource_id = "endpoint/titanic/variant/AllTraffic"
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    definition = {
        "StartAt": "Register",
        "States": {
            "Register": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:applicationautoscaling:registerScalableTarget",
                "Parameters": {**target, "MinCapacity": 1, "MaxCapacity": 4},
                "ResultPath": None,
                "Next": "Describe",
            },
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:applicationautoscaling:describeScalableTargets",
                "Parameters": {"ServiceNamespace": "sagemaker", "ResourceIds": [resource_id]},
                "ResultPath": "$.targets",
                "Next": "DeregisterMissing",
            },
            "DeregisterMissing": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:applicationautoscaling:deregisterScalableTarget",
                "Parameters": {**target, "ResourceId": "endpoint/absent/variant/AllTraffic"},
                "Catch": [
                    {
                        "ErrorEquals": ["ApplicationAutoScaling.ObjectNotFoundException"],
                        "ResultPath": "$.missing",
                        "Next": "Done",
                    }
                ],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }

    result = run(definition)

    assert result["status"] == "SUCCEEDED", result
    (registered,) = result["output"]["targets"]["ScalableTargets"]
    assert registered["MaxCapacity"] == 4
    assert isinstance(registered["CreationTime"], str)
    assert registered["CreationTime"][:4].isdigit()
    assert result["output"]["missing"]["Error"] == "ApplicationAutoScaling.ObjectNotFoundException"
    history = client("stepfunctions").get_execution_history(executionArn=result["executionArn"])["events"]
    assert any(event["type"] == "TaskSucceeded" for event in history)
    targets = client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")
    assert len(targets["ScalableTargets"]) == 1


# --- 15. Application Auto Scaling's scalable targets -------------------------------------------------------


def test_deregistering_a_target_deletes_its_policies_and_scheduled_actions_and_only_its_own(
    handlers: Handlers,
) -> None:
    autoscaling = client("application-autoscaling")
    dimension = "sagemaker:variant:DesiredInstanceCount"
    kept, deregistered = (f"endpoint/{name}/variant/AllTraffic" for name in ("kept", "deregistered"))
    for resource_id in (kept, deregistered):
        target = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id, "ScalableDimension": dimension}
        autoscaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
        autoscaling.put_scaling_policy(
            **target,
            PolicyName="invocations",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 70.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
            },
        )
        autoscaling.put_scheduled_action(
            **target,
            ScheduledActionName="nightly",
            Schedule="cron(0 0 * * ? *)",
            ScalableTargetAction={"MinCapacity": 1},
        )

    autoscaling.deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=deregistered, ScalableDimension=dimension
    )

    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    actions = autoscaling.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
    assert [policy["ResourceId"] for policy in policies] == [kept]
    assert [action["ResourceId"] for action in actions] == [kept]
    with pytest.raises(ClientError, match=r"ObjectNotFoundException.*No scalable target registered"):
        autoscaling.put_scaling_policy(
            ServiceNamespace="sagemaker",
            ResourceId=deregistered,
            ScalableDimension=dimension,
            PolicyName="invocations",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={"TargetValue": 70.0},
        )
    with pytest.raises(ClientError, match="ObjectNotFoundException"):
        autoscaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=deregistered, ScalableDimension=dimension
        )


# --- 4. SageMaker -----------------------------------------------------------------------------------------


def tuning_job_parameters(name: str) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {
                "IntegerParameterRanges": [{"Name": "ntrees", "MinValue": "10", "MaxValue": "50"}]
            },
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": "h2o-gbm-trainer:latest",
                "TrainingInputMode": "File",
            },
            "RoleArn": ROLE_ARN,
            "OutputDataConfig": {"S3OutputPath": "s3://data/models/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


def test_sagemaker_tuning_sync_then_model_and_endpoint_config(handlers: Handlers) -> None:
    definition = {
        "StartAt": "Tune",
        "States": {
            "Tune": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync",
                "Parameters": tuning_job_parameters("titanic-tuning"),
                "ResultPath": "$.tuning",
                "Next": "Model",
            },
            "Model": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createModel",
                "Parameters": {
                    "ModelName.$": "$.tuning.BestTrainingJob.TrainingJobName",
                    "ExecutionRoleArn": ROLE_ARN,
                    "PrimaryContainer": {"Image": "h2o-gbm-predictor:latest"},
                },
                "ResultPath": "$.model",
                "Next": "EndpointConfig",
            },
            "EndpointConfig": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createEndpointConfig",
                "Parameters": {
                    "EndpointConfigName": "titanic-config",
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "ModelName.$": "$.tuning.BestTrainingJob.TrainingJobName",
                            "InitialInstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                        }
                    ],
                },
                "ResultPath": "$.endpointConfig",
                "End": True,
            },
        },
    }

    result = run(definition)

    assert result["status"] == "SUCCEEDED", result
    output = result["output"]
    assert output["tuning"]["HyperParameterTuningJobStatus"] == "Completed"
    assert output["tuning"]["HyperParameterTuningJobName"] == "titanic-tuning"
    assert isinstance(output["tuning"]["CreationTime"], int)
    best_job = output["tuning"]["BestTrainingJob"]["TrainingJobName"]
    assert output["model"]["ModelArn"].endswith(f"model/{best_job}")
    assert output["endpointConfig"]["EndpointConfigArn"].endswith("endpoint-config/titanic-config")
    sagemaker = client("sagemaker")
    assert (
        sagemaker.describe_model(ModelName=best_job)["PrimaryContainer"]["Image"]
        == "h2o-gbm-predictor:latest"
    )


def test_sagemaker_sync_polls_until_done_and_fails_on_a_failed_job(
    handlers: Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses = iter(["InProgress", "InProgress", "Failed"])
    original_describe = SageMakerModelBackend.describe_training_job

    def describe_failing(backend: SageMakerModelBackend, training_job_name: str) -> dict[str, Any]:
        description = dict(original_describe(backend, training_job_name))
        description["TrainingJobStatus"] = next(statuses)
        description["FailureReason"] = "AlgorithmError: target column Survived missing"
        return description

    monkeypatch.setattr(SageMakerModelBackend, "describe_training_job", describe_failing)
    job = tuning_job_parameters("unused")["TrainingJobDefinition"]
    definition = single_task(
        "arn:aws:states:::sagemaker:createTrainingJob.sync", {"TrainingJobName": "titanic-1", **job}
    )

    result = run(definition)

    assert result["status"] == "FAILED", result
    assert result["error"] == "States.TaskFailed"
    cause = json.loads(result["cause"])
    assert cause["TrainingJobStatus"] == "Failed"
    assert cause["FailureReason"] == "AlgorithmError: target column Survived missing"
    assert next(statuses, "all read") == "all read"


def test_sagemaker_api_error_is_an_amazon_sagemaker_exception(handlers: Handlers) -> None:
    definition = single_task(
        "arn:aws:states:::sagemaker:createEndpoint",
        {"EndpointName": "titanic", "EndpointConfigName": "absent-config"},
        Retry=[
            {"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "IntervalSeconds": 1, "MaxAttempts": 1}
        ],
    )

    result = run(definition)

    assert result["status"] == "FAILED", result
    assert result["error"] == "SageMaker.AmazonSageMakerException"
    assert "Service: AmazonSageMaker" in result["cause"]
    history = client("stepfunctions").get_execution_history(executionArn=result["executionArn"])["events"]
    assert sum(event["type"] == "TaskFailed" for event in history) == 2


def test_sagemaker_tasks_reach_a_replaced_sagemaker_handler(
    handlers: Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto has no UpdateEndpoint; a local SageMaker emulation adds it and the task uses it unchanged."""
    updates: list[dict[str, Any]] = []

    def update_endpoint(response: SageMakerResponse) -> Any:
        updates.append(json.loads(response.body))
        return moto_action_result({"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/titanic"})

    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
    definition = single_task(
        "arn:aws:states:::sagemaker:updateEndpoint", {"EndpointName": "titanic", "EndpointConfigName": "v2"}
    )

    result = run(definition)

    assert result["status"] == "SUCCEEDED", result
    assert updates == [{"EndpointName": "titanic", "EndpointConfigName": "v2"}]
    assert result["output"] == {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/titanic"}


def moto_action_result(body: dict[str, Any]) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult(body)


# --- sns:publish ------------------------------------------------------------------------------------------


def test_sns_publish_sends_an_object_message_as_json_text(handlers: Handlers) -> None:
    sns, sqs = client("sns"), client("sqs")
    topic_arn = sns.create_topic(Name="notifications")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    definition = single_task(
        "arn:aws:states:::sns:publish",
        {"TopicArn": topic_arn, "Subject": "Tuning finished", "Message": {"status": "ok", "auc.$": "$.auc"}},
    )

    result = run(definition, {"auc": 0.91})

    assert result["status"] == "SUCCEEDED", result
    (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert json.loads(message["Body"]) == {"status": "ok", "auc": 0.91}


# --- 9. error names as AWS sends them ----------------------------------------------------------------------


def raise_on(monkeypatch: pytest.MonkeyPatch, action: str, code: str, message: str) -> None:
    """The SageMaker API answers ``action`` with the error ``code``."""
    from moto.core.exceptions import JsonRESTError

    def failing(response: SageMakerResponse) -> Any:
        raise JsonRESTError(code, message)

    monkeypatch.setattr(SageMakerResponse, action, failing, raising=False)


def test_a_modelled_sagemaker_error_keeps_its_name_and_drives_its_retrier(
    handlers: Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS a quota error is SageMaker.ResourceLimitExceededException, not AmazonSageMakerException: the
    tuner's 60-second retrier for it must be the one that runs."""
    raise_on(
        monkeypatch, "create_endpoint", "ResourceLimitExceeded", "The account-level service limit was met"
    )
    definition = single_task(
        "arn:aws:states:::sagemaker:createEndpoint",
        {"EndpointName": "titanic", "EndpointConfigName": "v1"},
        Retry=[
            {
                "ErrorEquals": ["SageMaker.ResourceLimitExceededException"],
                "IntervalSeconds": 1,
                "MaxAttempts": 1,
            },
            {"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "IntervalSeconds": 1, "MaxAttempts": 3},
        ],
    )

    result = run(definition)

    assert (result["status"], result["error"]) == ("FAILED", "SageMaker.ResourceLimitExceededException")
    assert "Error Code: ResourceLimitExceeded" in result["cause"]
    history = client("stepfunctions").get_execution_history(executionArn=result["executionArn"])["events"]
    assert sum(event["type"] == "TaskFailed" for event in history) == 2, "its own retrier ran, once"


def test_aws_sdk_errors_take_the_sdk_v2_names(handlers: Handlers, monkeypatch: pytest.MonkeyPatch) -> None:
    raise_on(monkeypatch, "update_endpoint", "ValidationException", 'Cannot update in-progress endpoint "x".')
    definition = single_task(
        "arn:aws:states:::aws-sdk:sagemaker:updateEndpoint",
        {"EndpointName": "titanic", "EndpointConfigName": "v2", "RetainAllVariantProperties": True},
    )

    result = run(definition)

    assert (result["status"], result["error"]) == ("FAILED", "SageMaker.SageMakerException")
    assert "Cannot update in-progress endpoint" in result["cause"]


def test_a_function_arn_resource_names_service_errors_as_lambda(handlers: Handlers) -> None:
    """A function ARN that does not exist: Lambda.ResourceNotFoundException, where moto said Exception."""
    definition = single_task(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:absent")

    result = run(definition)

    assert (result["status"], result["error"]) == ("FAILED", "Lambda.ResourceNotFoundException")


# --- 10. integration fields --------------------------------------------------------------------------------


def test_a_field_the_optimised_integration_does_not_take_is_refused_at_creation(handlers: Handlers) -> None:
    """The deployer's old UpdateEndpoint: RetainAllVariantProperties exists in the API, not in the integration."""
    definition = single_task(
        "arn:aws:states:::sagemaker:updateEndpoint",
        {"EndpointName": "titanic", "EndpointConfigName": "v2", "RetainAllVariantProperties": True},
    )

    with pytest.raises(client("stepfunctions").exceptions.InvalidDefinition) as refused:
        create_machine(definition)

    assert (
        'SCHEMA_VALIDATION_FAILED: The field "RetainAllVariantProperties" is not supported by Step Functions '
        "at /States/Task/Parameters" in str(refused.value)
    )


def test_nested_fields_are_checked_against_the_api(handlers: Handlers) -> None:
    definition = single_task(
        "arn:aws:states:::sagemaker:createEndpointConfig",
        {
            "EndpointConfigName": "v1",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName.$": "$.model", "Weight": 1}],
            "Tags": [{"key": "Environment", "Value": "test"}],
        },
    )

    with pytest.raises(client("stepfunctions").exceptions.InvalidDefinition) as refused:
        create_machine(definition)

    assert '"ProductionVariants.Weight"' in str(refused.value) and '"Tags.key"' in str(refused.value)


def test_a_field_arriving_from_a_path_fails_with_states_runtime_which_no_catch_handles(
    handlers: Handlers,
) -> None:
    definition = single_task(
        "arn:aws:states:::sagemaker:createEndpoint",
        {"EndpointName": "titanic", "EndpointConfigName": "v1", "Tags.$": "$.tags"},
        Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
    )
    definition["States"]["Task"].pop("End")
    definition["States"]["Task"]["Next"] = "Caught"
    definition["States"]["Caught"] = {"Type": "Succeed"}

    result = run(definition, {"tags": [{"Key": "Environment", "Value": "test", "Colour": "red"}]})

    assert (result["status"], result["error"]) == ("FAILED", "States.Runtime")
    assert 'The field "Tags.Colour" is not supported by Step Functions' in result["cause"]


def test_aws_sdk_integrations_take_every_field_of_the_api(handlers: Handlers) -> None:
    create_machine(
        single_task(
            "arn:aws:states:::aws-sdk:sagemaker:updateEndpoint",
            {"EndpointName": "titanic", "EndpointConfigName": "v2", "RetainAllVariantProperties": True},
        )
    )
    with pytest.raises(client("stepfunctions").exceptions.InvalidDefinition, match='"RetainAllVariants"'):
        create_machine(
            single_task(
                "arn:aws:states:::aws-sdk:sagemaker:updateEndpoint",
                {"EndpointName": "titanic", "EndpointConfigName": "v2", "RetainAllVariants": True},
            )
        )


REPO = Path(__file__).resolve().parents[2]
ASL_FILES = sorted(path for path in REPO.glob("**/statemachine/*.asl.json") if ".aws-sam" not in path.parts)


def optimised_tasks(states: dict[str, Any], pointer: str = "/States") -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in states.items():
        if (
            state["Type"] == "Task"
            and ":states:::" in state["Resource"]
            and ":aws-sdk:" not in state["Resource"]
        ):
            found.append((f"{pointer}/{name}", state))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found += optimised_tasks(processor["States"], f"{pointer}/{name}/ItemProcessor/States")
    return found


def deployable(asl_file: Path) -> dict[str, Any]:
    """The ASL file with its placeholders filled as DefinitionSubstitutions would (values of the right form)."""
    text = asl_file.read_text().replace("${Partition}", "aws")
    text = re.sub(
        r"\$\{(\w+)Arn\}", lambda match: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{match[1]}", text
    )
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda match: match[1], text))


@pytest.mark.parametrize("asl_file", ASL_FILES, ids=lambda path: path.name)
def test_an_undocumented_field_on_any_optimised_task_of_the_workflow_is_refused(
    handlers: Handlers, asl_file: Path
) -> None:
    """Mutation: each optimised-integration Task of the real ASL files, given one field its integration does not
    document, makes the definition fail as AWS fails it."""
    definition = deployable(asl_file)
    create_machine(definition)  # as written: accepted
    tasks = optimised_tasks(definition["States"])
    assert tasks
    for pointer, _ in tasks:
        mutated = deployable(asl_file)
        state = dict(optimised_tasks(mutated["States"]))[pointer]
        state.setdefault("Parameters", {})["UndocumentedField"] = "x"
        with pytest.raises(client("stepfunctions").exceptions.InvalidDefinition) as refused:
            create_machine(mutated)
        assert (
            f'The field "UndocumentedField" is not supported by Step Functions at {pointer}/Parameters'
            in str(refused.value)
        )
