"""Faults injected into the running local pipeline: real `train` and `serve` processes, the real state machines.

One stack is deployed for the module and lives through the faults in the order a long-lived system could meet
them; each fixture injects one into the running system (never a mocked result) and its tests say what held:

1. one training job of three is SIGKILLed mid-training (``LocalSageMaker.crash_training_job``);
2. a manifest upload's S3 event is delivered again, while its run goes on and after it ended;
3. the endpoint is Updating (``hold_deployments`` keeps the new model server from serving) when a run arrives;
4. the endpoint's predictor is SIGKILLed (``crash_model_server``), then a run tries to deploy to it;
5. the parameter files change in the bucket and the stack is updated (``LocalPipeline.update_stack``);
6. a managed spot job is interrupted mid-training (``interrupt_training_job``) and restarted by SageMaker.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.exceptions import ClientError
from feature_statements import serves_releases_only, serves_the_quality_gate_only, statements_of_stack_roles
from h2o_sagemaker_local import api_faults, moto_patches
from h2o_sagemaker_local.api_faults import ApiFaults
from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.pipeline import DATA_BUCKET, LocalPipeline, PipelineError, RunResult
from h2o_sagemaker_local.stack import REGION
from h2o_sagemaker_local.training import TrainingJob
from polling import wait_until
from process_watch import no_process_left, processes_using
from request_loop import RequestLoop

pytestmark = pytest.mark.h2o

MAX_JOBS, MAX_PARALLEL = 3, 2
RUN_TIMEOUT = 600


# --- the pipeline and helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def options():
    # Early stopping off: which job a fault hits, and how the others end, must not depend on it.
    return parse_arguments(
        ["run", "--max-jobs", str(MAX_JOBS), "--max-parallel", str(MAX_PARALLEL), "--early-stopping", "Off"]
    )


@dataclass
class Faults:
    """The module's pipeline, and the S3 events its manifest trigger received (as moto delivered them)."""

    pipeline: LocalPipeline
    options: Any
    trigger_arn: str
    trigger_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sagemaker(self):
        return self.pipeline.sagemaker

    def start(self, name: str, **manifest_fields: str) -> str:
        _, _, manifest = local_inputs(self.options)
        manifest |= manifest_fields
        data = {"training": self.options.train, "validation": self.options.validation}
        return self.pipeline.start(manifest, data, f"manifests/{name}/manifest.json")

    def tuning_job_name(self, execution_arn: str) -> str:
        execution = self.pipeline.sfn.describe_execution(executionArn=execution_arn)
        return json.loads(execution["input"])["tuning"]["hyperParameterTuningJobName"]

    def training_jobs(self, execution_arn: str) -> list[TrainingJob]:
        tuning = self.sagemaker.tuning_jobs.get(self.tuning_job_name(execution_arn))
        return list(tuning.training_jobs) if tuning else []

    def upload_event(self, name: str) -> dict[str, Any]:
        key = f"manifests/{name}/manifest.json"
        return next(  # S3 URL-encodes the key in its events
            event
            for event in self.trigger_events
            if unquote_plus(event["Records"][0]["s3"]["object"]["key"]) == key
        )

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the manifest trigger with ``event``, as S3 or EventBridge does when it delivers it again."""
        response = boto3.client("lambda", region_name=REGION).invoke(
            FunctionName=self.trigger_arn, Payload=json.dumps(event)
        )
        assert "FunctionError" not in response, response["Payload"].read()
        return json.loads(response["Payload"].read())

    def executions(self) -> list[dict[str, Any]]:
        machine = self.pipeline.stack.outputs["TuningWithDeploymentStateMachineArn"]
        return self.pipeline.sfn.list_executions(stateMachineArn=machine)["executions"]


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory, options) -> Iterator[Faults]:
    ml_parameters, hyperparameters, _ = local_inputs(options)
    with LocalPipeline(tmp_path_factory.mktemp("faults"), seed=11) as pipeline:
        # Delete: the module ends by deleting the stack, so the teardown role's grants are used and checked.
        stack = pipeline.deploy(ml_parameters, hyperparameters, {"OnStackDelete": "Delete"})
        state = Faults(
            pipeline, options, stack.resources["ParameterProvider"]["Outputs"]["ManifestTriggerFunctionArn"]
        )
        record_trigger_events(state)
        yield state
    assert no_process_left(pipeline.workdir), "a training job or model server outlived the pipeline"


def record_trigger_events(state: Faults) -> None:
    """Keep a copy of each event the manifest trigger receives, so a test can deliver the same one again."""
    trigger_name = state.trigger_arn.rsplit(":", 1)[-1]

    def resolve(function_name: str) -> Callable[[dict[str, Any], Any], Any]:
        handler = state.pipeline.registry.resolve(function_name)
        if function_name != trigger_name:
            return handler

        def recording(event: dict[str, Any], context: Any) -> Any:
            state.trigger_events.append(copy.deepcopy(event))
            return handler(event, context)

        return recording

    moto_patches.install(resolve)


def log_of(job: TrainingJob) -> str:
    return job.log_path.read_text(errors="replace") if job.log_path.exists() else ""


def states_entered(
    result_or_histories: RunResult | dict[str, list[dict[str, Any]]], suffix: str
) -> list[str]:
    """Names of the states entered, in order, by the run's child execution whose name ends with ``suffix``."""
    histories = (
        result_or_histories.history if isinstance(result_or_histories, RunResult) else result_or_histories
    )
    return [
        event["stateEnteredEventDetails"]["name"]
        for arn, events in histories.items()
        if arn.endswith(suffix)
        for event in events
        if event["type"].endswith("StateEntered")
    ]


