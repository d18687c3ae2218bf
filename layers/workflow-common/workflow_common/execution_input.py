"""The run contract, and the run's input built from the validated user files.

The contract is what the three state machines exchange: the parent's input (``RunInput``, built here for the
manifest trigger), the parts it hands to the model-tuning and endpoint-deployment state machines, and what
those return. tests/templates/test_run_contract.py checks every path the state machines read against it.

Everything SageMaker would reject later (name lengths, strategy rules, spot settings) is settled here, so the
state machines stay plain and a bad file fails in seconds instead of minutes into a run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from workflow_common.ml_parameters import (
    VALIDATION_CHANNEL,
    DataCapture,
    Deployment,
    Hyperparameters,
    Manifest,
    MlParameters,
    ServerlessConfig,
    TargetTracking,
    check_compatible,
    check_distribution,
    check_input_mode,
    check_objective_channel,
)
from workflow_common.models import CamelCaseModel, PascalCaseModel
from workflow_common.sagemaker_names import RESOURCE_NAME_MAX_LENGTH, TUNING_JOB_NAME_MAX_LENGTH

VARIANT_NAME = "AllTraffic"


class VpcConfig(PascalCaseModel):
    security_group_ids: list[str]
    subnets: list[str]


class Algorithm(CamelCaseModel):
    """An algorithm resource, or the training and inference images: ml-parameters settles which."""

    algorithm_arn: str | None = None
    training_image: str | None = None
    inference_image: str | None = None


class ModelToCreate(CamelCaseModel):
    model_name: str
    vpc_config: VpcConfig | None = None  # absent: the model is hosted outside a VPC
    # Off only for a serverless endpoint, which SageMaker does not run network-isolated (its feature exclusions).
    enable_network_isolation: bool = True


class TuningInput(CamelCaseModel):
    """The model-tuning state machine's input."""

    hyper_parameter_tuning_job_name: str
    # Both go to CreateHyperParameterTuningJob as they are, in SageMaker's own shape.
    hyper_parameter_tuning_job_config: dict[str, Any]
    training_job_definition: dict[str, Any]
    # CreateHyperParameterTuningJob's WarmStartConfig (ml-parameters' warmStart, parents found by the trigger);
    # absent: the tuning starts cold.
    warm_start_config: dict[str, Any] | None = None
    algorithm: Algorithm
    model: ModelToCreate
    endpoint_name: str  # the endpoint the model is tuned for: named in the stage notifications


class Objective(PascalCaseModel):
    metric_name: str
    value: float


class BestModel(CamelCaseModel):
    """The best training job of the tuning job and its model artifact: what the best-model selector returns."""

    hyper_parameter_tuning_job_name: str
    training_job_name: str
    model_data_url: str
    inference_image: str
    objective: Objective
    hyper_parameters: dict[str, str]
    # The tuning job's warm start parents (its WarmStartConfig), empty when it started cold.
    warm_start_parents: list[str] = Field(default_factory=list)


class TuningOutput(BestModel):
    """The model-tuning state machine's output: the best model and the SageMaker model created from it."""

    model_name: str


class ProductionVariant(PascalCaseModel):
    """The endpoint's variant: instances (InstanceType, InitialInstanceCount) or serverless (ServerlessConfig)."""

    variant_name: str
    initial_variant_weight: int
    instance_type: str | None = None
    initial_instance_count: int | None = None
    serverless_config: ServerlessConfig | None = None


class Autoscaling(PascalCaseModel):
    min_capacity: int
    max_capacity: int
    policy_name: str
    target_tracking_scaling_policy_configuration: TargetTracking


