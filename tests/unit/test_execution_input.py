"""Building the workflow input: SageMaker-valid names and strategy rules settled before anything starts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from events import STACK_RESOURCES
from pydantic import ValidationError
from workflow_common.execution_input import (
    DeploymentInput,
    ModelRegistration,
    RunIdentity,
    RunInput,
    build_deployment_input,
    build_execution_input,
    deployment_config,
    unique_name,
)
from workflow_common.ml_parameters import (
    HyperbandStrategyConfig,
    Hyperparameters,
    Manifest,
    MlParameters,
    ParameterFileError,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "execution-input.json"
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
RUN = RunIdentity(
    "my-bucket",
    "manifests/run-1/manifest.json",
    "0055AED6DCD90281E5",
    datetime(2026, 11, 22, 21, 0, tzinfo=UTC),
)


def ml_parameters(**changes: object) -> MlParameters:
    document = {
        "tuningJobName": "survival-tuning",
        "trainingImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-trainer:1",
        "inferenceImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-predictor:1",
        "maxParallelTrainingJobs": 2,
        "maxNumberOfTrainingJobs": 10,
        "endpointName": "survival-endpoint",
        "model": {"artifactsS3OutputPath": "s3://my-bucket/model-artifacts/", "name": "survival-model"},
    }
    return MlParameters.model_validate(document | changes)


HYPERPARAMETERS = Hyperparameters.model_validate(
    {
        "parameterRanges": {
            "IntegerParameterRanges": [{"Name": "ntrees", "MinValue": "10", "MaxValue": "100"}]
        },
        "staticHyperParameters": {"target": "Survived"},
    }
)
MANIFEST = Manifest.model_validate(
    {
        "channels": [
            {
                "channelName": "training",
                "s3DataSource": {"S3Uri": "s3://my-bucket/titanic/train.csv", "AttributeNames": []},
            },
            {"channelName": "validation", "s3DataSource": {"S3Uri": "s3://my-bucket/titanic/validation.csv"}},
        ]
    }
)


def test_run_id_is_deterministic_per_upload_and_differs_for_a_new_upload() -> None:
    assert RUN.run_id == RunIdentity(RUN.bucket, RUN.key, RUN.object_version, RUN.event_time).run_id
    assert RUN.run_id != RunIdentity(RUN.bucket, RUN.key, "0055AED6DCD90281E6", RUN.event_time).run_id
    assert re.fullmatch(r"11222100-[0-9a-f]{4}", RUN.run_id)


@pytest.mark.parametrize("base", ["a", "survival-tuning", "x" * 80, "ends-with-dash-" + "-" * 30])
def test_unique_names_fit_sagemaker_limits_without_losing_the_run_id(base: str) -> None:
    for limit in (32, 63):
        name = unique_name(base, RUN.run_id, limit)
        assert len(name) <= limit
        assert name.endswith(RUN.run_id)
        assert SAGEMAKER_NAME.match(name)


def test_execution_input_has_the_tuner_and_deployer_contracts() -> None:
    document = build_execution_input(ml_parameters(), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES)
    tuning, deployment = document["tuning"], document["deployment"]
    assert tuning["hyperParameterTuningJobName"] == f"survival-tuning-{RUN.run_id}"
    config = tuning["hyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 10}
    definition = tuning["trainingJobDefinition"]
    assert [channel["ChannelName"] for channel in definition["InputDataConfig"]] == ["training", "validation"]
    # SageMaker rejects an empty AttributeNames list, which the original manifests carry.
    assert "AttributeNames" not in definition["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert "VpcConfig" not in definition and "CheckpointConfig" not in definition
    assert definition["EnableNetworkIsolation"] is True
    assert tuning["algorithm"] == {
        "trainingImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-trainer:1",
        "inferenceImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-predictor:1",
    }
    assert deployment["endpointName"] == "survival-endpoint"  # stable, so a second run updates it
    assert tuning["endpointName"] == "survival-endpoint"  # named in the tuning run's notifications
    assert deployment["endpointConfigName"] == f"survival-endpoint-{RUN.run_id}"
    assert deployment["autoscaling"]["MinCapacity"] == 1 and deployment["autoscaling"]["MaxCapacity"] == 4
    assert deployment["autoscaling"]["TargetTrackingScalingPolicyConfiguration"][
        "PredefinedMetricSpecification"
    ] == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}


def test_spot_training_gets_a_wait_budget_and_a_per_job_checkpoint_location() -> None:
    document = build_execution_input(
        ml_parameters(enableManagedSpotTraining="true", maxRuntimeInSeconds=600),
        HYPERPARAMETERS,
        MANIFEST,
        RUN,
        STACK_RESOURCES,
    )
    definition = document["tuning"]["trainingJobDefinition"]
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}
    assert definition["CheckpointConfig"]["S3Uri"] == (
        f"s3://my-bucket/model-training-checkpoint/survival-tuning-{RUN.run_id}/"
    )


def test_vpc_settings_reach_training_and_hosting() -> None:
    params = ml_parameters(
        model={
            "artifactsS3OutputPath": "s3://my-bucket/out/",
            "name": "m",
            "trainingSubnets": ["subnet-1"],
            "trainingSecurityGroupIds": ["sg-1"],
            "hosting": {"subnets": ["subnet-2"], "securityGroupIds": ["sg-2"]},
        }
    )
    document = build_execution_input(params, HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES)
    assert document["tuning"]["trainingJobDefinition"]["VpcConfig"] == {
        "SecurityGroupIds": ["sg-1"],
        "Subnets": ["subnet-1"],
    }
    assert document["tuning"]["model"]["vpcConfig"] == {"SecurityGroupIds": ["sg-2"], "Subnets": ["subnet-2"]}


def test_strategy_rules() -> None:
    on_hyperband = ml_parameters(tuningStrategy="Hyperband", trainingJobEarlyStoppingType="Auto")
    with_max_resource = HYPERPARAMETERS.model_copy(
        update={"hyperband_strategy_config": HyperbandStrategyConfig(MaxResource=50)}
    )
    hyperband = build_execution_input(on_hyperband, with_max_resource, MANIFEST, RUN, STACK_RESOURCES)
    assert hyperband["tuning"]["hyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Off"
    with pytest.raises(
        ParameterFileError,
        match=r"hyperbandStrategyConfig.MaxResource is required with the Hyperband strategy .*: SageMaker cannot "
        r"infer it from the trainer's hyperparameters",
    ):
        build_execution_input(on_hyperband, HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES)
    grid_ranges = Hyperparameters.model_validate(
        {"parameterRanges": {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["3", "5"]}]}}
    )
    grid = build_execution_input(
        ml_parameters(tuningStrategy="Grid"), grid_ranges, MANIFEST, RUN, STACK_RESOURCES
    )
    assert "MaxNumberOfTrainingJobs" not in grid["tuning"]["hyperParameterTuningJobConfig"]["ResourceLimits"]
    with pytest.raises(ParameterFileError, match=r"Grid strategy takes only CategoricalParameterRanges"):
        build_execution_input(
            ml_parameters(tuningStrategy="Grid"), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES
        )


def test_the_tuning_random_seed_is_sagemakers_random_seed_when_given() -> None:
    seeded = build_execution_input(
        ml_parameters(tuningRandomSeed=0), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES
    )
    unseeded = build_execution_input(ml_parameters(), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES)
    assert seeded["tuning"]["hyperParameterTuningJobConfig"]["RandomSeed"] == 0
    assert "RandomSeed" not in unseeded["tuning"]["hyperParameterTuningJobConfig"]


def test_the_objectives_channel_must_be_in_the_manifest() -> None:
    """The trainer reports `validation:auc` only from a validation channel: without it every training job would
    run and the tuning job fail for want of its objective."""
    training_only = Manifest.model_validate({"channels": MANIFEST.model_dump(by_alias=True)["channels"][:1]})
    on_training = ml_parameters(objectiveMetricName="training:auc")
    assert (
        build_execution_input(on_training, HYPERPARAMETERS, training_only, RUN, STACK_RESOURCES)["runId"]
        == RUN.run_id
    )
    for params in (ml_parameters(), ml_parameters(qualityGate={"minObjectiveValue": 0.8})):
        assert (
            build_execution_input(params, HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES)["runId"]
            == RUN.run_id
        )
        with pytest.raises(
            ParameterFileError,
            match=r"manifest.json: channels: the objective validation:auc in ml-parameters is measured on the "
            r"'validation' channel, which this manifest does not give",
        ):
            build_execution_input(params, HYPERPARAMETERS, training_only, RUN, STACK_RESOURCES)


def test_a_training_objective_beside_a_validation_channel_is_refused() -> None:
    """With a validation channel the trainer prints that channel's metrics only: no job would report training:auc."""
    with pytest.raises(
        ParameterFileError,
        match=r"objectiveMetricName training:auc: with a validation channel in the manifest the trainer reports "
        r"that channel's metrics only: use validation:auc, or leave the validation channel out",
    ):
        build_execution_input(
            ml_parameters(objectiveMetricName="training:auc"), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES
        )