def describe_endpoint(name: str) -> dict[str, Any]:
    return boto3.client("sagemaker", region_name=REGION).describe_endpoint(EndpointName=name)


# --- 1. one training job of three crashes ------------------------------------------------------------------


@dataclass
class CrashRun:
    result: RunResult
    crashed: TrainingJob
    killed_after_seconds: float  # since the job started


@pytest.fixture(scope="module")
def crash_run(faults: Faults) -> CrashRun:
    """SIGKILL to the process group of the first job seen training (its H2O JVM included), mid-training."""
    execution_arn = faults.start("crash")

    def training() -> TrainingJob | None:
        return next(
            (
                job
                for job in faults.training_jobs(execution_arn)
                if job.process and job.process.poll() is None and "training started" in log_of(job)
            ),
            None,
        )

    victim = wait_until(training, "a training job training")
    faults.sagemaker.crash_training_job(victim.name)
    killed_after = time.time() - victim.start_time.timestamp()
    return CrashRun(faults.pipeline.follow(execution_arn, RUN_TIMEOUT), victim, killed_after)


def test_a_crashed_training_job_fails_with_its_reason_and_the_tuning_job_completes_with_the_best_of_the_others(
    faults: Faults, crash_run: CrashRun
) -> None:
    result = crash_run.result
    assert result.status == "SUCCEEDED", result.cause
    tuning_name = result.output["model"]["hyperParameterTuningJobName"]
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    tuning = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    counters = tuning["TrainingJobStatusCounters"]
    assert (counters["Completed"], counters["NonRetryableError"]) == (MAX_JOBS - 1, 1)

    crashed = sagemaker.describe_training_job(TrainingJobName=crash_run.crashed.name)
    assert crashed["TrainingJobStatus"] == "Failed"
    assert crashed["FailureReason"].startswith("train was killed by SIGKILL")
    others = [job for job in faults.training_jobs(result.execution_arn) if job is not crash_run.crashed]
    assert [job.status for job in others] == ["Completed"] * (MAX_JOBS - 1)
    best = max(others, key=lambda job: job.metrics["validation:auc"])
    assert tuning["BestTrainingJob"]["TrainingJobName"] == best.name
    assert result.output["model"]["trainingJobName"] == best.name
    assert no_process_left(crash_run.crashed.base_dir), "the crashed job's JVM outlived it"


# --- 3. the endpoint is Updating when a run arrives (with 2: the same upload delivered twice) ---------------


@dataclass
class UpdatingRuns:
    first: RunResult  # its deployment's new model server is held: the endpoint stays Updating
    arriving: RunResult  # starts while the endpoint is Updating
    waits_before_release: int
    outcomes: list[int | str]
    duplicate_while_running: dict[str, Any]
    executions_while_running: int