class DeploymentSettings(CamelCaseModel):
    """The settings of the endpoint-deployment state machine; the registered model version is added to them."""

    endpoint_name: str
    endpoint_config_name: str
    variant: ProductionVariant
    # Absent for a serverless endpoint, which SageMaker scales itself.
    autoscaling: Autoscaling | None = None
    poll_interval_seconds: int
    max_poll_attempts: int
    # UpdateEndpoint's DeploymentConfig, in SageMaker's shape: the blue/green traffic shifting and the alarms
    # that roll an update back. Empty for a serverless endpoint: SageMaker's default update.
    deployment_config: dict[str, Any]
    # CreateEndpointConfig's DataCaptureConfig, in SageMaker's shape; absent: nothing is captured.
    data_capture_config: dict[str, Any] | None = None


ApprovalStatus = Literal["Approved", "PendingManualApproval", "Rejected"]


class ModelRegistration(CamelCaseModel):
    """A version of the endpoint's model package group: what the model registrar returns."""

    model_package_arn: str
    model_package_version: int
    model_approval_status: ApprovalStatus


class DeploymentInput(DeploymentSettings, ModelRegistration):
    """The endpoint-deployment state machine's input: the settings and the registered version to deploy (the
    state machine deploys it only while its package is Approved)."""


class RegistrySettings(CamelCaseModel):
    """Where a run registers its model, and how the version gets approved (ml-parameters' modelApproval)."""

    model_package_group_name: str
    model_approval: Literal["Automatic", "Manual"]


class DeploymentOutput(CamelCaseModel):
    """The endpoint-deployment state machine's output."""

    endpoint_name: str
    endpoint_config_name: str
    endpoint_arn: str
    instance_count: int | None  # None: a serverless endpoint
    updated: bool  # the endpoint existed and was updated, rather than created


class GateEvaluation(CamelCaseModel):
    """The Processing job scoring the deployed model on this run's validation rows with the trainer's metric code."""

    processing_job_name: str
    image_uri: str  # the training image: its `evaluate` command
    instance_type: str
    volume_size_in_gb: int
    max_runtime_in_seconds: int
    validation_s3_uri: str
    validation_s3_data_type: str
    output_s3_uri: str  # evaluation.json is written under it


class QualityGateSettings(CamelCaseModel):
    """The run's quality gate (ml-parameters' qualityGate, with the objective it judges)."""

    objective_metric_name: str
    objective_type: Literal["Maximize", "Minimize"]
    min_objective_value: float | None = None
    min_improvement: float
    # Present when mustBeatDeployedModel: the deployed model, if any, is scored by this job.
    evaluation: GateEvaluation | None = None


class RunInput(CamelCaseModel):
    """The parent state machine's input: it hands ``tuning`` and ``deployment`` to the two child machines."""

    # For people following a run: named in the RunStarted notification.
    run_id: str
    manifest: str
    tuning: TuningInput
    registry: RegistrySettings
    deployment: DeploymentSettings
    # From a scheduled run's manifest: written to SSM as the data watermark when the run completes.
    data_watermark: str | None = None
    # Absent: every tuned model is deployed.
    quality_gate: QualityGateSettings | None = None

    def to_document(self) -> dict[str, Any]:
        """The JSON the execution starts with; optional parts left out, as the state machines test presence."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class RunIdentity:
    """What makes a run unique: the manifest object that triggered it."""

    bucket: str
    key: str
    object_version: str  # the object's sequencer or version id: a re-upload gives a new run
    event_time: datetime

    @property
    def run_id(self) -> str:
        """13 characters, e.g. ``11222100-a3f9``: readable time plus a digest, same for a duplicate event."""
        digest = hashlib.sha256(f"{self.bucket}/{self.key}/{self.object_version}".encode()).hexdigest()
        return f"{self.event_time:%m%d%H%M}-{digest[:4]}"


@dataclass(frozen=True)
class StackResources:
    """What the stack created for the endpoint at deploy time (from the imported ml-parameters), named in the
    inputs the triggers build: the model package group and the alarms that roll an endpoint update back."""

    model_package_group_name: str
    rollback_alarm_names: tuple[str, ...]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> StackResources:
        return cls(
            model_package_group_name=environ["MODEL_PACKAGE_GROUP_NAME"],
            rollback_alarm_names=tuple(name for name in environ["ROLLBACK_ALARM_NAMES"].split(",") if name),
        )


def unique_name(base: str, run_id: str, max_length: int) -> str:
    """``<base>-<run_id>``, shortening the base (never the run id) to fit SageMaker's limit."""
    room = max_length - len(run_id) - 1
    return f"{base[:room].rstrip('-')}-{run_id}"


