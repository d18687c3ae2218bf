"""Local SageMaker behind the same boto3 calls: tuning jobs run real `train` processes, endpoints real `serve`.

``LocalSageMaker.install()`` routes moto's SageMaker (and SageMaker Runtime) API actions that the workflow uses
to this emulator; models and endpoint configurations stay in moto's backend, which stores them faithfully. So
the Lambdas, the state machines (through moto's ASL interpreter) and the runner all talk to one SageMaker.
An UpdateEndpoint with a DeploymentConfig is a blue/green update with traffic shifting and auto-rollback
(``deployment_guardrails``); the endpoints' invocation metrics go to moto's CloudWatch and the alarms on them
are evaluated there (``endpoint_metrics``, ``cloudwatch_alarms``), so a rollback alarm rolls an update back.
Its fault-injection methods (crashed or spot-interrupted training jobs, held deployments, dead model servers,
model servers failing their invocations) let tests inject real faults into the running processes.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from moto.applicationautoscaling.models import applicationautoscaling_backends
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from h2o_sagemaker_local import (
    cloudwatch_alarms,
    data_capture,
    endpoint_metrics,
    events,
    moto_patches,
    opt_ml,
    transform,
)
from h2o_sagemaker_local.cloudwatch_alarms import AlarmEvaluator
from h2o_sagemaker_local.containers import ContainerRuntime
from h2o_sagemaker_local.deployment_guardrails import BlueGreenPlan, DeploymentConfigError, plan_blue_green
from h2o_sagemaker_local.early_stopping import EarlyStopping
from h2o_sagemaker_local.events import ProgressListener
from h2o_sagemaker_local.hosting import (
    HEALTH_CHECK_SECONDS,
    MAX_INVOCATION_BYTES,
    LocalEndpoint,
    invocation_header,
)
from h2o_sagemaker_local.iam import enforcement
from h2o_sagemaker_local.model_registry import LocalModelRegistry
from h2o_sagemaker_local.processing import (
    ProcessingJob,
    ProcessingRequestError,
    check_request,
    run_processing_job,
)
from h2o_sagemaker_local.search import Search, UnsupportedTuningRequest, make_search
from h2o_sagemaker_local.training import TrainingJob, channel_input_mode, run_training_job
from h2o_sagemaker_local.transform import TransformJob, TransformRequestError, run_transform_job
from h2o_sagemaker_local.tuning_warm_start import ParentJob, WarmStartRefused, parents_of

ROUTED_ACTIONS = (
    "create_hyper_parameter_tuning_job",
    "describe_hyper_parameter_tuning_job",
    "list_hyper_parameter_tuning_jobs",
    "list_training_jobs_for_hyper_parameter_tuning_job",
    "stop_hyper_parameter_tuning_job",
    "describe_training_job",
    "create_processing_job",
    "describe_processing_job",
    "stop_processing_job",
    "create_transform_job",
    "describe_transform_job",
    "stop_transform_job",
    "create_endpoint",
    "update_endpoint",
    "describe_endpoint",
    "list_endpoints",
    "delete_endpoint",
    "list_tags",
)
EARLY_STOPPING_CHECK_SECONDS = 0.5  # how often running jobs' objective values are read for early stopping
ALARM_EVALUATION_SECONDS = 0.5  # how often endpoint metrics are published and the alarms on them evaluated
# The model registry's actions, answered by LocalSageMaker.registry.
REGISTRY_ACTIONS = (
    "create_model_package_group",
    "describe_model_package_group",
    "list_model_package_groups",
    "delete_model_package_group",
    "create_model_package",
    "describe_model_package",
    "list_model_packages",
    "update_model_package",
    "delete_model_package",
)


@dataclass
class TuningJob:
    """State of one hyperparameter tuning job, shaped like DescribeHyperParameterTuningJob."""

    name: str
    arn: str
    request: dict[str, Any]
    status: str = "InProgress"
    failure_reason: str | None = None
    creation_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    end_time: datetime | None = None
    training_jobs: list[TrainingJob] = field(default_factory=list)
    objective_failures: int = 0
    stop_requested: threading.Event = field(default_factory=threading.Event)
    warm_start_trials: int = 0  # the parents' training jobs its search started from

    @property
    def objective(self) -> dict[str, str]:
        return self.request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]

    def objective_value(self, job: TrainingJob) -> float | None:
        return job.metrics.get(self.objective["MetricName"]) if job.status == "Completed" else None

    def best_job(self) -> TrainingJob | None:
        scored = [job for job in self.training_jobs if self.objective_value(job) is not None]
        if not scored:
            return None
        pick = max if self.objective["Type"] == "Maximize" else min
        return pick(scored, key=lambda job: self.objective_value(job) or 0.0)

    @property
    def tags(self) -> list[dict[str, str]]:
        return list(self.request.get("Tags", []))

    def as_parent(self) -> ParentJob:
        static = self.request["TrainingJobDefinition"].get("StaticHyperParameters", {})
        return ParentJob(
            name=self.name,
            status=self.status,
            request=self.request,
            training_jobs_launched=len(self.training_jobs),
            results=[
                (static | job.tuned_hyperparameters, value)
                for job in self.training_jobs
                if (value := self.objective_value(job)) is not None
            ],
        )

    def summary(self, job: TrainingJob) -> dict[str, Any]:
        """A training job as DescribeHyperParameterTuningJob's BestTrainingJob and the list call show it."""
        value = self.objective_value(job)
        summary: dict[str, Any] = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "TuningJobName": self.name,
            "CreationTime": job.creation_time,
            "TrainingJobStatus": job.status,
            "TunedHyperParameters": job.tuned_hyperparameters,
            "ObjectiveStatus": "Succeeded"
            if value is not None
            else ("Failed" if job.end_time else "Pending"),
        }
        if job.start_time:
            summary["TrainingStartTime"] = job.start_time
        if job.end_time:
            summary["TrainingEndTime"] = job.end_time
        if job.failure_reason:
            summary["FailureReason"] = job.failure_reason
        if value is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.objective["Type"],
                "MetricName": self.objective["MetricName"],
                "Value": value,
            }
        return summary

    def describe(self) -> dict[str, Any]:
        statuses = [job.status for job in self.training_jobs]
        description: dict[str, Any] = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobConfig": self.request["HyperParameterTuningJobConfig"],
            "TrainingJobDefinition": self.request["TrainingJobDefinition"],
            "HyperParameterTuningJobStatus": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.end_time or datetime.now(UTC),
            "TrainingJobStatusCounters": {
                "Completed": statuses.count("Completed"),
                "InProgress": statuses.count("InProgress"),
                "RetryableError": 0,
                "NonRetryableError": statuses.count("Failed"),
                "Stopped": statuses.count("Stopped"),
            },
            "ObjectiveStatusCounters": {
                "Succeeded": sum(self.objective_value(job) is not None for job in self.training_jobs),
                "Pending": statuses.count("InProgress"),
                "Failed": sum(
                    job.end_time is not None and self.objective_value(job) is None
                    for job in self.training_jobs
                ),
            },
        }
        best = self.best_job()
        if best:
            description["BestTrainingJob"] = self.summary(best)
        if "WarmStartConfig" in self.request:
            description["WarmStartConfig"] = self.request["WarmStartConfig"]
        if self.end_time:
            description["HyperParameterTuningEndTime"] = self.end_time
        if self.failure_reason:
            description["FailureReason"] = self.failure_reason
        return description