@pytest.fixture(scope="module")
def updating_runs(faults: Faults, crash_run: CrashRun) -> UpdatingRuns:
    endpoint_name = crash_run.result.output["endpoint"]["endpointName"]
    endpoint = faults.sagemaker.endpoints[endpoint_name]
    row = "\n".join(faults.options.validation.read_text().splitlines()[:2]).encode()
    with RequestLoop(endpoint.proxy.url, row) as requests:
        faults.sagemaker.hold_deployments()
        try:
            first_arn = faults.start("updating-first")
            duplicate = faults.deliver(faults.upload_event("updating-first"))  # while its run goes on
            executions = len(faults.executions())
            wait_until(lambda: endpoint.status == "Updating", "the first run updating the endpoint")
            arriving_arn = faults.start("updating-arriving")

            def waits() -> int:
                return states_entered(faults.pipeline.histories(arriving_arn), "-deployment").count(
                    "WaitForIdleEndpoint"
                )

            wait_until(lambda: waits() >= 2, "the arriving run waiting for the endpoint twice")
            waits_before_release = waits()
        finally:
            faults.sagemaker.release_deployments()
        first = faults.pipeline.follow(first_arn, RUN_TIMEOUT)
        arriving = faults.pipeline.follow(arriving_arn, RUN_TIMEOUT)
    return UpdatingRuns(first, arriving, waits_before_release, requests.outcomes, duplicate, executions)


def test_a_run_arriving_while_the_endpoint_is_updating_waits_then_updates_it_without_a_failed_request(
    updating_runs: UpdatingRuns,
) -> None:
    first, arriving = updating_runs.first, updating_runs.arriving
    assert first.status == "SUCCEEDED", first.cause
    assert arriving.status == "SUCCEEDED", arriving.cause
    entered = states_entered(arriving, "-deployment")
    # It read its approved version, saw the endpoint Updating, waited (at least twice before the first update
    # was let through), then inspected again and updated it.
    assert entered[:10] == [
        "DescribeModelPackage",
        "HasApprovalStatus",
        "IsModelPackageApproved",
        "HasModelOfPackage",
        "UseModelOfPackage",
        "StartWithNothingDetached",
        "StartWaitingForIdleEndpoint",
        "InspectEndpoint",
        "IsEndpointIdle",
        "HasWaitBudgetForIdleEndpoint",
    ]
    assert entered.count("WaitForIdleEndpoint") >= updating_runs.waits_before_release >= 2
    assert entered.index("UpdateEndpoint") > max(
        i for i, name in enumerate(entered) if name == "WaitForIdleEndpoint"
    )
    assert arriving.output["endpoint"]["updated"] is True
    endpoint = describe_endpoint(arriving.output["endpoint"]["endpointName"])
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == arriving.output["endpoint"]["endpointConfigName"]
    assert endpoint["EndpointConfigName"] != first.output["endpoint"]["endpointConfigName"]
    outcomes = updating_runs.outcomes
    assert outcomes and set(outcomes) == {200}, [item for item in outcomes if item != 200][:3]


def test_the_same_manifest_upload_delivered_twice_starts_one_execution(
    faults: Faults, crash_run: CrashRun, updating_runs: UpdatingRuns
) -> None:
    # While the run goes on: Step Functions returns the running execution (same name, same input).
    [started] = updating_runs.duplicate_while_running["runs"]
    assert started["status"] == "STARTED"
    assert started["executionArn"] == updating_runs.first.execution_arn
    # After it ended (late redelivery): the name is taken, the trigger says so and starts nothing.
    executions = faults.executions()
    [again] = faults.deliver(faults.upload_event("crash"))["runs"]
    assert again["executionArn"] == crash_run.result.execution_arn
    assert faults.executions() == executions
    names = [execution["name"] for execution in executions]
    assert len(names) == len(set(names)) == 3  # crash, updating-first, updating-arriving
    assert updating_runs.executions_while_running == 2


# --- 4. the predictor dies -----------------------------------------------------------------------------------


@dataclass
class DeadPredictor:
    endpoint_name: str
    seconds_to_failed: float
    description: dict[str, Any]
    invoke_error: str
    result: RunResult
    notifications: list[dict[str, Any]]