def _vpc_config(security_group_ids: list[str], subnets: list[str]) -> dict[str, list[str]] | None:
    return {"SecurityGroupIds": security_group_ids, "Subnets": subnets} if subnets else None


def _tuning_job_config(params: MlParameters, hyperparameters: Hyperparameters) -> dict[str, Any]:
    check_compatible(params, hyperparameters)
    limits: dict[str, int] = {"MaxParallelTrainingJobs": params.max_parallel_training_jobs}
    if params.tuning_strategy != "Grid":
        limits["MaxNumberOfTrainingJobs"] = params.max_number_of_training_jobs or 0
    config: dict[str, Any] = {
        "Strategy": params.tuning_strategy,
        "HyperParameterTuningJobObjective": {
            "Type": params.resolved_objective_type,
            "MetricName": params.objective_metric_name,
        },
        "ResourceLimits": limits,
        "ParameterRanges": hyperparameters.parameter_ranges.to_sagemaker(),
        # Hyperband stops jobs itself; SageMaker rejects it combined with early stopping.
        "TrainingJobEarlyStoppingType": "Off"
        if params.tuning_strategy == "Hyperband"
        else params.training_job_early_stopping_type,
    }
    if params.tuning_random_seed is not None:
        config["RandomSeed"] = params.tuning_random_seed
    if params.tuning_strategy == "Hyperband" and hyperparameters.hyperband_strategy_config:
        config["StrategyConfig"] = {
            "HyperbandStrategyConfig": hyperparameters.hyperband_strategy_config.model_dump(
                by_alias=True, exclude_none=True
            )
        }
    return config


def _training_job_definition(
    params: MlParameters,
    hyperparameters: Hyperparameters,
    manifest: Manifest,
    tuning_job_name: str,
    bucket: str,
) -> dict[str, Any]:
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": params.max_runtime_in_seconds}
    definition: dict[str, Any] = {
        "StaticHyperParameters": hyperparameters.static_hyper_parameters,
        "InputDataConfig": [
            {
                "ChannelName": channel.channel_name,
                "ContentType": channel.content_type or params.input_content_type,
                "CompressionType": channel.compression_type or "None",
                "InputMode": params.training_input_mode,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": channel.s3_data_source.s3_data_type,
                        "S3Uri": channel.s3_data_source.s3_uri,
                        "S3DataDistributionType": channel.s3_data_source.s3_data_distribution_type,
                        **(
                            {"AttributeNames": channel.s3_data_source.attribute_names}
                            if channel.s3_data_source.attribute_names
                            else {}
                        ),
                    }
                },
            }
            for channel in manifest.channels
        ],
        "OutputDataConfig": {"S3OutputPath": params.model.artifacts_s3_output_path},
        "ResourceConfig": {
            "InstanceType": params.training_instance_type,
            "InstanceCount": params.training_instance_count,
            "VolumeSizeInGB": params.training_instance_volume_size_in_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": params.enable_managed_spot_training,
        "EnableNetworkIsolation": params.enable_network_isolation,
    }
    if params.enable_managed_spot_training:
        # A spot job may wait for capacity; SageMaker requires the wait budget to cover the runtime.
        stopping["MaxWaitTimeInSeconds"] = (
            params.max_wait_time_in_seconds or 2 * params.max_runtime_in_seconds
        )
        checkpoint_root = (
            params.spot_training_checkpoint_s3_uri or f"s3://{bucket}/model-training-checkpoint/"
        )
        definition["CheckpointConfig"] = {"S3Uri": f"{checkpoint_root.rstrip('/')}/{tuning_job_name}/"}
    vpc = _vpc_config(params.model.training_security_group_ids, params.model.training_subnets)
    if vpc:
        definition["VpcConfig"] = vpc
    return definition


