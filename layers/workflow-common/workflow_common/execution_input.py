"""Build the input of the tuning-and-deployment state machine from the validated user files.

Everything SageMaker would reject later (name lengths, strategy rules, spot settings) is settled here, so the
state machines stay plain and a bad file fails in seconds instead of minutes into a run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflow_common.ml_parameters import Hyperparameters, Manifest, MlParameters, check_compatible
from workflow_common.sagemaker_names import RESOURCE_NAME_MAX_LENGTH, TUNING_JOB_NAME_MAX_LENGTH

VARIANT_NAME = "AllTraffic"


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


def build_execution_input(
    params: MlParameters, hyperparameters: Hyperparameters, manifest: Manifest, run: RunIdentity
) -> dict[str, Any]:
    """The parent state machine's input: ``runId``, ``tuning`` (tuner input) and ``deployment`` (deployer input)."""
    run_id = run.run_id
    tuning_job_name = unique_name(params.tuning_job_name, run_id, TUNING_JOB_NAME_MAX_LENGTH)
    algorithm = (
        {"algorithmArn": params.algorithm_arn}
        if params.algorithm_arn
        else {"trainingImage": params.training_image, "inferenceImage": params.inference_image}
    )
    model: dict[str, Any] = {"modelName": unique_name(params.model.name, run_id, RESOURCE_NAME_MAX_LENGTH)}
    hosting_vpc = _vpc_config(params.model.hosting.security_group_ids, params.model.hosting.subnets)
    if hosting_vpc:
        model["vpcConfig"] = hosting_vpc
    return {
        "runId": run_id,
        "manifest": f"s3://{run.bucket}/{run.key}",
        "tuning": {
            "hyperParameterTuningJobName": tuning_job_name,
            "hyperParameterTuningJobConfig": _tuning_job_config(params, hyperparameters),
            "trainingJobDefinition": _training_job_definition(
                params, hyperparameters, manifest, tuning_job_name, run.bucket
            ),
            "algorithm": algorithm,
            "model": model,
        },
        "deployment": {
            "endpointName": params.endpoint_name,
            "endpointConfigName": unique_name(params.endpoint_name, run_id, RESOURCE_NAME_MAX_LENGTH),
            "variant": {
                "VariantName": VARIANT_NAME,
                "InstanceType": params.model.hosting.instance_type,
                "InitialInstanceCount": params.model.hosting.initial_instance_count,
                "InitialVariantWeight": 1,
            },
            "autoscaling": {
                "MinCapacity": params.autoscaling_min_capacity,
                "MaxCapacity": params.autoscaling_max_capacity,
                "PolicyName": f"{params.endpoint_name}-target-tracking",
                "TargetTrackingScalingPolicyConfiguration": (
                    params.target_tracking_scaling_policy_configuration.model_dump(by_alias=True)
                ),
            },
            "pollIntervalSeconds": params.endpoint_poll_interval_seconds,
            "maxPollAttempts": params.endpoint_max_poll_attempts,
        },
    }