@pytest.fixture(scope="module")
def dead_predictor(faults: Faults, updating_runs: UpdatingRuns) -> DeadPredictor:
    endpoint_name = updating_runs.arriving.output["endpoint"]["endpointName"]
    faults.pipeline.notifications()  # drop what came before
    started = time.monotonic()
    assert faults.sagemaker.crash_model_server(endpoint_name)
    description = wait_until(
        lambda: (found := describe_endpoint(endpoint_name))["EndpointStatus"] == "Failed" and found,
        "the endpoint reported Failed",
        timeout=30,
    )
    seconds = time.monotonic() - started
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType="text/csv", Body=b"1,female,30")
    result = faults.pipeline.follow(faults.start("dead-predictor"), RUN_TIMEOUT)
    return DeadPredictor(
        endpoint_name, seconds, description, str(refused.value), result, faults.pipeline.notifications()
    )


def test_a_dead_predictor_is_reported_failed_and_the_next_run_fails_with_a_notification(
    faults: Faults, dead_predictor: DeadPredictor
) -> None:
    name = dead_predictor.endpoint_name
    assert dead_predictor.seconds_to_failed < 5
    assert "model server process exited with code -9" in dead_predictor.description["FailureReason"]
    assert "not in service" in dead_predictor.invoke_error

    result = dead_predictor.result
    assert result.status == "FAILED"
    assert states_entered(result, "-deployment")[-4:] == [
        "InspectEndpointFailed",
        "RestoreDetachedAutoScaling",  # nothing was detached: an empty Map
        "NotifyFailure",
        "Failed",
    ]
    # Published once, by the deployment that failed; the parent leaves a failed child run to it.
    [deployer] = [message for message in dead_predictor.notifications if message["stage"] == "Failed"]
    assert (deployer["workflow"], deployer["endpoint"]) == ("EndpointDeployment", name)
    assert (deployer["step"], deployer["error"]) == ("InspectEndpoint", "EndpointFailed")
    assert f"Endpoint {name} is Failed: model server process exited with code -9" in deployer["cause"]
    # Nothing half made: the failed run created no endpoint configuration.
    run_input = json.loads(faults.pipeline.sfn.describe_execution(executionArn=result.execution_arn)["input"])
    configs = boto3.client("sagemaker", region_name=REGION).list_endpoint_configs()["EndpointConfigs"]
    assert run_input["deployment"]["endpointConfigName"] not in [
        item["EndpointConfigName"] for item in configs
    ]


def test_the_failed_endpoint_is_deleted_as_the_notification_says(
    faults: Faults, dead_predictor: DeadPredictor
) -> None:
    [deployer] = [m for m in dead_predictor.notifications if m["workflow"] == "EndpointDeployment"]
    command = re.search(r"aws sagemaker delete-endpoint --endpoint-name ([\w-]+)", deployer["cause"])
    assert command and command.group(1) == dead_predictor.endpoint_name
    boto3.client("sagemaker", region_name=REGION).delete_endpoint(EndpointName=command.group(1))
    assert dead_predictor.endpoint_name not in faults.sagemaker.endpoints
    assert no_process_left(faults.pipeline.workdir / "endpoints"), processes_using(
        faults.pipeline.workdir / "endpoints"
    )


# --- 5. a stack update re-imports changed parameters ------------------------------------------------------


SPOT_JOBS = 2
SPOT_NTREES = "150"
SPOT_WATERMARK = "2026-11-30T08:15:00+00:00"  # the newest training object a scheduled run would name


@dataclass
class UpdatedStack:
    ml_parameters: dict[str, Any]
    hyperparameters: dict[str, Any]
    stored_after_same_revision: dict[str, Any]
    stored_after_new_revision: dict[str, Any]
    previous: dict[str, Any]


def stored_documents(faults: Faults) -> dict[str, Any]:
    path = faults.pipeline.stack.outputs["ParameterStorePath"]
    ssm = boto3.client("ssm", region_name=REGION)
    return {
        name: json.loads(ssm.get_parameter(Name=f"{path}/{name}")["Parameter"]["Value"])
        for name in ("ml-parameters", "hyperparameters")
    }