def _quality_gate(
    params: MlParameters, manifest: Manifest, tuning_job_name: str
) -> QualityGateSettings | None:
    gate = params.quality_gate
    if gate is None:
        return None
    evaluation = None
    if gate.must_beat_deployed_model and params.training_image:  # ml-parameters requires the image then
        [validation] = [item for item in manifest.channels if item.channel_name == VALIDATION_CHANNEL]
        job_name = f"{tuning_job_name}-gate"  # tuning job names are 32 characters at most, jobs' 63
        evaluation = GateEvaluation(
            processing_job_name=job_name,
            image_uri=params.training_image,
            instance_type=params.training_instance_type,
            volume_size_in_gb=params.training_instance_volume_size_in_gb,
            max_runtime_in_seconds=params.max_runtime_in_seconds,
            validation_s3_uri=validation.s3_data_source.s3_uri,
            validation_s3_data_type=validation.s3_data_source.s3_data_type,
            output_s3_uri=f"{params.model.artifacts_s3_output_path.rstrip('/')}/{job_name}/evaluation",
        )
    return QualityGateSettings(
        objective_metric_name=params.objective_metric_name,
        objective_type=params.resolved_objective_type,
        min_objective_value=gate.min_objective_value,
        min_improvement=gate.min_improvement,
        evaluation=evaluation,
    )


def deployment_config(deployment: Deployment, alarm_names: tuple[str, ...]) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig for ml-parameters' ``deployment``: a blue/green update."""
    routing: dict[str, Any] = {
        "Type": {"AllAtOnce": "ALL_AT_ONCE", "Canary": "CANARY", "Linear": "LINEAR"}[deployment.strategy],
        "WaitIntervalInSeconds": deployment.wait_interval_in_seconds
        if deployment.strategy != "AllAtOnce"
        else 0,
    }
    for key, size in (
        ("CanarySize", deployment.canary_size),
        ("LinearStepSize", deployment.linear_step_size),
    ):
        if size is not None:
            routing[key] = {"Type": size.type, "Value": size.value}
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        "TerminationWaitInSeconds": deployment.baking_period_in_seconds,
    }
    if deployment.maximum_execution_timeout_in_seconds is not None:
        policy["MaximumExecutionTimeoutInSeconds"] = deployment.maximum_execution_timeout_in_seconds
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if alarm_names:  # SageMaker takes 1 to 10 alarms, none is no list
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarm_names]}
    return config


# Captured as text rather than base64: the content types the predictor reads and answers.
CAPTURED_CSV_CONTENT_TYPES = ("text/csv",)
CAPTURED_JSON_CONTENT_TYPES = ("application/json", "application/jsonlines")


def data_capture_config(capture: DataCapture) -> dict[str, Any]:
    """CreateEndpointConfig's DataCaptureConfig for ml-parameters' ``model.hosting.dataCapture``."""
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": capture.initial_sampling_percentage,
        "DestinationS3Uri": capture.destination_s3_uri,
        "CaptureOptions": [{"CaptureMode": mode} for mode in capture.capture_options],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": list(CAPTURED_CSV_CONTENT_TYPES),
            "JsonContentTypes": list(CAPTURED_JSON_CONTENT_TYPES),
        },
    }


