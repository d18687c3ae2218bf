"""The local pipeline: the deployed system's flow, on one machine.

1. moto stands in for S3, SSM, SNS, Lambda, Step Functions (its ASL interpreter on) and Application Auto
   Scaling; the local SageMaker emulation runs real training and serving processes.
2. The parent SAM template is deployed with its nested applications (the parameter-import custom resource loads
   ml-parameters.json and hyperparameters.json from the bucket into SSM).
3. The data and then manifest.json are put in the bucket; the S3 notification runs the trigger Lambda, which
   starts the parent state machine; tuning, model creation and endpoint deployment follow.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from h2o_sagemaker_local import api_constraints, api_faults, events, moto_patches
from h2o_sagemaker_local.account import ACCOUNT_ID, DATA_BUCKET, REGION
from h2o_sagemaker_local.api_faults import ApiFaults
from h2o_sagemaker_local.containers import ContainerRuntime, ContainersUnavailable
from h2o_sagemaker_local.errors import PipelineError, RunInterrupted
from h2o_sagemaker_local.events import ProgressListener
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.iam.enforcement import AccessControl
from h2o_sagemaker_local.iam.simulator import PolicySimulator
from h2o_sagemaker_local.project import Project, find_project
from h2o_sagemaker_local.sagemaker_emulator import LocalSageMaker
from h2o_sagemaker_local.stack import Deployer, FunctionRegistry, Stack

STACK_NAME = "h2o-local"
EXECUTION_ARN = re.compile(r"arn:aws:states:[\w-]+:\d+:execution:[\w-]+:[\w-]+")
TERMINAL_EXECUTION_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
POLL_SECONDS = 0.2  # how often a followed execution's status is read
HISTORY_EVERY_POLLS = 5


@dataclass(frozen=True)
class RunResult:
    execution_arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    history: dict[str, list[dict[str, Any]]]  # execution ARN -> events: the run's, then its child executions'


@dataclass(frozen=True)
class TickResult:
    plan: dict[str, Any]  # what the schedule's target returned
    execution_arn: str | None  # the run the tick's manifest started, if any


def ml_parameters_for_local_run(
    document: dict[str, Any],
    max_jobs: int | None,
    max_parallel: int | None,
    early_stopping: str | None = None,
) -> dict[str, Any]:
    """The user's ml-parameters with the local budget (and early stopping) applied and a one-second endpoint
    poll."""
    document = dict(document)
    if max_jobs is not None:
        document["maxNumberOfTrainingJobs"] = max_jobs
    if max_parallel is not None:
        document["maxParallelTrainingJobs"] = max_parallel
    if early_stopping is not None:
        document["trainingJobEarlyStoppingType"] = early_stopping
    document["endpointPollIntervalSeconds"] = 1
    return document


class LocalPipeline:
    """Owns the emulated AWS for one session; ``run`` may be called several times (the second run updates)."""

    def __init__(
        self,
        workdir: Path,
        listener: ProgressListener | None = None,
        seed: int | None = None,
        api_fault_rate: float = 0.0,
        containers: bool = False,
        project: Project | None = None,
    ):
        """``api_fault_rate``: the fraction of the state machines' and functions' AWS calls that fail with the
        errors AWS returns (``api_faults``). ``containers``: training jobs and endpoints run in the built images.
        ``project``: the checkout to deploy (default: the one at or above the current folder)."""
        self.workdir = workdir
        self.project = project or find_project()
        self.api_faults = ApiFaults(api_fault_rate, seed) if api_fault_rate else None
        self.listener = listener or events.ignore
        try:
            runtime = ContainerRuntime.detect(self.project.containers_conf) if containers else None
        except ContainersUnavailable as error:
            raise PipelineError(str(error)) from None
        self.sagemaker = LocalSageMaker(
            workdir, region=REGION, listener=self.listener, seed=seed, containers=runtime
        )
        self.registry = FunctionRegistry(log_dir=workdir / "logs")
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self.access = AccessControl(PolicySimulator(search_from=self.project.root), ACCOUNT_ID, REGION)
        self.stack: Stack | None = None
        # Set from a signal handler (Ctrl-C): a run being followed stops at its next poll. Raising from the handler
        # instead can land inside moto, whose broad excepts swallow KeyboardInterrupt.
        self.interrupted = threading.Event()
        self._seeded_variables: list[str] = []
        # Notifications taken from the inbox (and reported) that notifications() has not returned yet.
        self._received: list[tuple[dict[str, Any], dict[str, str]]] = []

    def __enter__(self) -> LocalPipeline:
        self._capture_moto_log()
        self.access.simulator.start()  # Node boots while moto starts
        self._mock.start()
        moto_patches.install(self.registry.resolve)
        self.sagemaker.install()
        self.access.resource_tags["sagemaker"] = self.sagemaker.resource_tags
        # Every AWS call is authorized from here on; the runner's own calls are the user's (an administrator).
        enforcement.install(self.access)
        api_constraints.install()  # after IAM: AWS authorizes a call before it validates it
        if self.api_faults:
            api_faults.install(self.api_faults)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.scheduler = boto3.client("scheduler", region_name=REGION)
        return self

    def close(self, keep_endpoints: bool = False) -> None:
        self.sagemaker.shutdown(keep_endpoints=keep_endpoints)
        if not keep_endpoints:
            self.sagemaker.uninstall()
            api_faults.uninstall()
            api_constraints.uninstall()
            enforcement.uninstall()
            self.access.simulator.close()
            self._mock.stop()
            self.registry.close()
            self._release_moto_log()
            for key in self._seeded_variables:
                os.environ.pop(key, None)
            self._seeded_variables.clear()

    def _keep_function_variables_set(self) -> None:
        """Functions run in this process and switch os.environ for each call. A variable removed after a call can
        vanish under another thread copying os.environ (botocore copies it for every credential resolution: runs
        failed with KeyError 'AWS_REGION', then 'AWS_SESSION_TOKEN'); with every function variable and the role's
        credentials set for the pipeline's life, a call only swaps values. A credential absent before is set empty,
        which botocore reads as unset."""
        variables = [function.environment for function in self.registry.functions.values()]
        variables.append(dict.fromkeys(enforcement.ROLE_CREDENTIAL_VARIABLES, ""))
        for environment in variables:
            for key, value in environment.items():
                if key not in os.environ:
                    os.environ[key] = value
                    self._seeded_variables.append(key)

    def _capture_moto_log(self) -> None:
        """moto's ASL interpreter logs every JSONPath miss (e.g. an optional field a Choice tests) as an error:
        keep it in the work folder instead of on the console, like the service's own logs."""
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self._moto_log = logging.FileHandler(self.workdir / "logs" / "moto.log")
        logger = logging.getLogger("moto")
        logger.addHandler(self._moto_log)
        logger.propagate = False

    def _release_moto_log(self) -> None:
        logger = logging.getLogger("moto")
        logger.removeHandler(self._moto_log)
        logger.propagate = True
        self._moto_log.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def deploy(
        self,
        ml_parameters: dict[str, Any],
        hyperparameters: dict[str, Any],
        parameters: dict[str, str] | None = None,
    ) -> Stack:
        """Create the bucket, upload the parameter files and deploy the parent stack, as `sam deploy` would
        (``parameters``: more stack parameter values, e.g. ``RetrainingSchedule``)."""
        self.s3.create_bucket(Bucket=DATA_BUCKET)
        self.s3.put_object(Bucket=DATA_BUCKET, Key="ml-parameters.json", Body=json.dumps(ml_parameters))
        self.s3.put_object(Bucket=DATA_BUCKET, Key="hyperparameters.json", Body=json.dumps(hyperparameters))
        self.listener(events.Deploying(self.project.template))
        self.deployer = Deployer(self.registry)
        self.stack = self.deployer.deploy(
            STACK_NAME,
            self.project.template,
            {"DataBucketName": DATA_BUCKET, "ParameterStorePath": "/h2o-local"} | (parameters or {}),
        )
        self._keep_function_variables_set()
        self._subscribe_to_notifications(self.stack.outputs["NotificationTopicArn"])
        self.listener(events.Deployed(self.stack.outputs))
        return self.stack

    def update_stack(
        self,
        parameters: dict[str, str],
        ml_parameters: dict[str, Any] | None = None,
        hyperparameters: dict[str, Any] | None = None,
    ) -> Stack:
        """Put the given parameter files in the bucket, then update the stack with the given parameter values,
        as `aws s3 cp` then `sam deploy --parameter-overrides` would. The files are imported again only when a
        property of the import changes (change ``ParametersRevision``), as on AWS."""
        assert self.stack is not None, "deploy first"
        if ml_parameters is not None:
            self.s3.put_object(Bucket=DATA_BUCKET, Key="ml-parameters.json", Body=json.dumps(ml_parameters))
        if hyperparameters is not None:
            self.s3.put_object(
                Bucket=DATA_BUCKET, Key="hyperparameters.json", Body=json.dumps(hyperparameters)
            )
        updated = self.deployer.update(self.stack, parameters)
        self._keep_function_variables_set()
        return updated

    def delete_stack(self) -> None:
        """Delete the parent stack and its nested ones, as `sam delete` would; the data bucket is not the stack's
        and stays."""
        assert self.stack is not None, "deploy first"
        self.deployer.delete(self.stack)
        self.stack = None

    def upload(self, local_path: Path, s3_uri: str) -> None:
        bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
        self.s3.upload_file(str(local_path), bucket, key)

    def run(
        self,
        manifest: dict[str, Any],
        data: dict[str, Path],
        manifest_key: str,
        timeout_seconds: float = 1800,
    ) -> RunResult:
        """Upload the channel data, then the manifest; follow the execution it starts until it ends."""
        return self.follow(self.start(manifest, data, manifest_key), timeout_seconds)

    def start(self, manifest: dict[str, Any], data: dict[str, Path], manifest_key: str) -> str:
        """Upload the channel data, then the manifest; return the ARN of the execution the upload started."""
        assert self.stack is not None, "deploy first"
        for channel in manifest.get("channels", []):
            name = channel.get("channelName")
            if name in data:
                self.upload(data[name], channel["s3DataSource"]["S3Uri"])
        machine_arn = self.stack.outputs["TuningWithDeploymentStateMachineArn"]
        before = {
            item["executionArn"]
            for item in self.sfn.list_executions(stateMachineArn=machine_arn)["executions"]
        }
        self.s3.put_object(Bucket=DATA_BUCKET, Key=manifest_key, Body=json.dumps(manifest))
        self.listener(events.ManifestUploaded(f"s3://{DATA_BUCKET}/{manifest_key}"))
        execution_arn = self._started_execution(machine_arn, before)
        if execution_arn is None:
            raise PipelineError(self._rejection_reason() or "the manifest upload started no execution")
        self.listener(events.ExecutionStarted(execution_arn))
        return execution_arn

    def batch_transform(self, document: dict[str, Any], timeout_seconds: float = 1800) -> RunResult:
        """Start the stack's BatchTransformStateMachine with ``document`` (its input: README, Batch transform) as
        ``aws stepfunctions start-execution`` does, and follow it to its end."""
        assert self.stack is not None, "deploy first"
        machine_arn = self.stack.outputs["BatchTransformStateMachineArn"]
        execution = self.sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(document))
        return self.follow(execution["executionArn"], timeout_seconds)

    def fire_schedule(self, at: datetime) -> TickResult:
        """Deliver one tick of the stack's schedule, scheduled at ``at``, as EventBridge Scheduler does: the
        target's Input with Scheduler's context attributes filled in, sent as the schedule's role (IAM enforced).
        Scheduler invokes a function asynchronously; here the call waits, so the tick's result can be shown."""
        assert self.stack is not None, "deploy first"
        schedules = self.scheduler.list_schedules()["Schedules"]
        if not schedules:
            raise PipelineError("the stack has no schedule: deploy it with RetrainingSchedule set")
        [schedule] = schedules
        target = self.scheduler.get_schedule(Name=schedule["Name"])["Target"]
        context = {
            "scheduled-time": f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
            "schedule-arn": schedule["Arn"],
            "execution-id": f"local-{at.timestamp():.0f}",
            "attempt-number": "1",
        }
        payload = target.get("Input", "")
        for name, value in context.items():
            payload = payload.replace(f"<aws.scheduler.{name}>", value)
        machine_arn = self.stack.outputs["TuningWithDeploymentStateMachineArn"]
        before = {
            item["executionArn"]
            for item in self.sfn.list_executions(stateMachineArn=machine_arn)["executions"]
        }
        lambda_client = enforcement.role_client(
            "lambda", target["RoleArn"], "scheduler.amazonaws.com", "EventBridgeScheduler"
        )
        response = lambda_client.invoke(FunctionName=target["Arn"], Payload=payload.encode())
        result = json.loads(response["Payload"].read())
        if response.get("FunctionError"):
            raise PipelineError(
                f"the schedule's target failed: {result.get('errorType')}: {result.get('errorMessage')}"
            )
        execution_arn = (
            self._started_execution(machine_arn, before) if result.get("status") == "PLANNED" else None
        )
        if result.get("status") == "PLANNED" and execution_arn is None:
            raise PipelineError(self._rejection_reason() or "the tick's manifest started no execution")
        return TickResult(result, execution_arn)

    def follow(self, execution_arn: str, timeout_seconds: float = 1800) -> RunResult:
        """Report the execution's states as they are entered until it ends; stop it after the timeout."""
        deadline = time.monotonic() + timeout_seconds
        reported: set[tuple[str, int]] = set()
        for poll in itertools.count():
            description = self.sfn.describe_execution(executionArn=execution_arn)
            finished = description["status"] in TERMINAL_EXECUTION_STATUSES
            # The histories of every execution of the run cost more than a status: read once a second.
            if finished or poll % HISTORY_EVERY_POLLS == 0:
                history = self.histories(execution_arn)
                self._report_states(history, reported)
            self._take_notifications()
            if finished:
                break
            if time.monotonic() > deadline:
                self.sfn.stop_execution(executionArn=execution_arn, error="LocalTimeout")
                raise PipelineError(f"execution did not finish within {timeout_seconds:.0f} s")
            if self.interrupted.wait(POLL_SECONDS):
                self.sfn.stop_execution(executionArn=execution_arn, error="Interrupted")
                raise RunInterrupted(execution_arn)
        self._take_notifications()
        output = json.loads(description["output"]) if description.get("output") else None
        return RunResult(
            execution_arn,
            description["status"],
            output,
            description.get("error"),
            description.get("cause"),
            history,
        )

    def _report_states(
        self, histories: dict[str, list[dict[str, Any]]], reported: set[tuple[str, int]]
    ) -> None:
        """Tell the listener each state entered, in every execution of the run, once."""
        for arn, history in histories.items():
            for event in history:
                if event["type"].endswith("StateEntered") and (arn, event["id"]) not in reported:
                    reported.add((arn, event["id"]))
                    self.listener(
                        events.StateEntered(
                            execution=arn.rsplit(":", 1)[-1], state=event["stateEnteredEventDetails"]["name"]
                        )
                    )

    def histories(self, execution_arn: str) -> dict[str, list[dict[str, Any]]]:
        """The execution's history and, found in its events, those of the executions it started."""
        histories: dict[str, list[dict[str, Any]]] = {}
        pending = [execution_arn]
        while pending:
            arn = pending.pop(0)
            events = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            histories[arn] = events
            pending += [
                child
                for child in dict.fromkeys(EXECUTION_ARN.findall(json.dumps(events, default=str)))
                if child not in histories and child not in pending
            ]
        return histories

    def _started_execution(self, machine_arn: str, before: set[str]) -> str | None:
        # The notification runs the trigger synchronously inside put_object; a short grace covers async paths.
        for _ in range(20):
            started = [
                item["executionArn"]
                for item in self.sfn.list_executions(stateMachineArn=machine_arn)["executions"]
                if item["executionArn"] not in before
            ]
            if started:
                return started[0]
            time.sleep(0.1)
        return None

    def _subscribe_to_notifications(self, topic_arn: str) -> None:
        """An SQS inbox on the stack's SNS topic, so the run shows the notifications a user would receive."""
        sqs = self.sqs
        self.inbox = sqs.create_queue(QueueName=f"{STACK_NAME}-notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )

    def notifications(self) -> list[dict[str, Any]]:
        """Notifications published since the last call (each a decoded JSON message)."""
        return [message for message, _ in self.notifications_with_attributes()]

    def notifications_with_attributes(self) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """Notifications published since the last call, each with the message attributes filters match."""
        self._take_notifications()
        received, self._received = self._received, []
        return received

    def _take_notifications(self) -> None:
        """Move what the topic delivered to the inbox into ``_received``, telling the listener of each."""
        sqs = self.sqs
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.inbox, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                # Raw delivery: the SNS message attributes arrive as the SQS message's attributes.
                attributes = {
                    name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()
                }
                try:
                    body = json.loads(message["Body"])
                except json.JSONDecodeError:
                    body = {"message": message["Body"]}
                self._received.append((body, attributes))
                self.listener(events.NotificationPublished(attributes, body))
                sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=message["ReceiptHandle"])

    def _rejection_reason(self) -> str | None:
        """The trigger's notification: a rejected manifest, or the record of an event that failed every retry."""
        reasons = []
        for item in self.notifications():
            if item.get("workflow") == "ml-parameter-provider":
                reasons.append(item.get("error"))
            elif item.get("requestContext", {}).get("condition") == "RetriesExhausted":
                error = item.get("responsePayload", {})
                reasons.append(
                    f"the manifest trigger failed {item['requestContext']['approximateInvokeCount']} times "
                    f"(notified on the topic): {error.get('errorType')}: {error.get('errorMessage')}"
                )
        return reasons[-1] if reasons else None