def test_the_quality_gate_settings_name_the_objective_and_the_job_scoring_the_deployed_model() -> None:
    gated = ml_parameters(qualityGate={"minObjectiveValue": 0.8, "minImprovement": 0.01})
    document = build_execution_input(gated, HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES)
    tuning_job_name = document["tuning"]["hyperParameterTuningJobName"]
    assert document["qualityGate"] == {
        "objectiveMetricName": "validation:auc",
        "objectiveType": "Maximize",
        "minObjectiveValue": 0.8,
        "minImprovement": 0.01,
        "evaluation": {
            "processingJobName": f"{tuning_job_name}-gate",
            "imageUri": gated.training_image,
            "instanceType": gated.training_instance_type,
            "volumeSizeInGb": gated.training_instance_volume_size_in_gb,
            "maxRuntimeInSeconds": gated.max_runtime_in_seconds,
            "validationS3Uri": "s3://my-bucket/titanic/validation.csv",
            "validationS3DataType": "S3Prefix",
            "outputS3Uri": f"s3://my-bucket/model-artifacts/{tuning_job_name}-gate/evaluation",
        },
    }
    assert SAGEMAKER_NAME.match(document["qualityGate"]["evaluation"]["processingJobName"])
    floor_only = ml_parameters(
        objectiveMetricName="validation:logloss",
        qualityGate={"minObjectiveValue": 0.4, "mustBeatDeployedModel": False},
    )
    gate = build_execution_input(floor_only, HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES)["qualityGate"]
    assert gate == {
        "objectiveMetricName": "validation:logloss",
        "objectiveType": "Minimize",
        "minObjectiveValue": 0.4,
        "minImprovement": 0.0,
    }
    assert "qualityGate" not in build_execution_input(
        ml_parameters(), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES
    )