@pytest.fixture(scope="module")
def updated_stack(faults: Faults, dead_predictor: DeadPredictor) -> UpdatedStack:
    """New files in the bucket: fewer jobs, and jobs long enough to interrupt (static ntrees, no early
    stopping, a checkpoint every second)."""
    previous = stored_documents(faults)
    ml_parameters = previous["ml-parameters"] | {"maxNumberOfTrainingJobs": SPOT_JOBS}
    hyperparameters = copy.deepcopy(previous["hyperparameters"])
    ranges = hyperparameters["parameterRanges"]
    ranges["IntegerParameterRanges"] = [r for r in ranges["IntegerParameterRanges"] if r["Name"] != "ntrees"]
    hyperparameters["staticHyperParameters"] |= {
        "ntrees": SPOT_NTREES,
        "stopping_rounds": "0",
        "checkpoint_interval_seconds": "1",
    }
    # Same ParametersRevision: no property of the import changed, so CloudFormation does not call it.
    faults.pipeline.update_stack({}, ml_parameters=ml_parameters, hyperparameters=hyperparameters)
    same_revision = stored_documents(faults)
    faults.pipeline.update_stack({"ParametersRevision": "2"})
    return UpdatedStack(ml_parameters, hyperparameters, same_revision, stored_documents(faults), previous)


def test_a_stack_update_re_imports_the_parameter_files_when_the_revision_changes(
    updated_stack: UpdatedStack,
) -> None:
    assert updated_stack.previous["ml-parameters"]["maxNumberOfTrainingJobs"] == MAX_JOBS
    assert updated_stack.stored_after_same_revision == updated_stack.previous
    assert updated_stack.stored_after_new_revision == {
        "ml-parameters": updated_stack.ml_parameters,
        "hyperparameters": updated_stack.hyperparameters,
    }


# --- 6. a spot interruption, in the first run with the updated parameters -------------------------------


@dataclass
class SpotRun:
    result: RunResult
    interrupted: TrainingJob
    trees_at_interruption: int
    status_after_interruption: str


def trees_saved(job: TrainingJob) -> int:
    saved = re.findall(r"checkpoint saved: (\d+) of", log_of(job))
    return int(saved[-1]) if saved else 0


@pytest.fixture(scope="module")
def spot_run(faults: Faults, updated_stack: UpdatedStack) -> SpotRun:
    # As a scheduled run's manifest, it names the data's watermark: the parent records it once the run completed.
    execution_arn = faults.start("spot", dataWatermark=SPOT_WATERMARK)

    def checkpointed() -> TrainingJob | None:
        return next((job for job in faults.training_jobs(execution_arn) if trees_saved(job) >= 30), None)

    job = wait_until(checkpointed, "a training job with a checkpoint of 30 trees")
    faults.sagemaker.interrupt_training_job(job.name)
    trees = trees_saved(job)
    description = boto3.client("sagemaker", region_name=REGION).describe_training_job(
        TrainingJobName=job.name
    )
    return SpotRun(
        faults.pipeline.follow(execution_arn, RUN_TIMEOUT), job, trees, description["TrainingJobStatus"]
    )


def test_the_next_run_uses_the_re_imported_parameters(faults: Faults, spot_run: SpotRun) -> None:
    result = spot_run.result
    assert result.status == "SUCCEEDED", result.cause
    tuning = faults.sagemaker.tuning_jobs[result.output["model"]["hyperParameterTuningJobName"]]
    assert (
        tuning.request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
        == SPOT_JOBS
    )
    assert len(tuning.training_jobs) == SPOT_JOBS
    assert {job.request["HyperParameters"]["ntrees"] for job in tuning.training_jobs} == {SPOT_NTREES}
    # The deleted endpoint was created again.
    assert result.output["endpoint"]["updated"] is False
    assert describe_endpoint(result.output["endpoint"]["endpointName"])["EndpointStatus"] == "InService"


def test_a_completed_run_records_its_manifests_data_watermark(spot_run: SpotRun) -> None:
    assert spot_run.result.status == "SUCCEEDED", spot_run.result.cause
    parameter = boto3.client("ssm", region_name=REGION).get_parameter(Name="/h2o-local/data-watermark")
    assert parameter["Parameter"]["Value"] == SPOT_WATERMARK


