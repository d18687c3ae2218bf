"""Typed, validated views of the three user files: ml-parameters.json, hyperparameters.json, manifest.json.

The shapes are the original system's (camelCase keys, numbers often given as strings); pydantic's lax mode
casts "10" -> 10 and "false" -> False, so original files keep working while bad values fail with a message
that names the field.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from workflow_common.models import CamelCaseModel, PascalCaseModel
from workflow_common.sagemaker_names import NAME_PATTERN, RESOURCE_NAME_MAX_LENGTH

ChannelName = Literal["training", "validation"]
VALIDATION_CHANNEL = "validation"
MAXIMIZED_METRICS = ("auc", "aucpr", "gini", "r2")

# SageMaker documents FastFile for S3 prefixes and says it does not support augmented manifest files; what it does
# with a plain manifest file is not documented.
FASTFILE_DATA_TYPES = "SageMaker documents FastFile mode for S3Prefix channels only"

SageMakerName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1)]
S3Uri = Annotated[str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")]


def _not_a_boolean(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; in these files a boolean where a number belongs is a mistake.
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not a boolean")
    return value


NotBoolean = BeforeValidator(_not_a_boolean)
PositiveInt = Annotated[int, Field(ge=1), NotBoolean]
InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9-]+$")]

# SageMaker's limits on a tuning job's hyperparameters (CreateHyperParameterTuningJob API reference):
# names, bounds and categorical values up to 256 characters, at most 30 values per categorical range and 30
# ranges in all; static hyperparameters up to 100, names up to 256 and values up to 2500 characters.
HYPERPARAMETER_NAME_MAX_LENGTH = 256
CATEGORICAL_VALUES_MAX = 30
PARAMETER_RANGES_MAX = 30
STATIC_HYPERPARAMETERS_MAX = 100
STATIC_VALUE_MAX_LENGTH = 2500
HYPERBAND_MAX_RESOURCE = 20000
HyperparameterName = Annotated[
    str, StringConstraints(min_length=1, max_length=HYPERPARAMETER_NAME_MAX_LENGTH)
]


ModelT = TypeVar("ModelT", bound=BaseModel)


class ParameterFileError(ValueError):
    """A user file is not valid JSON or does not match its schema. The message names every bad field."""


def _no_placeholders(value: Any, location: str = "") -> None:
    """Reject template values such as "<s3bucket>" that the user forgot to fill in."""
    if isinstance(value, str) and re.search(r"<[a-zA-Z0-9_-]+>", value):
        raise ValueError(f"{location or 'value'} still holds the template placeholder {value!r}")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_placeholders(item, f"{location}.{key}" if location else key)
    if isinstance(value, list):
        for index, item in enumerate(value):
            _no_placeholders(item, f"{location}[{index}]")


class DataCapture(CamelCaseModel):
    """What the endpoint records of its requests and responses (SageMaker's DataCaptureConfig): JSON Lines under
    ``<destinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/``, for monitoring and later training."""

    # The model's execution role writes the captured data: it may write the data bucket only.
    destination_s3_uri: S3Uri
    # Of the requests, those captured; SageMaker samples at random.
    initial_sampling_percentage: Annotated[int, Field(ge=0, le=100), NotBoolean] = 100
    capture_options: list[Literal["Input", "Output"]] = Field(["Input", "Output"], min_length=1, max_length=2)

    @field_validator("capture_options")
    @classmethod
    def _no_repeats(cls, options: list[str]) -> list[str]:
        if len(set(options)) != len(options):
            raise ValueError("each of Input and Output at most once")
        return options


# SageMaker's ProductionVariantServerlessConfig ranges (API reference): memory in 1 GB steps.
ServerlessMemorySize = Literal[1024, 2048, 3072, 4096, 5120, 6144]
SERVERLESS_CONCURRENCY_MAX = 200


class ServerlessConfig(PascalCaseModel):
    """A serverless endpoint (SageMaker's ProductionVariantServerlessConfig, passed as it is): SageMaker starts
    model servers on requests, up to MaxConcurrency at once, and none when there are none."""

    memory_size_in_mb: ServerlessMemorySize = Field(alias="MemorySizeInMB")
    max_concurrency: Annotated[int, Field(ge=1, le=SERVERLESS_CONCURRENCY_MAX), NotBoolean]
    # Model servers kept warm (billed while idle); absent: none.
    provisioned_concurrency: Annotated[int, Field(ge=1, le=SERVERLESS_CONCURRENCY_MAX), NotBoolean] | None = (
        None
    )

    @model_validator(mode="after")
    def _provisioned_within_maximum(self) -> ServerlessConfig:
        if self.provisioned_concurrency and self.provisioned_concurrency > self.max_concurrency:
            raise ValueError(
                f"ProvisionedConcurrency ({self.provisioned_concurrency}) is greater than MaxConcurrency "
                f"({self.max_concurrency})"
            )
        return self


class Hosting(CamelCaseModel):
    initial_instance_count: PositiveInt = 1
    instance_type: InstanceType = "ml.c5.large"
    security_group_ids: list[str] = Field(default_factory=list)
    subnets: list[str] = Field(default_factory=list)
    # Absent: nothing is captured.
    data_capture: DataCapture | None = None
    # Present: a serverless endpoint instead of instances.
    serverless_config: ServerlessConfig | None = None


class ModelSettings(CamelCaseModel):
    artifact_type: Literal["MOJO"] = "MOJO"
    artifacts_s3_output_path: S3Uri
    name: SageMakerName
    training_security_group_ids: list[str] = Field(default_factory=list)
    training_subnets: list[str] = Field(default_factory=list)
    hosting: Hosting = Field(default_factory=Hosting)


class PredefinedMetric(PascalCaseModel):
    predefined_metric_type: str = "SageMakerVariantInvocationsPerInstance"


class TargetTracking(PascalCaseModel):
    target_value: float = Field(5000.0, gt=0)
    predefined_metric_specification: PredefinedMetric = Field(default_factory=PredefinedMetric)
    scale_in_cooldown: int = Field(300, ge=0)
    scale_out_cooldown: int = Field(60, ge=0)
    disable_scale_in: bool = False


class QualityGate(CamelCaseModel):
    """When a tuned model may replace the one serving; absent: every tuned model is deployed."""

    # Direction-aware: a floor for a Maximize objective, a ceiling for a Minimize one.
    min_objective_value: Annotated[float, NotBoolean] | None = Field(None, allow_inf_nan=False)
    must_beat_deployed_model: bool = True
    # How much better than the deployed model's objective, on the same validation rows, in the objective's unit.
    min_improvement: Annotated[float, NotBoolean] = Field(0.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check_something(self) -> QualityGate:
        if self.min_objective_value is None and not self.must_beat_deployed_model:
            raise ValueError("checks nothing: give minObjectiveValue or leave mustBeatDeployedModel true")
        return self


class CapacitySize(CamelCaseModel):
    """A traffic-shifting step, as SageMaker's CapacitySize: instances of the variant, or a percentage of them."""

    type: Literal["INSTANCE_COUNT", "CAPACITY_PERCENT"]
    value: PositiveInt


class RollbackAlarms(CamelCaseModel):
    """The thresholds of the two CloudWatch alarms the stack creates on the endpoint (both fleets, each minute)."""

    # Average of Invocation5XXErrors: the fraction of invocations the model answered with a 5xx.
    max_error_rate: Annotated[float, NotBoolean] = Field(0.01, gt=0, lt=1)
    # Average ModelLatency (SageMaker reports microseconds; the alarm converts).
    max_model_latency_milliseconds: PositiveInt = 1000
    # Consecutive breaching minutes before the alarm fires.
    evaluation_periods: Annotated[int, Field(ge=1, le=5), NotBoolean] = 1


# SageMaker's BlueGreenUpdatePolicy and TrafficRoutingConfig ranges (API reference).
WAIT_SECONDS_MAX = 3600
EXECUTION_TIMEOUT_RANGE = (600, 28800)


class Deployment(CamelCaseModel):
    """How an endpoint update shifts traffic (SageMaker deployment guardrails, a blue/green update)."""

    strategy: Literal["AllAtOnce", "Canary", "Linear"] = "AllAtOnce"
    canary_size: CapacitySize | None = None
    linear_step_size: CapacitySize | None = None
    # Between traffic-shifting steps: the canary's or each linear step's watch.
    wait_interval_in_seconds: Annotated[int, Field(ge=0, le=WAIT_SECONDS_MAX), NotBoolean] = 300
    # With all traffic on the new fleet, before the old one is terminated (TerminationWaitInSeconds).
    baking_period_in_seconds: Annotated[int, Field(ge=0, le=WAIT_SECONDS_MAX), NotBoolean] = 0
    maximum_execution_timeout_in_seconds: (
        Annotated[int, Field(ge=EXECUTION_TIMEOUT_RANGE[0], le=EXECUTION_TIMEOUT_RANGE[1]), NotBoolean] | None
    ) = None
    rollback_alarms: RollbackAlarms = Field(default_factory=RollbackAlarms)

    @model_validator(mode="after")
    def _check_steps(self) -> Deployment:
        wanted = {"Canary": "canarySize", "Linear": "linearStepSize"}.get(self.strategy)
        given = [
            name
            for name, value in (("canarySize", self.canary_size), ("linearStepSize", self.linear_step_size))
            if value is not None
        ]
        if wanted and wanted not in given:
            raise ValueError(f"the {self.strategy} strategy needs {wanted}")
        extra = [name for name in given if name != wanted]
        if extra:
            raise ValueError(f"{extra[0]} does not apply to the {self.strategy} strategy")
        if self.canary_size and self.canary_size.type == "CAPACITY_PERCENT" and self.canary_size.value > 50:
            raise ValueError("canarySize may be at most 50 percent of the fleet (SageMaker's limit)")
        step = self.linear_step_size
        if step and step.type == "CAPACITY_PERCENT" and not 10 <= step.value <= 50:
            raise ValueError("linearStepSize must be 10 to 50 percent of the fleet (SageMaker's limit)")
        return self

    def steps(self, instance_count: int) -> int:
        """How many times traffic moves before all of it is on the new fleet of ``instance_count`` instances."""
        if self.strategy == "Canary":
            return 2
        if self.strategy == "Linear":
            assert self.linear_step_size is not None
            step = self.linear_step_size
            share = step.value / instance_count if step.type == "INSTANCE_COUNT" else step.value / 100
            return math.ceil(1 / share)
        return 1


class Retraining(CamelCaseModel):
    """What a scheduled retraining (the stack's RetrainingSchedule) watches and trains on."""

    # Each tick lists the objects under these; one newer than the data watermark starts a run.
    training_data_prefixes: list[S3Uri] = Field(min_length=1)
    # The run trains on every object under the prefixes modified in the last N days before the tick.
    training_window_days: PositiveInt = 30
    # The run's validation channel; absent: the run has none.
    validation_s3_uri: S3Uri | None = None


WARM_START_PARENTS_MAX = 5  # HyperParameterTuningJobWarmStartConfig.ParentHyperParameterTuningJobs
WARM_START_STRATEGIES = ("Bayesian", "Random")


class WarmStart(CamelCaseModel):
    """Start each run's tuning from this stack's latest completed tuning jobs (SageMaker's TransferLearning warm
    start: the data may differ from the parents')."""

    # At most this many parents; fewer when fewer completed tuning jobs fit (see warm_start.py).
    max_parents: Annotated[int, Field(ge=1, le=WARM_START_PARENTS_MAX), NotBoolean] = 1


class MlParameters(CamelCaseModel):
    """ml-parameters.json. Keys added beyond the original file are optional with the original's behaviour."""

    tuning_job_name: SageMakerName
    tuning_strategy: Literal["Bayesian", "Random", "Grid", "Hyperband"] = "Bayesian"
    # SageMaker's RandomSeed: the same seed makes a tuning job's search choose alike again (H2O's own `seed` is a
    # static hyperparameter). None: SageMaker picks one.
    tuning_random_seed: Annotated[int, Field(ge=0, le=2**31 - 1), NotBoolean] | None = None  # an API Integer
    # The original file's spelling, not the generated algorithmArn.
    algorithm_arn: str | None = Field(None, alias="algorithmARN", pattern=r"^arn:aws[a-z-]*:sagemaker:")
    training_image: str | None = None
    inference_image: str | None = None
    max_parallel_training_jobs: PositiveInt
    max_number_of_training_jobs: PositiveInt | None = None
    # Every channel's content type unless the manifest gives one: one the trainer reads.
    input_content_type: Literal["text/csv", "application/x-parquet"] = "text/csv"
    # Accepted for compatibility with the original files; a single-definition tuning job does not use it.
    training_job_definition_name: str | None = None
    # How every channel reaches the trainer (each channel's InputMode): File downloads the data before the
    # container starts; FastFile streams it from S3 as it is read. The trainer reads files, not Pipe's FIFOs.
    training_input_mode: Literal["File", "FastFile"] = "File"
    enable_managed_spot_training: bool = False
    spot_training_checkpoint_s3_uri: S3Uri | None = None
    training_instance_type: InstanceType = "ml.c5.2xlarge"
    training_instance_count: PositiveInt = 1
    # The original file's spelling, not the generated ...SizeInGb.
    training_instance_volume_size_in_gb: PositiveInt = Field(30, alias="trainingInstanceVolumeSizeInGB")
    training_job_early_stopping_type: Literal["Off", "Auto"] = "Off"
    max_runtime_in_seconds: PositiveInt = 3600
    max_wait_time_in_seconds: PositiveInt | None = None
    objective_metric_name: str = Field("validation:auc", pattern=r"^\w+:\w+$")
    objective_type: Literal["Maximize", "Minimize"] | None = None
    enable_network_isolation: bool = True
    endpoint_name: Annotated[SageMakerName, StringConstraints(max_length=RESOURCE_NAME_MAX_LENGTH)]
    endpoint_poll_interval_seconds: PositiveInt = 30
    endpoint_max_poll_attempts: PositiveInt = 120
    model: ModelSettings
    autoscaling_min_capacity: PositiveInt = 1
    autoscaling_max_capacity: PositiveInt = 4
    target_tracking_scaling_policy_configuration: TargetTracking = Field(default_factory=TargetTracking)
    quality_gate: QualityGate | None = None
    retraining: Retraining | None = None
    warm_start: WarmStart | None = None
    # Automatic: a model that passes the quality gate is approved in the registry and deployed by its run.
    # Manual: it waits PendingManualApproval; approving it in the registry deploys it.
    model_approval: Literal["Automatic", "Manual"] = "Automatic"
    deployment: Deployment = Field(default_factory=Deployment)

    @model_validator(mode="before")
    @classmethod
    def _reject_placeholders(cls, data: Any) -> Any:
        _no_placeholders(data)
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> MlParameters:
        if bool(self.algorithm_arn) == bool(self.training_image):
            raise ValueError(
                "give either algorithmARN, or trainingImage and inferenceImage (not both, not none)"
            )
        if self.training_image and not self.inference_image:
            raise ValueError("inferenceImage is required with trainingImage")
        if self.autoscaling_min_capacity > self.autoscaling_max_capacity:
            raise ValueError(
                f"autoscalingMinCapacity ({self.autoscaling_min_capacity}) is greater than "
                f"autoscalingMaxCapacity ({self.autoscaling_max_capacity})"
            )
        if self.tuning_strategy != "Grid" and self.max_number_of_training_jobs is None:
            raise ValueError(f"maxNumberOfTrainingJobs is required for the {self.tuning_strategy} strategy")
        if (
            self.max_number_of_training_jobs
            and self.max_parallel_training_jobs > self.max_number_of_training_jobs
        ):
            raise ValueError(
                f"maxParallelTrainingJobs ({self.max_parallel_training_jobs}) is greater than "
                f"maxNumberOfTrainingJobs ({self.max_number_of_training_jobs})"
            )
        if self.max_wait_time_in_seconds and self.max_wait_time_in_seconds < self.max_runtime_in_seconds:
            raise ValueError("maxWaitTimeInSeconds must be at least maxRuntimeInSeconds")
        if bool(self.model.training_subnets) != bool(self.model.training_security_group_ids):
            raise ValueError(
                "model.trainingSubnets and model.trainingSecurityGroupIds go together (VPC training)"
            )
        if bool(self.model.hosting.subnets) != bool(self.model.hosting.security_group_ids):
            raise ValueError(
                "model.hosting.subnets and model.hosting.securityGroupIds go together (VPC hosting)"
            )
        if self.quality_gate and not self.objective_metric_name.startswith(f"{VALIDATION_CHANNEL}:"):
            # The trainer measures the objective on the channel the metric names; the gate compares the
            # tuned and the deployed model on the same rows, which only the validation channel holds.
            raise ValueError(
                f"qualityGate needs an objectiveMetricName measured on the {VALIDATION_CHANNEL} channel "
                f"({VALIDATION_CHANNEL}:<metric>), got {self.objective_metric_name}"
            )
        if (
            self.retraining
            and self.retraining.validation_s3_uri is None
            and self.objective_channel == VALIDATION_CHANNEL
        ):
            raise ValueError(
                f"retraining.validationS3Uri is needed: the objective {self.objective_metric_name} is measured on "
                f"the {VALIDATION_CHANNEL} channel, which a scheduled run has only from it"
            )
        if self.quality_gate and self.quality_gate.must_beat_deployed_model and self.algorithm_arn:
            # The deployed model is scored by the training image's evaluate command, which only this
            # project's trainer image has.
            raise ValueError(
                "qualityGate.mustBeatDeployedModel needs trainingImage (the h2o-gbm-trainer image scores the "
                "deployed model), not algorithmARN: set it false or train with trainingImage"
            )
        if self.warm_start and self.tuning_strategy not in WARM_START_STRATEGIES:
            raise ValueError(
                f"warmStart: SageMaker documents warm start for the {' and '.join(WARM_START_STRATEGIES)} "
                f"strategies, not {self.tuning_strategy}: remove warmStart or change tuningStrategy"
            )
        self._check_input_mode()
        self._check_serverless()
        self._check_deployment()
        return self

    def _check_serverless(self) -> None:
        """Refuse, naming the field, what a serverless endpoint does not have or SageMaker does not offer with it
        (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html, feature exclusions)."""
        hosting = self.model.hosting
        if hosting.serverless_config is None:
            return
        prefix = "model.hosting.serverlessConfig"
        instances = sorted(
            f"model.hosting.{to_camel(name)}"
            for name in hosting.model_fields_set & {"instance_type", "initial_instance_count"}
        ) + sorted(
            to_camel(name)
            for name in self.model_fields_set
            & {
                "autoscaling_min_capacity",
                "autoscaling_max_capacity",
                "target_tracking_scaling_policy_configuration",
            }
        )
        if instances:
            raise ValueError(
                f"{prefix}: a serverless endpoint has no instances to choose or scale (SageMaker scales it up to "
                f"MaxConcurrency): remove {', '.join(instances)}"
            )
        if hosting.data_capture:
            raise ValueError(
                f"{prefix}: SageMaker does not capture data on serverless endpoints: remove model.hosting.dataCapture"
            )
        if hosting.subnets:
            raise ValueError(
                f"{prefix}: serverless endpoints do not run in a VPC: remove model.hosting.subnets and securityGroupIds"
            )
        deployment = self.deployment
        if (
            deployment.strategy != "AllAtOnce"
            or deployment.baking_period_in_seconds
            or deployment.maximum_execution_timeout_in_seconds is not None
        ):
            raise ValueError(
                f"{prefix}: a serverless endpoint is updated by SageMaker's default update here, all at once without "
                "traffic shifting, baking or rollback alarms: use deployment.strategy AllAtOnce with "
                "bakingPeriodInSeconds 0 and no maximumExecutionTimeoutInSeconds"
            )

    def _check_input_mode(self) -> None:
        if self.training_input_mode != "FastFile":
            return
        if self.algorithm_arn:
            # CreateAlgorithm refuses FastFile among a channel's SupportedInputModes (boto/boto3#4469), and a job
            # may only use a mode its algorithm's channel supports.
            raise ValueError(
                "trainingInputMode FastFile needs trainingImage: an algorithm resource cannot declare FastFile "
                "among its channels' input modes; use File, or train with trainingImage"
            )
        if self.retraining:
            raise ValueError(
                "trainingInputMode FastFile does not work with retraining: a scheduled run trains on a ManifestFile "
                f"channel, and {FASTFILE_DATA_TYPES}; use File"
            )

    def _check_deployment(self) -> None:
        """Refuse what SageMaker's deployment guardrails cannot do with this endpoint's fleet, naming the field.

        An update keeps the endpoint's current instance count, anywhere from autoscalingMinCapacity to
        autoscalingMaxCapacity; every step size must be valid for each of those fleets."""
        deployment = self.deployment
        hosting = self.model.hosting
        guarded = deployment.strategy != "AllAtOnce" or deployment.baking_period_in_seconds > 0
        if guarded and hosting.instance_type.startswith("ml.inf1."):
            raise ValueError(
                f"deployment: SageMaker's deployment guardrails exclude Inf1 instances ({hosting.instance_type}); "
                "it would update all at once without baking: use strategy AllAtOnce with bakingPeriodInSeconds 0"
            )
        smallest, largest = self.autoscaling_min_capacity, self.autoscaling_max_capacity
        size = deployment.canary_size or deployment.linear_step_size
        if size is not None:
            name = "canarySize" if deployment.canary_size else "linearStepSize"
            if hosting.initial_instance_count < 2 or smallest < 2:
                raise ValueError(
                    f"deployment.strategy {deployment.strategy} shifts traffic in steps of at most half the "
                    "fleet, so the endpoint needs at least 2 instances: set model.hosting.initialInstanceCount "
                    "and autoscalingMinCapacity to 2 or more, or use strategy AllAtOnce"
                )
            if size.type == "INSTANCE_COUNT" and size.value * 2 > smallest:
                raise ValueError(
                    f"deployment.{name}: {size.value} instance(s) is more than half of a fleet of "
                    f"{smallest} (autoscalingMinCapacity), which SageMaker refuses"
                )
            if size.type == "INSTANCE_COUNT" and name == "linearStepSize" and size.value * 10 < largest:
                raise ValueError(
                    f"deployment.linearStepSize: {size.value} instance(s) is less than 10 percent of a fleet "
                    f"of {largest} (autoscalingMaxCapacity), which SageMaker refuses"
                )
            if size.type == "CAPACITY_PERCENT" and size.value * smallest < 100:
                raise ValueError(
                    f"deployment.{name}: {size.value} percent of a fleet of {smallest} "
                    "(autoscalingMinCapacity) is less than one instance"
                )
        timeout = deployment.maximum_execution_timeout_in_seconds
        if timeout is not None:
            # Conservative: a wait after every step (the most steps are on the largest fleet), then baking.
            waiting = (
                deployment.wait_interval_in_seconds * deployment.steps(largest)
                + deployment.baking_period_in_seconds
            )
            if timeout <= waiting:
                raise ValueError(
                    f"deployment.maximumExecutionTimeoutInSeconds ({timeout}) must exceed the deployment's "
                    f"waits ({waiting} s: the wait intervals and the baking period)"
                )

    @property
    def objective_channel(self) -> str:
        """The channel the objective is measured on: `validation` for `validation:auc`."""
        return self.objective_metric_name.split(":", 1)[0]

    @property
    def resolved_objective_type(self) -> Literal["Maximize", "Minimize"]:
        if self.objective_type:
            return self.objective_type
        metric = self.objective_metric_name.split(":", 1)[1]
        return "Maximize" if metric in MAXIMIZED_METRICS else "Minimize"


class IntegerRange(PascalCaseModel):
    name: HyperparameterName
    min_value: Annotated[int, NotBoolean]
    max_value: Annotated[int, NotBoolean]
    scaling_type: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"

    @model_validator(mode="after")
    def _check_bounds(self) -> IntegerRange:
        _check_range(self.name, self.min_value, self.max_value, self.scaling_type)
        if self.scaling_type == "ReverseLogarithmic":
            # It needs the whole range within 0 <= x < 1, where the only integer is 0.
            raise ValueError(
                f"{self.name}: ReverseLogarithmic scaling is for ContinuousParameterRanges within 0 <= x < 1"
            )
        return self


class ContinuousRange(PascalCaseModel):
    name: HyperparameterName
    # NaN compares false with everything, so it would pass the bound checks and reach SageMaker.
    min_value: Annotated[float, NotBoolean] = Field(allow_inf_nan=False)
    max_value: Annotated[float, NotBoolean] = Field(allow_inf_nan=False)
    scaling_type: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"

    @model_validator(mode="after")
    def _check_bounds(self) -> ContinuousRange:
        _check_range(self.name, self.min_value, self.max_value, self.scaling_type)
        if self.scaling_type == "ReverseLogarithmic" and not (self.min_value >= 0 and self.max_value < 1):
            raise ValueError(f"{self.name}: ReverseLogarithmic scaling needs 0 <= MinValue and MaxValue < 1")
        return self


def _check_range(name: str, low: float, high: float, scaling: str) -> None:
    if low > high:
        raise ValueError(f"{name}: MinValue ({low}) is greater than MaxValue ({high})")
    if scaling == "Logarithmic" and low <= 0:
        raise ValueError(f"{name}: Logarithmic scaling needs MinValue > 0")


class CategoricalRange(PascalCaseModel):
    name: HyperparameterName
    values: list[Annotated[str, StringConstraints(max_length=HYPERPARAMETER_NAME_MAX_LENGTH)]] = Field(
        min_length=1, max_length=CATEGORICAL_VALUES_MAX
    )


class ParameterRanges(PascalCaseModel):
    # SageMaker's keys, shorter Python names.
    integer: list[IntegerRange] = Field(default_factory=list, alias="IntegerParameterRanges")
    continuous: list[ContinuousRange] = Field(default_factory=list, alias="ContinuousParameterRanges")
    categorical: list[CategoricalRange] = Field(default_factory=list, alias="CategoricalParameterRanges")

    @model_validator(mode="after")
    def _check_count(self) -> ParameterRanges:
        count = len(self.integer) + len(self.continuous) + len(self.categorical)
        if count > PARAMETER_RANGES_MAX:
            raise ValueError(
                f"{count} ranges; a SageMaker tuning job searches at most {PARAMETER_RANGES_MAX}"
            )
        return self

    def names(self) -> list[str]:
        return [item.name for group in (self.integer, self.continuous, self.categorical) for item in group]

    def to_sagemaker(self) -> dict[str, list[dict[str, Any]]]:
        """SageMaker wants every bound as a string."""
        as_strings = {"MinValue", "MaxValue"}
        return {
            key: [
                {k: (str(v) if k in as_strings else v) for k, v in item.model_dump(by_alias=True).items()}
                for item in getattr(self, attribute)
            ]
            for key, attribute in (
                ("IntegerParameterRanges", "integer"),
                ("ContinuousParameterRanges", "continuous"),
                ("CategoricalParameterRanges", "categorical"),
            )
        }


class HyperbandStrategyConfig(PascalCaseModel):
    min_resource: PositiveInt | None = None
    max_resource: Annotated[int, Field(ge=1, le=HYPERBAND_MAX_RESOURCE)] | None = None

    @model_validator(mode="after")
    def _check_order(self) -> HyperbandStrategyConfig:
        if self.min_resource and self.max_resource and self.min_resource > self.max_resource:
            raise ValueError(
                f"MinResource ({self.min_resource}) is greater than MaxResource ({self.max_resource})"
            )
        return self


class Hyperparameters(CamelCaseModel):
    """hyperparameters.json: ranges to tune and static values passed to every training job (as strings)."""

    parameter_ranges: ParameterRanges = Field(default_factory=ParameterRanges)
    static_hyper_parameters: dict[
        str, Annotated[str, StringConstraints(max_length=STATIC_VALUE_MAX_LENGTH)]
    ] = Field(default_factory=dict, max_length=STATIC_HYPERPARAMETERS_MAX)
    hyperband_strategy_config: HyperbandStrategyConfig | None = None

    @field_validator("static_hyper_parameters", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # SageMaker passes every hyperparameter as a string; accept JSON numbers/booleans for convenience.
        if isinstance(value, dict):
            for key in value:
                if not key or len(key) > HYPERPARAMETER_NAME_MAX_LENGTH:
                    raise ValueError(
                        f"{key[:40]!r}{'...' if len(key) > 40 else ''}: hyperparameter names have 1 to "
                        f"{HYPERPARAMETER_NAME_MAX_LENGTH} characters, this one {len(key)}"
                    )
            return {
                key: item if isinstance(item, str) else _as_hyperparameter_string(key, item)
                for key, item in value.items()
            }
        return value

    @field_validator("static_hyper_parameters")
    @classmethod
    def _check_training_dict_string(cls, value: dict[str, str]) -> dict[str, str]:
        training = value.get("training")
        if training is not None:
            try:
                parsed = ast.literal_eval(training)
            except (ValueError, SyntaxError) as error:
                raise ValueError(f"training is not a dict literal: {error}") from None
            if not isinstance(parsed, dict):
                raise ValueError("training must be a dict such as \"{'target': 'y'}\"")
        return value

    @model_validator(mode="after")
    def _check_names(self) -> Hyperparameters:
        names = self.parameter_ranges.names()
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"parameterRanges names appear more than once: {', '.join(duplicated)}")
        both = sorted(set(names) & set(self.static_hyper_parameters))
        if both:
            raise ValueError(f"parameters are both tuned and static: {', '.join(both)}")
        return self


def _as_hyperparameter_string(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise ValueError(
        f"{key}: hyperparameter values must be strings, numbers or booleans, not {type(value).__name__}"
    )


def check_compatible(
    params: MlParameters, hyperparameters: Hyperparameters, hyperparameters_file: str = "hyperparameters"
) -> None:
    """Rules spanning both files: checked at deploy time by the importer and again when a run is built."""
    ranges = hyperparameters.parameter_ranges
    if params.tuning_strategy == "Grid" and (ranges.integer or ranges.continuous):
        raise ParameterFileError(
            f"{hyperparameters_file}: parameterRanges: the Grid strategy takes only CategoricalParameterRanges "
            "(tuningStrategy is Grid in ml-parameters); list the values to try instead of Integer/Continuous ranges"
        )
    # Without MaxResource SageMaker infers it from an epochs-like static hyperparameter, "If HyperbandStrategyConfig
    # is unable to infer a value for MaxResource, it generates a validation error" (API_HyperbandStrategyConfig),
    # and the trainer takes no such hyperparameter: the tuning job would be refused when a run starts.
    config = hyperparameters.hyperband_strategy_config
    if params.tuning_strategy == "Hyperband" and (config is None or config.max_resource is None):
        raise ParameterFileError(
            f"{hyperparameters_file}: hyperbandStrategyConfig.MaxResource is required with the Hyperband strategy "
            "(tuningStrategy is Hyperband in ml-parameters): SageMaker cannot infer it from the trainer's "
            "hyperparameters"
        )


class S3DataSource(PascalCaseModel):
    s3_uri: S3Uri
    s3_data_type: Literal["S3Prefix", "ManifestFile"] = "S3Prefix"
    s3_data_distribution_type: Literal["FullyReplicated", "ShardedByS3Key"] = "FullyReplicated"
    attribute_names: list[str] = Field(default_factory=list)


# What the trainer reads (h2o-gbm-trainer/README.md): CSV, gzip-compressed or not (told by its first bytes), and
# Parquet.
CHANNEL_CONTENT_TYPES = ("text/csv", "application/x-parquet")


class Channel(CamelCaseModel):
    channel_name: ChannelName
    s3_data_source: S3DataSource
    content_type: str | None = None
    compression_type: Literal["None", "Gzip"] | None = None

    @field_validator("content_type")
    @classmethod
    def _content_type_the_trainer_reads(cls, value: str | None) -> str | None:
        if value is not None and value not in CHANNEL_CONTENT_TYPES:
            raise ValueError(f"the trainer reads {' or '.join(CHANNEL_CONTENT_TYPES)}, not {value!r}")
        return value

    @field_validator("compression_type")
    @classmethod
    def _file_mode_compression(cls, value: str | None) -> str | None:
        # SageMaker's Channel reference: "CompressionType is used only in Pipe input mode. In File mode, leave
        # this field unset or set it to None." The tuner trains in File or FastFile mode.
        if value == "Gzip":
            raise ValueError(
                "Gzip is for Pipe input mode only (SageMaker's Channel reference), and the training jobs read "
                "their channels as files (File or FastFile mode), where gzip-compressed CSV files are read as "
                "gzip from their first bytes: leave compressionType out, or None"
            )
        return value


class Manifest(CamelCaseModel):
    channels: list[Channel] = Field(min_length=1)
    # Written by the retraining planner: the newest data object's time, recorded once the run completes.
    data_watermark: AwareDatetime | None = None

    @model_validator(mode="after")
    def _check_channels(self) -> Manifest:
        names = [channel.channel_name for channel in self.channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {names}")
        if "training" not in names:
            raise ValueError("the 'training' channel is required")
        return self

    def check_bucket(self, bucket: str) -> None:
        """Training data must come from the workflow's own bucket: the SageMaker role can read nothing else."""
        for channel in self.channels:
            if not channel.s3_data_source.s3_uri.startswith(f"s3://{bucket}/"):
                raise ParameterFileError(
                    f"manifest.json: channel '{channel.channel_name}' S3Uri "
                    f"{channel.s3_data_source.s3_uri} is outside the data bucket s3://{bucket}/"
                )


def check_algorithm_account(params: MlParameters, account_id: str) -> None:
    """An algorithm of another account (an AWS Marketplace subscription) trains, but its model is hosted only
    through a model package made from the algorithm ("you must create a model package before you can use it to
    get inferences", sagemaker-mkt-buy.html); this workflow creates the model from the inference image, which
    CreateModel would refuse after the whole tuning job had run."""
    if params.algorithm_arn is None:
        return
    owner = params.algorithm_arn.split(":")[4]
    if owner != account_id:
        raise ParameterFileError(
            f"ml-parameters: algorithmARN {params.algorithm_arn} belongs to account {owner}, not this stack's "
            f"{account_id}: an AWS Marketplace algorithm is hosted through a model package, which this workflow "
            "does not create; use an algorithm of this account, or trainingImage and inferenceImage"
        )


def check_data_capture_bucket(params: MlParameters, bucket: str) -> None:
    """The model's execution role writes the captured data, and it may write the data bucket only: elsewhere,
    SageMaker would serve every request and lose every capture."""
    capture = params.model.hosting.data_capture
    if capture is not None and not capture.destination_s3_uri.startswith(f"s3://{bucket}/"):
        raise ParameterFileError(
            f"ml-parameters: model.hosting.dataCapture.destinationS3Uri {capture.destination_s3_uri} is outside "
            f"the data bucket s3://{bucket}/, which is the only one the model's execution role may write"
        )


def check_objective_channel(params: MlParameters, manifest: Manifest) -> None:
    """The trainer prints the metrics of one channel (`validation:auc`): the validation channel's when the manifest
    gives one, else the training channel's. An objective on another channel is reported by no training job, and the
    whole tuning job would run for nothing."""
    given = {channel.channel_name for channel in manifest.channels}
    if params.objective_channel not in given:
        raise ParameterFileError(
            f"manifest.json: channels: the objective {params.objective_metric_name} in ml-parameters is measured "
            f"on the '{params.objective_channel}' channel, which this manifest does not give"
        )
    if params.objective_channel != VALIDATION_CHANNEL and VALIDATION_CHANNEL in given:
        metric = params.objective_metric_name.partition(":")[2]
        raise ParameterFileError(
            f"ml-parameters: objectiveMetricName {params.objective_metric_name}: with a {VALIDATION_CHANNEL} "
            f"channel in the manifest the trainer reports that channel's metrics only: use "
            f"{VALIDATION_CHANNEL}:{metric}, or leave the {VALIDATION_CHANNEL} channel out"
        )


def check_input_mode(params: MlParameters, manifest: Manifest) -> None:
    """FastFile is documented for channels of S3 prefixes only (model-access-training-data.html); conservatively,
    no manifest file goes to a FastFile job."""
    if params.training_input_mode != "FastFile":
        return
    for channel in manifest.channels:
        if channel.s3_data_source.s3_data_type != "S3Prefix":
            raise ParameterFileError(
                f"manifest.json: channel '{channel.channel_name}' s3DataSource.S3DataType "
                f"{channel.s3_data_source.s3_data_type} does not work with trainingInputMode FastFile in "
                f"ml-parameters: {FASTFILE_DATA_TYPES}; use S3Prefix, or trainingInputMode File"
            )


def check_distribution(params: MlParameters, manifest: Manifest) -> None:
    """With several training instances the instances form one H2O cluster whose leader reads every channel
    and H2O spreads the rows: each instance must get all the data (FullyReplicated), not a shard."""
    if params.training_instance_count < 2:
        return
    for channel in manifest.channels:
        if channel.s3_data_source.s3_data_distribution_type != "FullyReplicated":
            raise ParameterFileError(
                f"manifest.json: channel '{channel.channel_name}' s3DataSource.S3DataDistributionType "
                f"{channel.s3_data_source.s3_data_distribution_type} does not work with trainingInstanceCount "
                f"{params.training_instance_count}: the instances form one H2O cluster whose leader reads the "
                "whole channel; use FullyReplicated"
            )


def decode_json(document: str | bytes, file_name: str) -> Any:
    """Parse a user file strictly: a repeated key or a NaN/Infinity would otherwise pass unnoticed."""

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise ParameterFileError(f"{file_name}: key {key!r} appears twice in one object")
            found[key] = value
        return found

    def no_constant(name: str) -> Any:
        raise ParameterFileError(f"{file_name}: {name} is not a JSON number; give a finite value")

    try:
        return json.loads(document, object_pairs_hook=unique_keys, parse_constant=no_constant)
    except json.JSONDecodeError as error:
        raise ParameterFileError(f"{file_name} is not valid JSON: {error}") from None
    except UnicodeDecodeError as error:
        raise ParameterFileError(
            f"{file_name} is not valid JSON: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


JSON_TYPE_NAMES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def parse_document(model: type[ModelT], document: Any, file_name: str) -> ModelT:
    """Validate a decoded JSON document; turn pydantic's report into one readable ParameterFileError."""
    if not isinstance(document, dict):
        kind = "null" if document is None else JSON_TYPE_NAMES.get(type(document), type(document).__name__)
        raise ParameterFileError(f"{file_name}: must be a JSON object, got {kind}")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            location = ".".join(str(part) for part in item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{location}: {message}" if location else message)
        raise ParameterFileError(f"{file_name}: " + "; ".join(problems)) from None