def test_the_run_registers_in_the_stacks_group_and_updates_with_its_rollback_alarms() -> None:
    document = build_execution_input(
        ml_parameters(modelApproval="Manual"), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES
    )
    assert document["registry"] == {
        "modelPackageGroupName": STACK_RESOURCES.model_package_group_name,
        "modelApproval": "Manual",
    }
    assert document["deployment"]["deploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "TerminationWaitInSeconds": 0,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [{"AlarmName": name} for name in STACK_RESOURCES.rollback_alarm_names]
        },
    }


@pytest.mark.parametrize(
    ("deployment", "routing"),
    [
        (
            {
                "strategy": "Canary",
                "canarySize": {"type": "INSTANCE_COUNT", "value": 1},
                "waitIntervalInSeconds": 120,
            },
            {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 120,
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
            },
        ),
        (
            {"strategy": "Linear", "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 50}},
            {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 300,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            },
        ),
    ],
)
def test_guarded_strategies_become_sagemakers_blue_green_policy(deployment: dict, routing: dict) -> None:
    params = ml_parameters(
        autoscalingMinCapacity=2,
        model={
            "artifactsS3OutputPath": "s3://my-bucket/model-artifacts/",
            "name": "survival-model",
            "hosting": {"initialInstanceCount": 2},
        },
        deployment=deployment | {"bakingPeriodInSeconds": 600, "maximumExecutionTimeoutInSeconds": 3600},
    )
    config = deployment_config(params.deployment, ())
    assert config == {  # no alarms, no AutoRollbackConfiguration (SageMaker takes 1 to 10)
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": 600,
            "MaximumExecutionTimeoutInSeconds": 3600,
        }
    }