def test_an_interrupted_spot_job_restarts_and_resumes_from_its_checkpoint(spot_run: SpotRun) -> None:
    job = spot_run.interrupted
    assert spot_run.status_after_interruption == "InProgress"
    assert (job.status, job.interruptions) == ("Completed", 1)
    statuses = [item["Status"] for item in job.describe()["SecondaryStatusTransitions"]]
    assert statuses == [
        "Downloading",
        "Training",
        "Interrupted",
        "Restarting",
        "Training",
        "Uploading",
        "Completed",
    ]
    log = log_of(job)
    assert "stopped by SIGTERM" in log
    [resumed] = re.findall(r"resumed from checkpoint: (\d+) trees already built", log)
    assert int(resumed) >= spot_run.trees_at_interruption >= 30
    assert "training finished" in log and "validation:auc=" in log.split("resumed from checkpoint")[1]


# --- 7. two runs both find the endpoint idle: the second's UpdateEndpoint meets the first's update -------------


@dataclass
class RacedUpdate:
    result: RunResult
    endpoint_config_before: str


@pytest.fixture(scope="module")
def raced_update(faults: Faults, spot_run: SpotRun) -> RacedUpdate:
    """The other run's update takes long (held), as SageMaker's take minutes: this run's UpdateEndpoint retries
    run out while it goes on."""
    endpoint_name = spot_run.result.output["endpoint"]["endpointName"]
    before = describe_endpoint(endpoint_name)["EndpointConfigName"]
    faults.sagemaker.race_next_update(endpoint_name)
    faults.sagemaker.hold_deployments()
    try:
        execution_arn = faults.start("raced-update")
        wait_until(
            lambda: (
                "IsEndpointBusyForUpdate"
                in states_entered(faults.pipeline.histories(execution_arn), "-deployment")
            ),
            "the run found the endpoint busy after its UpdateEndpoint retries",
            timeout=RUN_TIMEOUT,
        )
    finally:
        faults.sagemaker.release_deployments()
    return RacedUpdate(faults.pipeline.follow(execution_arn, RUN_TIMEOUT), before)


def test_an_update_refused_as_in_progress_waits_for_the_endpoint_then_updates_it(
    raced_update: RacedUpdate,
) -> None:
    result = raced_update.result
    assert result.status == "SUCCEEDED", result.cause
    entered = states_entered(result, "-deployment")
    # One configuration (the example captures data), made once and kept across the wait.
    assert entered.count("UpdateEndpoint") == 2 and entered.count("CreateEndpointConfigWithDataCapture") == 1
    assert "IsEndpointBusyForUpdate" in entered and "WaitForIdleEndpoint" in entered
    endpoint = describe_endpoint(result.output["endpoint"]["endpointName"])
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == result.output["endpoint"]["endpointConfigName"]
    assert endpoint["EndpointConfigName"] != raced_update.endpoint_config_before
    assert result.output["endpoint"]["updated"] is True


# --- 8. a tuning job all of whose training jobs fail, and a rejected manifest: the failure paths ------------------


@dataclass
class FailurePaths:
    tuning: RunResult
    notifications: list[dict[str, Any]]


@pytest.fixture(scope="module")
def failure_paths(faults: Faults, raced_update: RacedUpdate) -> FailurePaths:
    _, _, manifest = local_inputs(faults.options)
    faults.pipeline.notifications()
    for channel in manifest[
        "channels"
    ]:  # data the run never uploads: every training job fails to download it
        channel["s3DataSource"]["S3Uri"] = channel["s3DataSource"]["S3Uri"].replace("titanic/", "absent/")
    tuning = faults.pipeline.run(manifest, {}, "manifests/absent-data/manifest.json", RUN_TIMEOUT)
    notifications = faults.pipeline.notifications()
    rejected = copy.deepcopy(manifest)
    rejected["channels"] = [item for item in rejected["channels"] if item["channelName"] != "training"]
    with pytest.raises(PipelineError, match="training"):  # the trigger's notification says why
        faults.pipeline.start(rejected, {}, "manifests/rejected/manifest.json")
    return FailurePaths(tuning, notifications)