class LocalSageMaker:
    def __init__(
        self,
        workdir: Path,
        account_id: str = "123456789012",
        region: str = "us-east-1",
        listener: ProgressListener | None = None,
        seed: int | None = None,
        containers: ContainerRuntime | None = None,
    ):
        """``containers``: run training jobs and endpoints in the built images (else as local processes)."""
        self.workdir, self.account_id, self.region = workdir, account_id, region
        self.listener = listener or events.ignore
        self.seed = seed
        self.containers = containers
        self.tuning_jobs: dict[str, TuningJob] = {}
        self.training_jobs: dict[str, TrainingJob] = {}
        self.processing_jobs: dict[str, ProcessingJob] = {}
        self.transform_jobs: dict[str, TransformJob] = {}
        self.endpoints: dict[str, LocalEndpoint] = {}
        self.registry = LocalModelRegistry(account_id, region)
        self.threads: list[threading.Thread] = []
        self._health_stop = threading.Event()
        self._deployments_released = threading.Event()
        self._deployments_released.set()
        self._raced_updates: set[str] = set()
        self._failing_invocations: dict[str, int] = {}  # endpoint configuration -> status (fail_invocations)
        self.alarm_evaluator = AlarmEvaluator(account_id, region)
        self.network_isolated_models: dict[str, bool] = {}
        threading.Thread(target=self._watch_endpoints, daemon=True).start()
        threading.Thread(target=self._publish_metrics_and_evaluate_alarms, daemon=True).start()

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{kind}/{name.lower()}"

    def _background(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    # Tuning and training -----------------------------------------------------------------------------------

    def create_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["HyperParameterTuningJobName"]
        if name in self.tuning_jobs:
            raise ValidationError(f"Hyperparameter tuning job {name} already exists")
        definition = request.get("TrainingJobDefinition")
        if not definition:
            raise ValidationError("local SageMaker needs a single TrainingJobDefinition")
        if "AlgorithmName" in definition["AlgorithmSpecification"]:
            raise ValidationError(
                "local SageMaker runs the h2o-gbm-trainer `train` command: use trainingImage/inferenceImage "
                "rather than an algorithm resource when running locally"
            )
        _check_role_can_be_assumed(definition.get("RoleArn"))
        _check_input_modes(definition)
        _objective_regex(request)
        self._check_instance_count(int(definition["ResourceConfig"].get("InstanceCount", 1)))
        limits = request["HyperParameterTuningJobConfig"]["ResourceLimits"]
        try:
            parents = parents_of(request, self._parent_job) if "WarmStartConfig" in request else []
            search = make_search(
                request["HyperParameterTuningJobConfig"],
                limits.get("MaxNumberOfTrainingJobs", 0),
                request["HyperParameterTuningJobConfig"].get("RandomSeed", self.seed),
                earlier=[result for parent in parents for result in parent.results],
            )
        except (WarmStartRefused, UnsupportedTuningRequest) as error:
            raise ValidationError(str(error)) from None
        job = TuningJob(
            name,
            self.arn("hyper-parameter-tuning-job", name),
            request,
            warm_start_trials=search.warm_start_trials,
        )
        self.tuning_jobs[name] = job
        self.listener(events.TuningStarted(name, request, job.warm_start_trials))
        self._background(self._run_tuning_job, job, search)
        return {"HyperParameterTuningJobArn": job.arn}

    def _parent_job(self, name: str) -> ParentJob | None:
        return self.tuning_jobs[name].as_parent() if name in self.tuning_jobs else None

    def _check_instance_count(self, count: int) -> None:
        """A job of several instances runs as that many `train` processes, their host names resolving to 127.0.0.1
        through nss_wrapper (in containers, the engine's network resolves them); refused, saying why, where it
        cannot run."""
        if count < 2 or self.containers is not None:
            return
        try:
            opt_ml.require_nss_wrapper(opt_ml.host_names(count))
        except opt_ml.HostNamesUnavailable as error:
            raise ValidationError(str(error)) from None

    def _new_training_job(self, tuning: TuningJob, index: int, tuned: dict[str, str]) -> TrainingJob:
        definition = tuning.request["TrainingJobDefinition"]
        name = f"{tuning.name}-{index:03d}-{secrets.token_hex(4)}"
        objective = {"_tuning_objective_metric": tuning.objective["MetricName"]}
        request = {
            "TrainingJobName": name,
            "HyperParameters": definition.get("StaticHyperParameters", {}) | tuned | objective,
            "AlgorithmSpecification": definition["AlgorithmSpecification"],
            "RoleArn": definition.get("RoleArn"),
            "InputDataConfig": definition["InputDataConfig"],
            "OutputDataConfig": definition["OutputDataConfig"],
            "ResourceConfig": definition["ResourceConfig"],
            "StoppingCondition": definition["StoppingCondition"],
            "EnableNetworkIsolation": definition.get("EnableNetworkIsolation", False),
            "EnableManagedSpotTraining": definition.get("EnableManagedSpotTraining", False),
            "CheckpointConfig": definition.get("CheckpointConfig"),
        }
        job = TrainingJob(
            name,
            self.arn("training-job", name),
            request,
            tuning.arn,
            tuned,
            self.workdir / "training-jobs" / name,
            container=self.containers,
        )
        job.base_dir.mkdir(parents=True, exist_ok=True)
        self.training_jobs[name] = job
        tuning.training_jobs.append(job)
        return job

    def _run_training_job(self, job: TrainingJob) -> None:
        self.listener(events.TrainingStarted(job.name, job.tuned_hyperparameters))
        run_training_job(
            job,
            checkpoint_dir=self.workdir / "checkpoints" / job.name,
            timeout_seconds=float(job.request["StoppingCondition"].get("MaxRuntimeInSeconds", 86400)),
        )

    def _run_tuning_job(self, tuning: TuningJob, search: Search) -> None:
        limits = tuning.request["HyperParameterTuningJobConfig"]["ResourceLimits"]
        max_jobs = limits.get("MaxNumberOfTrainingJobs") or getattr(search, "size", 1)
        max_parallel = limits["MaxParallelTrainingJobs"]
        running: dict[Future[None], tuple[TrainingJob, Any]] = {}
        launched = 0
        early_stopping = self._early_stopping(tuning)
        stopped_early: dict[str, str] = {}  # job name -> why
        try:
            with ThreadPoolExecutor(max_workers=max_parallel) as pool:
                while True:
                    while (
                        not tuning.stop_requested.is_set()
                        and len(running) < max_parallel
                        and launched < max_jobs
                    ):
                        suggestion = search.suggest()
                        if suggestion is None:
                            break
                        token, values = suggestion
                        launched += 1
                        job = self._new_training_job(tuning, launched, values)
                        if tuning.stop_requested.is_set():  # the stop came after the check above
                            job.stop()
                        if early_stopping:
                            early_stopping.watch(job.name, job.log_path)
                        running[pool.submit(self._run_training_job, job)] = (job, token)
                    if not running:
                        break
                    done, _ = wait(
                        running,
                        timeout=EARLY_STOPPING_CHECK_SECONDS if early_stopping else None,
                        return_when=FIRST_COMPLETED,
                    )
                    if early_stopping:
                        by_name = {
                            job.name: job for future, (job, _) in running.items() if future not in done
                        }
                        for stop in early_stopping.check(set(by_name)):
                            stopped_early[stop.job_name] = stop.describe(tuning.objective["MetricName"])
                            by_name[stop.job_name].stop()
                    for future in done:
                        job, token = running.pop(future)
                        value = tuning.objective_value(job)
                        search.report(token, value)
                        self.listener(
                            events.TrainingFinished(
                                name=job.name,
                                status=job.status,
                                objective=value,
                                reason=stopped_early.get(job.name, job.failure_reason),
                                metric=tuning.objective["MetricName"],
                                hyperparameters=job.tuned_hyperparameters,
                            )
                        )
        except Exception as error:  # an emulator fault must end the tuning job, not leave it InProgress
            tuning.failure_reason = f"local emulation error: {type(error).__name__}: {error}"
        tuning.end_time = datetime.now(UTC)
        if tuning.stop_requested.is_set():
            tuning.status = "Stopped"
        elif tuning.best_job() is None:
            tuning.status = "Failed"
            reasons = sorted(
                {job.failure_reason or "objective metric not reported" for job in tuning.training_jobs}
            )
            tuning.failure_reason = tuning.failure_reason or (
                "All training jobs failed: " + " | ".join(reasons)
            )
        else:
            tuning.status = "Completed"
        self.listener(events.TuningFinished(tuning.name, tuning.status, tuning.failure_reason))

    @staticmethod
    def _early_stopping(tuning: TuningJob) -> EarlyStopping | None:
        """SageMaker's median rule when the tuning job asks for it; the objective is read with its
        MetricDefinitions regex."""
        config = tuning.request["HyperParameterTuningJobConfig"]
        if config.get("TrainingJobEarlyStoppingType", "Off") != "Auto":
            return None
        regex = re.compile(_objective_regex(tuning.request))
        return EarlyStopping(regex, maximize=tuning.objective["Type"] == "Maximize")

    def _tuning_job(self, name: str) -> TuningJob:
        if name not in self.tuning_jobs:
            raise ValidationError(f"Amazon SageMaker can't find a tuning job with name {name}")
        return self.tuning_jobs[name]

    def describe_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._tuning_job(request["HyperParameterTuningJobName"]).describe()

    def list_hyper_parameter_tuning_jobs(self, request: dict[str, Any]) -> dict[str, Any]:
        """NameContains (names are not case sensitive), StatusEquals, SortBy and SortOrder (SageMaker's defaults:
        Name, Ascending), MaxResults (10 by default) with NextToken."""
        contains = request.get("NameContains", "").lower()
        jobs = [
            tuning
            for tuning in list(self.tuning_jobs.values())
            if contains in tuning.name.lower() and request.get("StatusEquals") in (None, tuning.status)
        ]
        sort_key: Callable[[TuningJob], Any] = {
            "Name": lambda tuning: tuning.name,
            "Status": lambda tuning: tuning.status,
            "CreationTime": lambda tuning: tuning.creation_time,
        }[request.get("SortBy", "Name")]
        jobs.sort(key=sort_key, reverse=request.get("SortOrder", "Ascending") == "Descending")
        start = int(request.get("NextToken", 0))
        end = start + int(request.get("MaxResults", 10))
        summary_keys = (
            "HyperParameterTuningJobName",
            "HyperParameterTuningJobArn",
            "HyperParameterTuningJobStatus",
            "CreationTime",
            "HyperParameterTuningEndTime",
            "LastModifiedTime",
            "TrainingJobStatusCounters",
            "ObjectiveStatusCounters",
        )
        summaries = []
        for tuning in jobs[start:end]:
            description = tuning.describe()
            config = description["HyperParameterTuningJobConfig"]
            summaries.append(
                {key: description[key] for key in summary_keys if key in description}
                | {"Strategy": config["Strategy"], "ResourceLimits": config["ResourceLimits"]}
            )
        response: dict[str, Any] = {"HyperParameterTuningJobSummaries": summaries}
        if end < len(jobs):
            response["NextToken"] = str(end)
        return response

    def list_training_jobs_for_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, Any]:
        tuning = self._tuning_job(request["HyperParameterTuningJobName"])
        jobs = [job for job in tuning.training_jobs if request.get("StatusEquals") in (None, job.status)]
        return {"TrainingJobSummaries": [tuning.summary(job) for job in jobs]}

    def stop_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, Any]:
        tuning = self._tuning_job(request["HyperParameterTuningJobName"])
        tuning.stop_requested.set()
        for job in tuning.training_jobs:
            job.stop()
        return {}

    def describe_training_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TrainingJobName"]
        if name not in self.training_jobs:
            raise ValidationError(f"Requested resource not found: training job {name}")
        return self.training_jobs[name].describe()

    # Processing ----------------------------------------------------------------------------------------------

    def create_processing_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ProcessingJobName"]
        if name in self.processing_jobs:
            raise ValidationError(
                f"Job name must be unique within an AWS account and region, and a job with this name already exists ({self.arn('processing-job', name)})"
            )
        try:
            check_request(request)
        except ProcessingRequestError as error:
            raise ValidationError(str(error)) from None
        _check_role_can_be_assumed(request["RoleArn"])
        job = ProcessingJob(
            name,
            self.arn("processing-job", name),
            request,
            self.workdir / "processing-jobs" / name,
            container=self.containers,
        )
        job.base_dir.mkdir(parents=True, exist_ok=True)
        self.processing_jobs[name] = job
        self._background(run_processing_job, job)
        return {"ProcessingJobArn": job.arn}

    def _processing_job(self, name: str) -> ProcessingJob:
        if name not in self.processing_jobs:
            raise ValidationError(f"Could not find requested job with name {name}")
        return self.processing_jobs[name]

    def describe_processing_job(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._processing_job(request["ProcessingJobName"]).describe()

    def stop_processing_job(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._processing_job(request["ProcessingJobName"])
        if job.status != "InProgress":
            raise ValidationError(f"The job {job.name} is not in progress (status {job.status})")
        job.stop()
        return {}

    # Batch transform -----------------------------------------------------------------------------------------

    def create_transform_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TransformJobName"]
        if name in self.transform_jobs:
            raise ValidationError(
                f"Job name must be unique within an AWS account and region, and a job with this name already exists ({self.arn('transform-job', name)})"
            )
        try:
            transform.check_request(request)
        except TransformRequestError as error:
            raise ValidationError(str(error)) from None
        try:
            model = self._backend().describe_model(request["ModelName"]).response_object
        except Exception:
            raise ValidationError(
                f'Could not find model "{self.arn("model", request["ModelName"])}".'
            ) from None
        job = TransformJob(
            name,
            self.arn("transform-job", name),
            request,
            model,
            self.workdir / "transform-jobs" / name,
            container=self.containers,
        )
        self.transform_jobs[name] = job
        self._background(run_transform_job, job)
        return {"TransformJobArn": job.arn}

    def _transform_job(self, name: str) -> TransformJob:
        if name not in self.transform_jobs:
            raise ValidationError(f"Could not find requested job with name {name}")
        return self.transform_jobs[name]

    def describe_transform_job(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._transform_job(request["TransformJobName"]).describe()

    def stop_transform_job(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._transform_job(request["TransformJobName"])
        if job.status != "InProgress":
            raise ValidationError(f"The job {job.name} is not in progress (status {job.status})")
        job.stop()
        return {}

    # Hosting -------------------------------------------------------------------------------------------------

    def check_create_model(self, request: dict[str, Any]) -> None:
        """CreateModel (moto's) goes ahead only if SageMaker can assume the model's execution role. Whether the
        model is network-isolated is kept here: moto's DescribeModel always answers false."""
        _check_role_can_be_assumed(request.get("ExecutionRoleArn"))
        self.network_isolated_models[request["ModelName"]] = bool(request.get("EnableNetworkIsolation"))

    @staticmethod
    def check_create_endpoint_config(request: dict[str, Any]) -> None:
        """CreateEndpointConfig (moto's checks ServerlessConfig's memory sizes) refuses data capture on a
        serverless variant, one of the features SageMaker lists as not supported by Serverless Inference."""
        if request.get("DataCaptureConfig") and _serverless(request):
            raise ValidationError(SERVERLESS_EXCLUSION.format(feature="DataCaptureConfig"))

    def _backend(self) -> Any:
        return sagemaker_backends[self.account_id][self.region]

    def _deployment(self, config_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            config = self._backend().describe_endpoint_config(config_name)
        except Exception:
            raise ValidationError(f"Could not find endpoint configuration {config_name}") from None
        model_name = config["ProductionVariants"][0]["ModelName"]
        model = self._backend().describe_model(model_name).response_object
        return config, model

    def _check_serverless_model(self, config: dict[str, Any], model: dict[str, Any]) -> None:
        """A serverless endpoint's model may not run in a VPC or network-isolated (Serverless Inference's feature
        exclusions; refused here on CreateEndpoint and UpdateEndpoint, where SageMaker's exact answer is not
        documented)."""
        if not _serverless(config):
            return
        name = model["ModelName"]
        if model.get("VpcConfig"):
            raise ValidationError(SERVERLESS_EXCLUSION.format(feature=f"Model {name}'s VpcConfig"))
        if self.network_isolated_models.get(name):
            raise ValidationError(SERVERLESS_EXCLUSION.format(feature=f"Model {name}'s network isolation"))

    def _endpoint(self, name: str) -> LocalEndpoint:
        if name not in self.endpoints:
            raise ValidationError(f'Could not find endpoint "{name}".')
        return self.endpoints[name]

    def create_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointName"]
        if name in self.endpoints:
            raise ValidationError(f'Cannot create already existing endpoint "{self.arn("endpoint", name)}".')
        config, model = self._deployment(request["EndpointConfigName"])
        self._check_serverless_model(config, model)
        instance_count = config["ProductionVariants"][0].get("InitialInstanceCount", 1)
        deployment_config = request.get("DeploymentConfig")
        if deployment_config:  # kept for a later UpdateEndpoint's RetainDeploymentConfig
            self._blue_green_plan(deployment_config, instance_count, model)
        endpoint = LocalEndpoint(
            name,
            self.arn("endpoint", name),
            config,
            self.workdir / "endpoints" / name,
            alarms_in_alarm=self.alarm_evaluator.in_alarm,
            ready_gate=self._deployments_released,
            container=self.containers,
            tags=list(request.get("Tags", [])),
            listener=self.listener,
            invocation_faults=self._failing_invocations,
        )
        endpoint.start_deployment(config, instance_count, deployment_config)
        self.endpoints[name] = endpoint
        self.listener(events.EndpointDeploying(name, config["EndpointConfigName"], endpoint.proxy.url))
        self._background(self._deploy, endpoint, config, model)
        return {"EndpointArn": endpoint.arn}

    def update_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(request["EndpointName"])
        if endpoint.name in self._raced_updates and endpoint.status == "InService":
            self._raced_updates.discard(endpoint.name)
            self.update_endpoint(
                {"EndpointName": endpoint.name, "EndpointConfigName": endpoint.config["EndpointConfigName"]}
            )
        if endpoint.status != "InService":
            raise ValidationError(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        config, model = self._deployment(request["EndpointConfigName"])
        self._check_serverless_model(config, model)
        _check_serverless_update(endpoint, config, request)
        self._check_auto_scaling_allows(endpoint, config)
        deployment_config = self._requested_deployment_config(endpoint, request)
        instance_count = self._deployed_instance_count(endpoint, config, request)
        plan = None
        if deployment_config:
            assert endpoint.deployed_config is not None  # an InService endpoint has one
            self._check_same_variants(endpoint.deployed_config, config)
            plan = self._blue_green_plan(deployment_config, instance_count, model)
        endpoint.start_deployment(config, instance_count, deployment_config)
        self.listener(
            events.EndpointDeploying(endpoint.name, config["EndpointConfigName"], endpoint.proxy.url)
        )
        self._background(self._deploy, endpoint, config, model, plan)
        return {"EndpointArn": endpoint.arn}

    def _blue_green_plan(
        self, deployment_config: dict[str, Any], instance_count: int, model: dict[str, Any]
    ) -> BlueGreenPlan:
        """The update's steps, or the ValidationException SageMaker answers the DeploymentConfig with."""
        try:
            plan = plan_blue_green(deployment_config, instance_count)
        except DeploymentConfigError as error:
            raise ValidationError(str(error)) from None
        problem = self.alarm_evaluator.unevaluated_rollback_alarms(plan.alarm_names)
        if problem:
            raise ValidationError(problem)
        if plan.alarm_names:
            _check_rollback_alarms_readable(plan.alarm_names, model)
        return plan

    @staticmethod
    def _requested_deployment_config(
        endpoint: LocalEndpoint, request: dict[str, Any]
    ) -> dict[str, Any] | None:
        """UpdateEndpoint's DeploymentConfig, or with RetainDeploymentConfig the endpoint's last one."""
        if not request.get("RetainDeploymentConfig"):
            return request.get("DeploymentConfig")
        # What SageMaker does with both is not documented: refused.
        if "DeploymentConfig" in request:
            raise ValidationError("Specify either DeploymentConfig or RetainDeploymentConfig, not both.")
        return endpoint.last_deployment_config

    @staticmethod
    def _deployed_instance_count(
        endpoint: LocalEndpoint, config: dict[str, Any], request: dict[str, Any]
    ) -> int:
        """The instance count of the variant an update deploys: the running one when RetainAllVariantProperties
        keeps it (DesiredInstanceCount not in ExcludeRetainedVariantProperties), else the new configuration's."""
        excluded = {
            item["VariantPropertyType"] for item in request.get("ExcludeRetainedVariantProperties", [])
        }
        source = config
        if request.get("RetainAllVariantProperties") and "DesiredInstanceCount" not in excluded:
            assert endpoint.deployed_config is not None  # an InService endpoint has one
            source = endpoint.deployed_config
        return int(source["ProductionVariants"][0].get("InitialInstanceCount", 1))

    def _check_auto_scaling_allows(self, endpoint: LocalEndpoint, config: dict[str, Any]) -> None:
        """SageMaker refuses an update that changes the instance type of, or removes, a variant registered as an
        Application Auto Scaling target; only a new model is allowed
        (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html)."""
        assert endpoint.deployed_config is not None  # an InService endpoint has one
        targets = applicationautoscaling_backends[self.account_id][self.region].targets
        registered = targets.get("sagemaker:variant:DesiredInstanceCount", {})
        new_types = {
            variant["VariantName"]: variant.get("InstanceType") for variant in config["ProductionVariants"]
        }
        for variant in endpoint.deployed_config["ProductionVariants"]:
            name = variant["VariantName"]
            if f"endpoint/{endpoint.name}/variant/{name}" not in registered:
                continue
            if name not in new_types:
                change = f"endpoint configuration {config['EndpointConfigName']} has no variant {name}"
            elif new_types[name] != variant.get("InstanceType"):
                change = f"its instance type changes from {variant.get('InstanceType')} to {new_types[name]}"
            else:
                continue
            raise ValidationError(
                f"Variant {name} of endpoint {endpoint.name} is an Application Auto Scaling target and {change}: "
                "deregister the scalable target (DeregisterScalableTarget) before updating the endpoint."
            )

    @staticmethod
    def _check_same_variants(deployed: dict[str, Any], config: dict[str, Any]) -> None:
        """A blue/green update needs the new configuration's variant names to be the old one's
        (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html)."""

        def names(endpoint_config: dict[str, Any]) -> list[str]:
            return sorted(variant["VariantName"] for variant in endpoint_config["ProductionVariants"])

        if names(config) != names(deployed):
            raise ValidationError(
                f"The variant names {names(config)} of endpoint configuration {config['EndpointConfigName']} "
                f"differ from {names(deployed)} of the endpoint's current configuration "
                f"{deployed['EndpointConfigName']}: a blue/green deployment needs the new endpoint configuration "
                "to have the same variant names."
            )

    def _deploy(
        self,
        endpoint: LocalEndpoint,
        config: dict[str, Any],
        model: dict[str, Any],
        plan: BlueGreenPlan | None = None,
    ) -> None:
        endpoint.deploy(config, model, plan)
        self.listener(events.EndpointStatus(endpoint.name, endpoint.status, endpoint.failure_reason))

    def describe_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._endpoint(request["EndpointName"]).describe()

    def list_endpoints(self, request: dict[str, Any]) -> dict[str, Any]:
        fields = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        summaries = [
            {key: endpoint.describe()[key] for key in fields}
            for endpoint in sorted(self.endpoints.values(), key=lambda item: item.creation_time, reverse=True)
        ]
        return {"Endpoints": summaries}

    def delete_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(request["EndpointName"])
        endpoint.shutdown()
        self._write_captured_data(endpoint)
        del self.endpoints[request["EndpointName"]]
        return {}

    def list_tags(self, request: dict[str, Any]) -> dict[str, Any]:
        tags = self._tags(request["ResourceArn"])
        if tags is None:
            raise ValidationError(f"Could not find resource {request['ResourceArn']}.")
        return {"Tags": tags}

    def resource_tags(self, arn: str) -> dict[str, str]:
        """A SageMaker resource's tags (none for one that does not exist): what IAM's aws:ResourceTag sees."""
        return {tag["Key"]: tag["Value"] for tag in self._tags(arn) or []}

    def _tags(self, arn: str) -> list[dict[str, str]] | None:
        """Endpoints and tuning jobs are kept here, models and endpoint configurations in moto; ARNs name them in
        lower case."""
        kind, _, name = arn.rpartition(":")[2].partition("/")
        held: dict[str, Any] | None = {
            "hyper-parameter-tuning-job": self.tuning_jobs,
            "endpoint": self.endpoints,
            "endpoint-config": self._backend().endpoint_configs,
            "model": self._backend()._models,
        }.get(kind)
        if kind == "model-package-group":
            return self.registry.group_tags(arn)
        if held is None:  # other resources are moto's alone
            try:
                tags, _ = self._backend().list_tags(arn=arn)
            except (ValidationError, AttributeError):  # moto's lookup of a missing one
                return None
            return list(tags)
        for key, resource in list(held.items()):
            if key.lower() == name.lower():
                return list(resource.tags)
        return None

    def invoke_endpoint(self, name: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        if name not in self.endpoints:  # the runtime's own answer, not the control plane's
            raise InvocationValidationError(f"Endpoint {name} of account {self.account_id} not found.")
        endpoint = self.endpoints[name]
        if endpoint.status not in ("InService", "Updating", "RollingBack"):
            raise InvocationValidationError(f"Endpoint {name} is not in service (status {endpoint.status}).")
        target = headers.get(invocation_header("TargetVariant"))
        variants = [variant["VariantName"] for variant in endpoint.describe()["ProductionVariants"]]
        if target is not None and target not in variants:
            raise InvocationValidationError(
                f"TargetVariant {target} is not a production variant of endpoint {name} ({', '.join(variants)})."
            )
        return endpoint.invoke(body, headers)

    def _watch_endpoints(self) -> None:
        while not self._health_stop.wait(HEALTH_CHECK_SECONDS):
            for endpoint in list(self.endpoints.values()):
                before = endpoint.status
                endpoint.check_health()
                if endpoint.status != before:
                    self.listener(
                        events.EndpointStatus(endpoint.name, endpoint.status, endpoint.failure_reason)
                    )

    def _publish_metrics_and_evaluate_alarms(self) -> None:
        """CloudWatch's side of the endpoints, off their request path: the invocations their proxies recorded are
        published as metrics, then every alarm on them is evaluated; the data they captured is written to S3."""
        while not self._health_stop.wait(ALARM_EVALUATION_SECONDS):
            for endpoint in list(self.endpoints.values()):
                endpoint_metrics.publish(
                    self.account_id, self.region, endpoint.name, endpoint.proxy.take_invocations()
                )
                self._write_captured_data(endpoint)
            self.alarm_evaluator.evaluate_all(datetime.now(UTC).replace(tzinfo=None))

    def _write_captured_data(self, endpoint: LocalEndpoint) -> None:
        for reason in data_capture.write(endpoint.proxy.take_captured(), datetime.now(UTC)):
            self.listener(events.DataCaptureFailed(endpoint.name, reason))

    def write_captured_data(self, endpoint_name: str) -> None:
        """Write what the endpoint captured now, rather than at the next flush (a client about to read it)."""
        self._write_captured_data(self._endpoint(endpoint_name))

    # Fault injection ------------------------------------------------------------------------------------------
    # Faults a real system meets, injected into the running processes so tests can watch the workflow cope.

    def _running_training_job(self, name: str) -> TrainingJob:
        job = self.training_jobs.get(name)
        if job is None or job.status != "InProgress" or not job.running():
            raise ValidationError(f"Training job {name} has no running training process")
        return job

    def crash_training_job(self, name: str) -> None:
        """The job's containers die (as under the OOM killer): SIGKILL to everything they run, every host's
        `train` and H2O JVM. The job fails with the signal as its reason; its tuning job carries on with the
        others."""
        self._running_training_job(name).kill()

    def interrupt_training_job(self, name: str) -> None:
        """A managed spot interruption: SIGTERM to the job's `train` (it keeps its last checkpoint), then the
        job runs again with the same checkpoint folder, as SageMaker restarts an interrupted spot job.
        DescribeTrainingJob stays InProgress; SecondaryStatusTransitions show Interrupted and Restarting."""
        job = self._running_training_job(name)
        if not job.request.get("EnableManagedSpotTraining"):
            raise ValidationError(
                f"Training job {name} does not use managed spot training: only spot jobs are interrupted"
            )
        job.interrupt()

    def race_next_update(self, endpoint_name: str) -> None:
        """Another run gets in first: the next UpdateEndpoint of the endpoint finds it already updating (to the
        configuration it serves, as a second run that found it idle a moment earlier would have asked) and fails
        as SageMaker fails it, a ValidationException."""
        self._raced_updates.add(self._endpoint(endpoint_name).name)

    def hold_deployments(self) -> None:
        """Endpoint deployments started from now on, and those in progress, wait before their new model
        server takes traffic: the endpoint stays Creating or Updating (an old server keeps serving) until
        ``release_deployments``. Stands in for a slow deployment; SageMaker's take minutes."""
        self._deployments_released.clear()

    def release_deployments(self) -> None:
        self._deployments_released.set()

    def crash_model_server(self, endpoint_name: str) -> list[int]:
        """The endpoint's predictor dies: SIGKILL to the process groups of its model servers (the serving one
        and one being deployed). The health watcher then reports an InService endpoint Failed, and a
        deployment in progress fails. Returns the killed process ids."""
        return self._endpoint(endpoint_name).crash()

    def fail_invocations(self, endpoint_config_name: str, status: int = 500) -> None:
        """The model loads but cannot score: the model servers of this endpoint configuration answer every
        /invocations request with ``status`` and a JSON error, while their /ping stays healthy. It applies to
        the servers running and to those started later (the new fleet of an update not begun yet, of a
        configuration a run has not created yet), so deploying the configuration succeeds and only its rollback
        alarms can catch it."""
        if not 400 <= status <= 599:
            raise ValueError(f"status {status} is not an HTTP error status")
        self._failing_invocations[endpoint_config_name] = status

    # Lifecycle -----------------------------------------------------------------------------------------------

    def shutdown(self, keep_endpoints: bool = False) -> None:
        """Stop every job and, unless kept, every endpoint: no process outlives the run."""
        self._health_stop.set()
        self.release_deployments()
        for tuning in list(self.tuning_jobs.values()):
            tuning.stop_requested.set()
        for job in list(self.training_jobs.values()):
            job.stop()
        for processing in list(self.processing_jobs.values()):
            processing.stop()
        for transform_job in list(self.transform_jobs.values()):
            transform_job.stop()
        if not keep_endpoints:  # a blue/green update stops baking rather than holding the joins below
            for endpoint in list(self.endpoints.values()):
                endpoint.aborted.set()
        for thread in self.threads:
            thread.join(timeout=30)
        for job in list(self.training_jobs.values()):
            job.kill()
        for processing in list(self.processing_jobs.values()):
            processing.kill()
        for endpoint in list(self.endpoints.values()):
            if not keep_endpoints:
                endpoint.shutdown()
            self._write_captured_data(endpoint)

    def install(self) -> None:
        """Route moto's SageMaker actions used by the workflow to this emulator (active until uninstall); give
        moto's CloudWatch the DescribeAlarmHistory the evaluated alarms' transitions show in."""
        _patch_moto()
        cloudwatch_alarms.install()
        _ROUTED.clear()
        _ROUTED.update({action: getattr(self, action) for action in ROUTED_ACTIONS})
        _ROUTED.update({action: getattr(self.registry, action) for action in REGISTRY_ACTIONS})
        _CHECKED.clear()
        _CHECKED.update({action: getattr(self, f"check_{action}") for action in CHECKED_ACTIONS})
        _INVOKE[:] = [self.invoke_endpoint]

    def uninstall(self) -> None:
        _ROUTED.clear()
        _CHECKED.clear()
        _INVOKE.clear()

    def remove_workdir(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


# moto's actions that keep moto's behaviour after a check SageMaker makes first.
CHECKED_ACTIONS = ("create_model", "create_endpoint_config")
SERVERLESS_EXCLUSION = (
    "{feature} is not supported for serverless endpoints "
    "(https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html, feature exclusions)."
)


def _serverless(config: dict[str, Any]) -> bool:
    return any("ServerlessConfig" in variant for variant in config["ProductionVariants"])


def _check_serverless_update(
    endpoint: LocalEndpoint, config: dict[str, Any], request: dict[str, Any]
) -> None:
    """SageMaker refuses to update an instance-based endpoint to serverless; what its guardrails, and retaining
    variant properties, do for serverless endpoints is not documented: refused too."""
    assert endpoint.deployed_config is not None  # an InService endpoint has one
    if _serverless(config) and not _serverless(endpoint.deployed_config):
        raise ValidationError(
            f"Endpoint {endpoint.name} is instance-based: it cannot be updated to serverless endpoint "
            f"configuration {config['EndpointConfigName']}."
        )
    if _serverless(config) or _serverless(endpoint.deployed_config):
        for member in ("DeploymentConfig", "RetainDeploymentConfig", "RetainAllVariantProperties"):
            if request.get(member):
                raise ValidationError(SERVERLESS_EXCLUSION.format(feature=member))


_ROUTED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
_CHECKED: dict[str, Callable[[dict[str, Any]], None]] = {}
_INVOKE: list[Callable[[str, bytes, dict[str, str]], tuple[int, bytes, str]]] = []


def _check_rollback_alarms_readable(alarm_names: Sequence[str], model: dict[str, Any]) -> None:
    """SageMaker describes the rollback alarms as the model's execution role
    (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html); what it does when
    the role may not is not documented: refused."""
    role_arn = model.get("ExecutionRoleArn")
    cloudwatch = enforcement.role_client("cloudwatch", role_arn, "sagemaker.amazonaws.com", "SageMaker")
    try:
        cloudwatch.describe_alarms(AlarmNames=list(alarm_names))
    except ClientError as error:
        raise ValidationError(
            f"The execution role {role_arn} of model {model['ModelName']} cannot describe the alarms of "
            f"AutoRollbackConfiguration: {error}"
        ) from None


def _check_input_modes(definition: dict[str, Any]) -> None:
    """Each channel's input mode (its InputMode, else the job's TrainingInputMode) with what goes with it. Locally
    a File or FastFile channel is downloaded before the job starts (FastFile shows the same files on SageMaker);
    Pipe's FIFOs are not emulated, and what FastFile does with a manifest is not documented: both refused."""
    for channel in definition["InputDataConfig"]:
        name, mode = channel["ChannelName"], channel_input_mode(definition, channel)
        if mode == "Pipe":
            raise ValidationError(
                f"channel {name}: Pipe input mode is not emulated by the local SageMaker (the trainer reads files): "
                "use File or FastFile"
            )
        # SageMaker's Channel reference: "CompressionType is used only in Pipe input mode. In File mode, leave
        # this field unset or set it to None." What SageMaker does with Gzip otherwise is not documented.
        if channel.get("CompressionType", "None") != "None":
            raise ValidationError(
                f"channel {name}: CompressionType {channel['CompressionType']} is used only in Pipe input mode; "
                f"in {mode} mode leave it unset or None"
            )
        data_type = channel["DataSource"]["S3DataSource"]["S3DataType"]
        if mode == "FastFile" and data_type != "S3Prefix":
            raise ValidationError(
                f"channel {name}: S3DataType {data_type} in FastFile input mode: SageMaker documents FastFile for "
                "S3Prefix data sources (and not for augmented manifest files); the local SageMaker refuses the rest"
            )


def _objective_regex(request: dict[str, Any]) -> str:
    """The MetricDefinitions regex an image's tuning job reads its objective with
    (automatic-model-tuning-define-metrics-variables.html). Without one no job could report the objective, so such
    a request is refused here, whether or not SageMaker's own check comes only once the jobs ran."""
    objective = request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    definitions = request["TrainingJobDefinition"]["AlgorithmSpecification"].get("MetricDefinitions", [])
    for definition in definitions:
        if definition["Name"] == objective:
            return str(definition["Regex"])
    raise ValidationError(
        f"The objective metric {objective} is not defined in the training job definition's MetricDefinitions."
    )


def _check_role_can_be_assumed(role_arn: str | None) -> None:
    """SageMaker refuses a job or model whose execution role it may not assume (its trust policy decides)."""
    control = enforcement.active()
    if control is None or role_arn is None:
        return
    try:
        control.assume(role_arn, "sagemaker.amazonaws.com", "SageMaker")
    except enforcement.AccessDenied:
        raise ValidationError(
            f"Could not assume role {role_arn}. Please ensure that the role exists and allows principal "
            "'sagemaker.amazonaws.com' to assume the role."
        ) from None


def _routed_action(action: str) -> Callable[[SageMakerResponse], ActionResult]:
    original = getattr(SageMakerResponse, action, None)

    def handle(self: SageMakerResponse) -> ActionResult:
        if action in _CHECKED:
            _CHECKED[action](json.loads(self.body or "{}"))
        if action not in _ROUTED:
            if original is None:
                raise NotImplementedError(f"SageMaker {action} is not emulated")
            return original(self)
        result = _ROUTED[action](json.loads(self.body or "{}"))
        return ActionResult(result) if result else EmptyResult()

    return handle


class InvocationValidationError(JsonRESTError):
    """The SageMaker runtime's own validation error (HTTP 400 ValidationError in its API model, not the control
    plane's ValidationException)."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("ValidationError", message)


class ModelError(JsonRESTError):
    """InvokeEndpoint's answer when the model server answers an error: HTTP 424, the container's status and text."""

    code = 424

    def __init__(self, status: int, message: str) -> None:
        kind = "client" if status < 500 else "server"
        super().__init__(
            "ModelError", f'Received {kind} error ({status}) from primary with message "{message}".'
        )


# InvokeEndpoint members for kinds of endpoint this stack never makes (its endpoints serve one model in one
# container): a request using one is refused, as SageMaker refuses TargetContainerHostname at an endpoint not made
# for direct invocation (multi-container-direct.html), instead of being answered as if it had been honoured.
ENDPOINT_KINDS_NOT_MADE = {
    "TargetModel": "a multi-model endpoint",
    "TargetContainerHostname": "a multi-container endpoint with direct invocation",
    "InferenceComponentName": "an endpoint of inference components",
    "SessionId": "an endpoint with stateful sessions",
    "EnableExplanations": "an endpoint with a ClarifyExplainerConfig",
}


# The header members InvokeEndpoint passes on to the endpoint (their constraints are api_constraints' to check).
PASSED_INVOCATION_MEMBERS = ("ContentType", "Accept", "CustomAttributes", "InferenceId", "TargetVariant")


def _invoke_endpoint(self: SageMakerRuntimeResponse) -> Any:
    if not _INVOKE:
        return moto_patches.original(SageMakerRuntimeResponse, "invoke_endpoint")(self)
    name = self.path.split("/")[2]
    body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
    if len(body) > MAX_INVOCATION_BYTES:  # botocore does not check a maximum; the service does
        raise InvocationValidationError(
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length "
            f"less than or equal to {MAX_INVOCATION_BYTES}"
        )
    for member, kind in ENDPOINT_KINDS_NOT_MADE.items():
        if invocation_header(member) in self.headers:
            raise InvocationValidationError(
                f"{member} is for {kind}; endpoint {name} serves one model in one container."
            )
    headers = {"Content-Type": "text/csv"} | {
        invocation_header(member): self.headers[invocation_header(member)]
        for member in PASSED_INVOCATION_MEMBERS
        if invocation_header(member) in self.headers
    }
    status, payload, content_type = _INVOKE[0](name, body, headers)
    if status >= 400:
        raise ModelError(status, payload.decode(errors="replace"))
    return 200, {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": "AllTraffic"}, payload


def _patch_moto() -> None:
    """Idempotent: moto dispatches an action to the response method of the same name."""
    if getattr(SageMakerResponse, "_routed_to_local_sagemaker", False):
        return
    for action in (*ROUTED_ACTIONS, *REGISTRY_ACTIONS, *CHECKED_ACTIONS):
        moto_patches.replace(SageMakerResponse, action, _routed_action(action))
    moto_patches.replace(SageMakerResponse, "_routed_to_local_sagemaker", True)
    moto_patches.replace(SageMakerRuntimeResponse, "invoke_endpoint", _invoke_endpoint)