def test_a_registered_version_is_deployed_with_its_own_configuration_name() -> None:
    registration = ModelRegistration(
        model_package_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{STACK_RESOURCES.model_package_group_name}/3",
        model_package_version=3,
        model_approval_status="Approved",
    )
    document = build_deployment_input(ml_parameters(), STACK_RESOURCES, registration, "v3-9f1c")
    assert document["endpointConfigName"] == "survival-endpoint-v3-9f1c"
    assert DeploymentInput.model_validate(document).model_package_arn == registration.model_package_arn
    assert (
        "dataCaptureConfig" not in document
    )  # the state machine then creates a configuration without capture
    hosting = {"dataCapture": {"destinationS3Uri": "s3://my-bucket/capture", "captureOptions": ["Output"]}}
    model = {
        "artifactsS3OutputPath": "s3://my-bucket/model-artifacts/",
        "name": "survival-model",
        "hosting": hosting,
    }
    captured = build_deployment_input(ml_parameters(model=model), STACK_RESOURCES, registration, "v3-9f1c")
    assert captured["dataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://my-bucket/capture",
        "CaptureOptions": [{"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json", "application/jsonlines"],
        },
    }


def test_minimised_metrics_get_the_right_direction() -> None:
    document = build_execution_input(
        ml_parameters(objectiveMetricName="validation:logloss"),
        HYPERPARAMETERS,
        MANIFEST,
        RUN,
        STACK_RESOURCES,
    )
    assert (
        document["tuning"]["hyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"]
        == "Minimize"
    )


def test_the_example_input_is_a_run_input_and_survives_the_round_trip() -> None:
    document = json.loads(EXAMPLE.read_text())

    assert RunInput.model_validate(document).to_document() == document


def test_optional_parts_are_left_out_since_the_state_machines_test_their_presence() -> None:
    document = build_execution_input(ml_parameters(), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES)

    assert "vpcConfig" not in document["tuning"]["model"]
    assert set(document["tuning"]["algorithm"]) == {"trainingImage", "inferenceImage"}
    algorithm = build_execution_input(
        ml_parameters(
            trainingImage=None, inferenceImage=None, algorithmARN="arn:aws:sagemaker:eu-west-1:1:algorithm/a"
        ),
        HYPERPARAMETERS,
        MANIFEST,
        RUN,
        STACK_RESOURCES,
    )
    assert algorithm["tuning"]["algorithm"] == {"algorithmArn": "arn:aws:sagemaker:eu-west-1:1:algorithm/a"}


def test_a_key_the_contract_does_not_know_is_refused() -> None:
    document = json.loads(EXAMPLE.read_text())
    document["deployment"]["pollIntervalSecond"] = document["deployment"].pop("pollIntervalSeconds")

    with pytest.raises(ValidationError, match="pollIntervalSecond"):
        RunInput.model_validate(document)