def test_a_tuning_job_that_trained_nothing_fails_the_run_with_notifications(
    failure_paths: FailurePaths,
) -> None:
    assert failure_paths.tuning.status == "FAILED"
    # Published once, by the tuning run that failed.
    [tuner] = [message for message in failure_paths.notifications if message.get("stage") == "Failed"]
    # The module's earlier runs completed tuning jobs: the example's warmStart starts this one from the last.
    assert (tuner["workflow"], tuner["step"]) == ("ModelTuning", "TuneHyperparametersWarmStart")
    assert "no objects under" in tuner["cause"]


# --- 9. an update SageMaker refuses for good: the run's endpoint configuration is deleted -------------------------


@dataclass
class RefusedUpdate:
    result: RunResult
    notifications: list[dict[str, Any]]
    served_before: str


@pytest.fixture(scope="module")
def refused_update(faults: Faults, failure_paths: FailurePaths) -> RefusedUpdate:
    [endpoint] = boto3.client("sagemaker", region_name=REGION).list_endpoints()["Endpoints"]  # one, updated
    served_before = describe_endpoint(endpoint["EndpointName"])["EndpointConfigName"]
    injected = ApiFaults(rate=0)
    injected.fail_next("sagemaker", "UpdateEndpoint", "ResourceLimitExceeded")
    api_faults.install(injected)
    try:
        faults.pipeline.notifications()
        result = faults.pipeline.follow(faults.start("refused-update"), RUN_TIMEOUT)
    finally:
        api_faults.uninstall()
    return RefusedUpdate(result, faults.pipeline.notifications(), served_before)


def test_a_refused_update_deletes_the_configuration_it_made_and_leaves_the_endpoint_serving(
    refused_update: RefusedUpdate,
) -> None:
    result = refused_update.result
    assert result.status == "FAILED"
    entered = states_entered(result, "-deployment")
    assert entered[-5:] == [
        "UpdateEndpointFailed",
        "DeleteUnusedEndpointConfig",
        "RestoreDetachedAutoScaling",
        "NotifyFailure",
        "Failed",
    ]
    [deployer] = [
        item for item in refused_update.notifications if item.get("workflow") == "EndpointDeployment"
    ]
    assert deployer["error"] == "SageMaker.ResourceLimitExceededException"
    run_input = json.loads(
        boto3.client("stepfunctions", region_name=REGION).describe_execution(
            executionArn=result.execution_arn
        )["input"]
    )
    configs = boto3.client("sagemaker", region_name=REGION).list_endpoint_configs()["EndpointConfigs"]
    assert run_input["deployment"]["endpointConfigName"] not in {
        item["EndpointConfigName"] for item in configs
    }
    endpoint = describe_endpoint(run_input["deployment"]["endpointName"])
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "InService",
        refused_update.served_before,
    )


# --- 10. a file scored with the model the endpoint serves (the batch transform workflow) -------------------------


@pytest.fixture(scope="module")
def batch_scored(faults: Faults, refused_update: RefusedUpdate) -> RunResult:
    """The validation file whole, header line included (SplitType None), through BatchTransformStateMachine, with no
    job name given: its role's grants are used here, so the IAM checks below cover them."""
    [endpoint] = boto3.client("sagemaker", region_name=REGION).list_endpoints()["Endpoints"]
    faults.pipeline.upload(faults.options.validation, f"s3://{DATA_BUCKET}/scoring/whole/validation.csv")
    document = {
        "endpointName": endpoint["EndpointName"],
        "inputS3Uri": f"s3://{DATA_BUCKET}/scoring/whole/",
        "outputS3Uri": f"s3://{DATA_BUCKET}/scoring/whole-output/",
        "splitType": "None",
    }
    return faults.pipeline.batch_transform(document, RUN_TIMEOUT)


def test_a_batch_transform_scores_a_whole_csv_file_with_its_header(
    faults: Faults, batch_scored: RunResult
) -> None:
    assert batch_scored.status == "SUCCEEDED", batch_scored.cause
    assert batch_scored.output is not None
    # The job is named after the execution (a UUID: started without a name).
    assert batch_scored.output["transformJobName"] == batch_scored.execution_arn.rsplit(":", 1)[1]
    output = faults.pipeline.s3.get_object(Bucket=DATA_BUCKET, Key="scoring/whole-output/validation.csv.out")
    rows = faults.options.validation.read_bytes().count(b"\n") - 1
    assert output["Body"].read().count(b"\n") == rows  # a prediction per row; the header line is no record