def deployment_settings(
    params: MlParameters, stack: StackResources, deployment_id: str
) -> DeploymentSettings:
    """The endpoint-deployment settings from ml-parameters; ``deployment_id`` makes the configuration's name
    unique (a run id, or a registered version's)."""
    hosting = params.model.hosting
    endpoint_config_name = unique_name(params.endpoint_name, deployment_id, RESOURCE_NAME_MAX_LENGTH)
    common = {
        "endpoint_name": params.endpoint_name,
        "endpoint_config_name": endpoint_config_name,
        "poll_interval_seconds": params.endpoint_poll_interval_seconds,
        "max_poll_attempts": params.endpoint_max_poll_attempts,
    }
    if hosting.serverless_config:
        return DeploymentSettings(
            **common,
            variant=ProductionVariant(
                variant_name=VARIANT_NAME,
                initial_variant_weight=1,
                serverless_config=hosting.serverless_config,
            ),
            autoscaling=None,
            deployment_config={},
        )
    return DeploymentSettings(
        **common,
        variant=ProductionVariant(
            variant_name=VARIANT_NAME,
            instance_type=hosting.instance_type,
            initial_instance_count=hosting.initial_instance_count,
            initial_variant_weight=1,
        ),
        autoscaling=Autoscaling(
            min_capacity=params.autoscaling_min_capacity,
            max_capacity=params.autoscaling_max_capacity,
            policy_name=f"{params.endpoint_name}-target-tracking",
            target_tracking_scaling_policy_configuration=params.target_tracking_scaling_policy_configuration,
        ),
        deployment_config=deployment_config(params.deployment, stack.rollback_alarm_names),
        data_capture_config=data_capture_config(hosting.data_capture) if hosting.data_capture else None,
    )


def build_deployment_input(
    params: MlParameters, stack: StackResources, registration: ModelRegistration, deployment_id: str
) -> dict[str, Any]:
    """The endpoint-deployment state machine's input for a registered version (an approval, or by hand)."""
    settings = deployment_settings(params, stack, deployment_id)
    return DeploymentInput(**settings.model_dump(), **registration.model_dump()).model_dump(
        mode="json",
        exclude_none=True,  # the state machine tests the presence of optional parts
    )


def build_execution_input(
    params: MlParameters,
    hyperparameters: Hyperparameters,
    manifest: Manifest,
    run: RunIdentity,
    stack: StackResources,
) -> dict[str, Any]:
    """The parent state machine's input document, validated against ``RunInput``."""
    check_objective_channel(params, manifest)
    check_distribution(params, manifest)
    check_input_mode(params, manifest)
    run_id = run.run_id
    tuning_job_name = unique_name(params.tuning_job_name, run_id, TUNING_JOB_NAME_MAX_LENGTH)
    hosting = params.model.hosting
    run_input = RunInput(
        run_id=run_id,
        manifest=f"s3://{run.bucket}/{run.key}",
        data_watermark=manifest.data_watermark.isoformat() if manifest.data_watermark else None,
        quality_gate=_quality_gate(params, manifest, tuning_job_name),
        tuning=TuningInput(
            hyper_parameter_tuning_job_name=tuning_job_name,
            hyper_parameter_tuning_job_config=_tuning_job_config(params, hyperparameters),
            training_job_definition=_training_job_definition(
                params, hyperparameters, manifest, tuning_job_name, run.bucket
            ),
            algorithm=Algorithm(algorithm_arn=params.algorithm_arn)
            if params.algorithm_arn
            else Algorithm(training_image=params.training_image, inference_image=params.inference_image),
            model=ModelToCreate(
                model_name=unique_name(params.model.name, run_id, RESOURCE_NAME_MAX_LENGTH),
                vpc_config=VpcConfig(security_group_ids=hosting.security_group_ids, subnets=hosting.subnets)
                if hosting.subnets
                else None,
                enable_network_isolation=hosting.serverless_config is None,
            ),
            endpoint_name=params.endpoint_name,
        ),
        registry=RegistrySettings(
            model_package_group_name=stack.model_package_group_name, model_approval=params.model_approval
        ),
        deployment=deployment_settings(params, stack, run_id),
    )
    return run_input.to_document()