def test_several_training_instances_need_every_channel_whole() -> None:
    """They form one H2O cluster whose leader reads the channels: a shard per instance would lose rows."""
    sharded = Manifest.model_validate(
        {
            "channels": [
                {
                    "channelName": "training",
                    "s3DataSource": {
                        "S3Uri": "s3://my-bucket/t/",
                        "S3DataDistributionType": "ShardedByS3Key",
                    },
                }
            ]
        }
    )
    on_training = {"objectiveMetricName": "training:auc"}  # the manifest has no validation channel
    assert build_execution_input(
        ml_parameters(**on_training), HYPERPARAMETERS, sharded, RUN, STACK_RESOURCES
    )["runId"]
    with pytest.raises(
        ParameterFileError,
        match=r"channel 'training' s3DataSource.S3DataDistributionType ShardedByS3Key does not work with "
        r"trainingInstanceCount 2: .* use FullyReplicated",
    ):
        build_execution_input(
            ml_parameters(trainingInstanceCount=2, **on_training),
            HYPERPARAMETERS,
            sharded,
            RUN,
            STACK_RESOURCES,
        )
    replicated = build_execution_input(
        ml_parameters(trainingInstanceCount=2), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES
    )
    assert replicated["tuning"]["trainingJobDefinition"]["ResourceConfig"]["InstanceCount"] == 2


def test_the_training_input_mode_reaches_every_channel_and_fastfile_takes_s3_prefixes_only() -> None:
    channels = build_execution_input(
        ml_parameters(trainingInputMode="FastFile"), HYPERPARAMETERS, MANIFEST, RUN, STACK_RESOURCES
    )["tuning"]["trainingJobDefinition"]["InputDataConfig"]
    assert [channel["InputMode"] for channel in channels] == ["FastFile", "FastFile"]
    listed = Manifest.model_validate(
        {
            "channels": [
                {
                    "channelName": "training",
                    "s3DataSource": {"S3Uri": "s3://my-bucket/t.manifest", "S3DataType": "ManifestFile"},
                }
            ]
        }
    )
    on_training = {"objectiveMetricName": "training:auc"}  # the manifest has no validation channel
    assert build_execution_input(ml_parameters(**on_training), HYPERPARAMETERS, listed, RUN, STACK_RESOURCES)
    with pytest.raises(
        ParameterFileError,
        match=r"manifest.json: channel 'training' s3DataSource.S3DataType ManifestFile does not work with "
        r"trainingInputMode FastFile in ml-parameters: SageMaker documents FastFile mode for S3Prefix channels "
        r"only; use S3Prefix, or trainingInputMode File",
    ):
        build_execution_input(
            ml_parameters(trainingInputMode="FastFile", **on_training),
            HYPERPARAMETERS,
            listed,
            RUN,
            STACK_RESOURCES,
        )


def test_a_serverless_deployment_has_a_serverless_variant_an_empty_deployment_config_and_no_auto_scaling() -> (
    None
):
    config = {"MemorySizeInMB": 3072, "MaxConcurrency": 20, "ProvisionedConcurrency": 2}
    model = {
        "artifactsS3OutputPath": "s3://my-bucket/model-artifacts/",
        "name": "survival-model",
        "hosting": {"serverlessConfig": config},
    }
    registration = ModelRegistration(
        model_package_arn="arn:aws:sagemaker:eu-west-1:123456789012:model-package/survival-endpoint-1a2b3c4d/3",
        model_package_version=3,
        model_approval_status="Approved",
    )

    document = build_deployment_input(ml_parameters(model=model), STACK_RESOURCES, registration, "v3-ab12")

    assert document["variant"] == {
        "VariantName": "AllTraffic",
        "InitialVariantWeight": 1,
        "ServerlessConfig": config,
    }
    assert document["deploymentConfig"] == {}  # SageMaker's default update, no guardrails
    assert "autoscaling" not in document
    assert "dataCaptureConfig" not in document
    assert DeploymentInput.model_validate(document).variant.serverless_config is not None