# --- IAM: every statement the runs used was needed --------------------------------------------------------------

# Statements no local run can use, by Sid: what they allow happens on AWS outside the local emulation.
NOT_EXERCISED_LOCALLY = {
    "WriteOwnLogs": "Lambda delivers function logs with the role; a denial loses logs and fails nothing",
    "WriteTraces": "X-Ray trace upload; a denial loses traces and fails nothing",
    "AuthenticateToEcr": "local jobs run the trainer and predictor as processes, not images pulled from ECR",
    "PullImages": "local jobs run the trainer and predictor as processes, not images pulled from ECR",
    "WriteContainerLogs": "container logs go to the work folder, not CloudWatch Logs",
    "PublishSageMakerMetrics": "SageMaker's instance metrics are not emulated",
    "AttachToVpc": "VPC networking is not emulated",
    "InspectVpc": "VPC networking is not emulated",
    "ReadOwnAlgorithms": "algorithm resources are refused locally; test_iam checks the grant",
}


@pytest.fixture(scope="module")
def torn_down(faults: Faults, refused_update: RefusedUpdate, batch_scored: RunResult) -> Faults:
    """The stack deleted after every run of the module, as `sam delete` would: its endpoint goes with it."""
    faults.pipeline.delete_stack()
    return faults


def test_deleting_the_stack_removes_the_endpoint_its_runs_made(torn_down: Faults) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_models()["Models"] == []


def test_every_statement_of_every_role_was_used_or_cannot_be_used_locally(torn_down: Faults) -> None:
    faults = torn_down
    used = {(item.role_name, item.policy, item.index) for item in faults.pipeline.access.used}
    unused = {
        key: statement.get("Sid")
        for key, statement in statements_of_stack_roles(REGION).items()
        if key not in used
        and statement.get("Sid") not in NOT_EXERCISED_LOCALLY
        # These runs have no quality gate, approval or rollback; test_quality_gate.py and
        # test_safe_releases.py check that their runs use these.
        and not serves_the_quality_gate_only(key[0], statement)
        and not serves_releases_only(key[0], statement)
    }
    assert unused == {}, "grants no run needed: remove them, or say here why no local run can use them"


def test_removing_any_used_statement_denies_what_it_allowed_naming_principal_action_and_resource(
    torn_down: Faults,
) -> None:
    """Mutation: each statement the runs used, taken out of its role alone, and the requests it allowed asked
    again of the same policy evaluator: every one is denied, so no grant the workflow relies on is redundant or
    unchecked."""
    from h2o_sagemaker_local.iam.enforcement import AccessDenied

    access = torn_down.pipeline.access
    iam = boto3.client("iam", region_name=REGION)
    checked = 0
    for used, requests in sorted(access.allowed.items(), key=lambda item: str(item[0])):
        if used.policy.startswith("arn:"):
            continue  # a managed policy (X-Ray), used by no local run
        document = iam.get_role_policy(RoleName=used.role_name, PolicyName=used.policy)["PolicyDocument"]
        mutated = copy.deepcopy(document)
        del mutated["Statement"][used.index - 1]
        if mutated["Statement"]:
            iam.put_role_policy(
                RoleName=used.role_name, PolicyName=used.policy, PolicyDocument=json.dumps(mutated)
            )
        else:  # the policy's only statement
            iam.delete_role_policy(RoleName=used.role_name, PolicyName=used.policy)
        try:
            for principal, authorization in requests:
                with pytest.raises(AccessDenied) as denied:
                    access.authorize(principal, [authorization])
                message = str(denied.value)
                assert principal.arn in message and authorization.action in message, message
                assert authorization.resource in message, message
                checked += 1
        finally:
            iam.put_role_policy(
                RoleName=used.role_name, PolicyName=used.policy, PolicyDocument=json.dumps(document)
            )
    assert checked >= 30
