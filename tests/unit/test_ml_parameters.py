"""The parameter-file schemas: the original system's files still validate, bad values name the field."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
from events import original_ml_parameters
from pydantic import BaseModel
from workflow_common import ml_parameters
from workflow_common.ml_parameters import (
    Hyperparameters,
    Manifest,
    MlParameters,
    ParameterFileError,
    decode_json,
    parse_document,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = REPO_ROOT / "tests" / "fixtures" / "original-examples"
EXAMPLES = REPO_ROOT / "examples"
TRAINING = {"channelName": "training", "s3DataSource": {"S3Uri": "s3://my-bucket/t.csv"}}
VALIDATION = {"channelName": "validation", "s3DataSource": {"S3Uri": "s3://my-bucket/v.parquet"}}


def filled_original_ml_parameters() -> dict:
    return original_ml_parameters(region="eu-west-1", bucket="my-bucket")


def test_original_ml_parameters_still_validate_with_their_string_numbers() -> None:
    params = parse_document(MlParameters, filled_original_ml_parameters(), "ml-parameters.json")
    assert params.algorithm_arn == "arn:aws:sagemaker:eu-west-1:123456789012:algorithm/h2o-gbm-algorithm"
    assert params.model.hosting.initial_instance_count == 1  # given as "1" in the original
    assert params.enable_managed_spot_training is True
    assert params.resolved_objective_type == "Maximize"  # validation:auc by default


def test_original_hyperparameters_and_manifest_still_validate() -> None:
    hyperparameters = parse_document(
        Hyperparameters, json.loads((ORIGINAL / "hyperparameters.json").read_text()), "hyperparameters.json"
    )
    assert hyperparameters.parameter_ranges.names()[:2] == ["ntrees", "min_rows"]
    assert hyperparameters.parameter_ranges.to_sagemaker()["IntegerParameterRanges"][0]["MinValue"] == "10"
    manifest_text = (ORIGINAL / "manifest.json").read_text().replace("<s3bucket>", "my-bucket")
    manifest = parse_document(Manifest, json.loads(manifest_text), "manifest.json")
    assert [channel.channel_name for channel in manifest.channels] == ["training", "validation"]


def test_string_booleans_are_cast_by_value_not_by_truthiness() -> None:
    document = filled_original_ml_parameters() | {"enableManagedSpotTraining": "false"}
    assert parse_document(MlParameters, document, "ml-parameters.json").enable_managed_spot_training is False


def test_unfilled_template_placeholder_is_named() -> None:
    document = json.loads((EXAMPLES / "template-ml-parameters.json").read_text())
    with pytest.raises(ParameterFileError, match=r"trainingImage still holds the template placeholder"):
        parse_document(MlParameters, document, "ml-parameters.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"maxParallelTrainingJobs": "many"}, r"maxParallelTrainingJobs: Input should be a valid integer"),
        (
            {"tuningStrategy": "Genetic"},
            r"tuningStrategy: Input should be 'Bayesian', 'Random', 'Grid' or 'Hyperband'",
        ),
        (
            {"autoscalingMinCapacity": 5},
            r"autoscalingMinCapacity \(5\) is greater than autoscalingMaxCapacity \(4\)",
        ),
        ({"endpointName": "e" * 64}, r"endpointName: String should have at most 63 characters"),
        ({"tuningJobName": "bad_name"}, r"tuningJobName: String should match pattern"),
        (
            {"maxParallelTrainingJobs": 20},
            r"maxParallelTrainingJobs \(20\) is greater than maxNumberOfTrainingJobs",
        ),
        ({"unexpected": 1}, r"unexpected: Extra inputs are not permitted"),
        ({"trainingImage": "image:1"}, r"give either algorithmARN, or trainingImage and inferenceImage"),
        ({"inputContentType": "application/json"}, r"inputContentType: Input should be 'text/csv' or"),
        ({"trainingInputMode": "Pipe"}, r"trainingInputMode: Input should be 'File' or 'FastFile'"),
    ],
)
def test_bad_ml_parameters_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(ParameterFileError, match=message):
        parse_document(MlParameters, filled_original_ml_parameters() | change, "ml-parameters.json")


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        (
            {"minImprovement": -0.01},
            r"qualityGate.minImprovement: Input should be greater than or equal to 0",
        ),
        (
            {"minObjectiveValue": True},
            r"qualityGate.minObjectiveValue: Input should be a number, not a boolean",
        ),
        ({"minObjectiveValue": "high"}, r"qualityGate.minObjectiveValue: Input should be a valid number"),
        ({"mustBeatDeployedModel": False}, r"qualityGate: checks nothing: give minObjectiveValue"),
        ({"minAuc": 0.8}, r"qualityGate.minAuc: Extra inputs are not permitted"),
    ],
)
def test_bad_quality_gates_name_the_field(gate: dict, message: str) -> None:
    with pytest.raises(ParameterFileError, match=message):
        parse_document(
            MlParameters, filled_original_ml_parameters() | {"qualityGate": gate}, "ml-parameters.json"
        )


def with_fleet(document: dict, instances: int, largest: int = 4, instance_type: str = "ml.c5.large") -> dict:
    document = json.loads(json.dumps(document))
    document["model"]["hosting"] |= {"initialInstanceCount": instances, "instanceType": instance_type}
    return document | {"autoscalingMinCapacity": instances, "autoscalingMaxCapacity": largest}


CANARY_ONE = {"strategy": "Canary", "canarySize": {"type": "INSTANCE_COUNT", "value": 1}}


@pytest.mark.parametrize(
    ("deployment", "fleet", "message"),
    [
        ({"strategy": "Blue"}, 2, r"deployment.strategy: Input should be 'AllAtOnce', 'Canary' or 'Linear'"),
        ({"strategy": "Canary"}, 2, r"deployment: the Canary strategy needs canarySize"),
        (
            CANARY_ONE | {"linearStepSize": {"type": "INSTANCE_COUNT", "value": 1}},
            2,
            r"linearStepSize does not apply to the Canary strategy",
        ),
        (
            {"strategy": "AllAtOnce", "canarySize": {"type": "INSTANCE_COUNT", "value": 1}},
            2,
            r"canarySize does not",
        ),
        (
            {"strategy": "Canary", "canarySize": {"type": "CAPACITY_PERCENT", "value": 60}},
            2,
            r"canarySize may be at most 50 percent",
        ),
        (
            {"strategy": "Linear", "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 5}},
            2,
            r"linearStepSize must be 10 to 50 percent",
        ),
        ({"strategy": "Canary", "canarySize": {"type": "INSTANCES", "value": 1}}, 2, r"canarySize.type"),
        (
            CANARY_ONE | {"waitIntervalInSeconds": 3601},
            2,
            r"waitIntervalInSeconds: Input should be less than",
        ),
        (CANARY_ONE | {"maximumExecutionTimeoutInSeconds": 60}, 2, r"greater than or equal to 600"),
        (
            CANARY_ONE | {"waitIntervalInSeconds": 600, "maximumExecutionTimeoutInSeconds": 600},
            2,
            r"maximumExecutionTimeoutInSeconds \(600\) must exceed the deployment's waits \(1200 s",
        ),
        (CANARY_ONE, 1, r"the endpoint needs at least 2 instances"),
        (
            {"strategy": "Canary", "canarySize": {"type": "INSTANCE_COUNT", "value": 2}},
            2,
            r"deployment.canarySize: 2 instance\(s\) is more than half of a fleet of 2",
        ),
        (
            {"strategy": "Linear", "linearStepSize": {"type": "INSTANCE_COUNT", "value": 1}},
            2,
            r"less than 10 percent of a fleet of 20",
        ),
        (
            {"strategy": "Canary", "canarySize": {"type": "CAPACITY_PERCENT", "value": 25}},
            2,
            r"25 percent of a fleet of 2 \(autoscalingMinCapacity\) is less than one instance",
        ),
        (
            {"rollbackAlarms": {"maxErrorRate": 1.5}},
            2,
            r"rollbackAlarms.maxErrorRate: Input should be less than 1",
        ),
        ({"bakingPeriodInSeconds": 600}, 2, None),  # valid: a baking all-at-once update
    ],
)
def test_deployments_sagemaker_would_refuse_are_refused_naming_the_field(
    deployment: dict, fleet: int, message: str | None
) -> None:
    largest = 20 if "less than 10 percent" in (message or "") else 4
    document = with_fleet(trained_with_images(), fleet, largest) | {"deployment": deployment}
    if message is None:
        assert (
            parse_document(MlParameters, document, "ml-parameters.json").deployment.baking_period_in_seconds
            == 600
        )
        return
    with pytest.raises(ParameterFileError, match=message):
        parse_document(MlParameters, document, "ml-parameters.json")


def test_guardrails_exclude_inf1_instances() -> None:
    document = with_fleet(trained_with_images(), 2, instance_type="ml.inf1.xlarge") | {
        "deployment": CANARY_ONE
    }
    with pytest.raises(ParameterFileError, match=r"guardrails exclude Inf1 instances \(ml.inf1.xlarge\)"):
        parse_document(MlParameters, document, "ml-parameters.json")
    all_at_once = with_fleet(trained_with_images(), 1, instance_type="ml.inf1.xlarge")
    assert parse_document(MlParameters, all_at_once, "ml-parameters.json").deployment.strategy == "AllAtOnce"


def test_deployment_and_approval_defaults_are_todays_behaviour() -> None:
    params = parse_document(MlParameters, filled_original_ml_parameters(), "ml-parameters.json")
    assert params.model_approval == "Automatic"
    deployment = params.deployment
    assert (deployment.strategy, deployment.baking_period_in_seconds) == ("AllAtOnce", 0)
    alarms = deployment.rollback_alarms
    assert (alarms.max_error_rate, alarms.max_model_latency_milliseconds, alarms.evaluation_periods) == (
        0.01,
        1000,
        1,
    )
    with pytest.raises(ParameterFileError, match=r"modelApproval: Input should be 'Automatic' or 'Manual'"):
        parse_document(
            MlParameters, filled_original_ml_parameters() | {"modelApproval": "Auto"}, "ml-parameters.json"
        )


def trained_with_images() -> dict:
    document = filled_original_ml_parameters()
    del document["algorithmARN"]
    return document | {
        "trainingImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-trainer:1",
        "inferenceImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/h2o-gbm-predictor:1",
    }


SERVERLESS = {"MemorySizeInMB": 2048, "MaxConcurrency": 10}


def serverless(hosting: dict | None = None, **top: object) -> dict:
    """The original file made serverless: its instance and auto-scaling settings left out."""
    document = {
        key: value
        for key, value in trained_with_images().items()
        if key
        not in (
            "autoscalingMinCapacity",
            "autoscalingMaxCapacity",
            "targetTrackingScalingPolicyConfiguration",
        )
    } | top
    document["model"] = document["model"] | {"hosting": {"serverlessConfig": SERVERLESS} | (hosting or {})}
    return document


def test_a_serverless_endpoint_takes_sagemakers_serverless_config_as_it_is() -> None:
    params = parse_document(MlParameters, serverless(), "ml-parameters.json")
    config = params.model.hosting.serverless_config
    assert config is not None
    assert config.model_dump(exclude_none=True) == SERVERLESS


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            serverless({"serverlessConfig": {"MemorySizeInMB": 2000, "MaxConcurrency": 1}}),
            r"MemorySizeInMB: Input should be 1024, 2048",
        ),
        (
            serverless({"serverlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 201}}),
            r"MaxConcurrency: Input should be less than or equal to 200",
        ),
        (
            serverless({"serverlessConfig": SERVERLESS | {"ProvisionedConcurrency": 11}}),
            r"ProvisionedConcurrency \(11\) is greater than MaxConcurrency \(10\)",
        ),
        (
            serverless({"instanceType": "ml.c5.large"}),
            r"has no instances to choose or scale .*remove model.hosting.instanceType",
        ),
        (serverless(autoscalingMaxCapacity=8), r"remove autoscalingMaxCapacity"),
        (
            serverless({"dataCapture": {"destinationS3Uri": "s3://my-ml-bucket/capture/"}}),
            r"SageMaker does not capture data on serverless endpoints",
        ),
        (
            serverless({"subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}),
            r"serverless endpoints do not run in a VPC",
        ),
        (
            serverless(deployment=CANARY_ONE),
            r"use deployment.strategy AllAtOnce with bakingPeriodInSeconds 0",
        ),
        (
            serverless(deployment={"bakingPeriodInSeconds": 60}),
            r"without traffic shifting, baking or rollback alarms",
        ),
    ],
)
def test_what_a_serverless_endpoint_cannot_have_is_refused_naming_the_field(
    document: dict, message: str
) -> None:
    with pytest.raises(ParameterFileError, match=message):
        parse_document(MlParameters, document, "ml-parameters.json")


def test_quality_gate_defaults_and_its_objective_channel() -> None:
    params = parse_document(MlParameters, trained_with_images() | {"qualityGate": {}}, "ml-parameters.json")
    assert params.quality_gate is not None
    assert (params.quality_gate.must_beat_deployed_model, params.quality_gate.min_improvement) == (True, 0.0)
    assert params.quality_gate.min_objective_value is None
    assert (
        parse_document(MlParameters, filled_original_ml_parameters(), "ml-parameters.json").quality_gate
        is None
    )
    # Measured on the training rows, the tuned model's objective cannot be compared with the deployed model's.
    with pytest.raises(
        ParameterFileError,
        match=r"qualityGate needs an objectiveMetricName measured on the "
        r"validation channel \(validation:<metric>\), got training:auc",
    ):
        parse_document(
            MlParameters,
            filled_original_ml_parameters()
            | {"objectiveMetricName": "training:auc", "qualityGate": {"minObjectiveValue": "0.8"}},
            "ml-parameters.json",
        )


def test_scheduled_runs_need_a_validation_channel_when_the_objective_is_measured_on_it() -> None:
    retraining = {"trainingDataPrefixes": ["s3://my-bucket/titanic/training/"]}
    with pytest.raises(
        ParameterFileError,
        match=r"retraining.validationS3Uri is needed: the objective validation:auc is measured on the "
        r"validation channel, which a scheduled run has only from it",
    ):
        parse_document(
            MlParameters, filled_original_ml_parameters() | {"retraining": retraining}, "ml-parameters"
        )
    with_validation = retraining | {"validationS3Uri": "s3://my-bucket/titanic/validation/v.csv"}
    on_training = {"retraining": retraining, "objectiveMetricName": "training:auc"}
    for document in ({"retraining": with_validation}, on_training):
        assert parse_document(
            MlParameters, filled_original_ml_parameters() | document, "ml-parameters"
        ).retraining


def test_beating_the_deployed_model_needs_the_trainer_image_that_scores_it() -> None:
    with pytest.raises(ParameterFileError, match=r"qualityGate.mustBeatDeployedModel needs trainingImage"):
        parse_document(
            MlParameters, filled_original_ml_parameters() | {"qualityGate": {}}, "ml-parameters.json"
        )
    floor_only = {"qualityGate": {"minObjectiveValue": 0.8, "mustBeatDeployedModel": False}}
    params = parse_document(MlParameters, filled_original_ml_parameters() | floor_only, "ml-parameters.json")
    assert params.quality_gate is not None and params.quality_gate.min_objective_value == 0.8


def test_fastfile_is_refused_where_sagemaker_does_not_document_it() -> None:
    fastfile = trained_with_images() | {"trainingInputMode": "FastFile"}
    assert parse_document(MlParameters, fastfile, "ml-parameters").training_input_mode == "FastFile"
    with pytest.raises(
        ParameterFileError, match=r"trainingInputMode FastFile needs trainingImage: an algorithm"
    ):
        parse_document(
            MlParameters, filled_original_ml_parameters() | {"trainingInputMode": "FastFile"}, "ml-parameters"
        )
    retraining = {
        "trainingDataPrefixes": ["s3://my-bucket/titanic/training/"],
        "validationS3Uri": "s3://my-bucket/titanic/validation/v.csv",
    }
    with pytest.raises(
        ParameterFileError,
        match=r"trainingInputMode FastFile does not work with retraining: a scheduled run trains on a "
        r"ManifestFile channel, and SageMaker documents FastFile mode for S3Prefix channels only; use File",
    ):
        parse_document(MlParameters, fastfile | {"retraining": retraining}, "ml-parameters")


CAPTURED_TO = {"destinationS3Uri": "s3://my-bucket/data-capture/"}


def with_data_capture(capture: dict) -> dict:
    document = filled_original_ml_parameters()
    document["model"]["hosting"]["dataCapture"] = capture
    return document


def test_data_capture_defaults_and_its_bucket() -> None:
    assert (
        parse_document(MlParameters, filled_original_ml_parameters(), "ml").model.hosting.data_capture is None
    )
    capture = parse_document(MlParameters, with_data_capture(CAPTURED_TO), "ml").model.hosting.data_capture
    assert capture is not None
    assert (capture.initial_sampling_percentage, capture.capture_options) == (100, ["Input", "Output"])
    elsewhere = parse_document(
        MlParameters, with_data_capture({"destinationS3Uri": "s3://other-bucket/capture/"}), "ml"
    )
    ml_parameters.check_data_capture_bucket(elsewhere, "other-bucket")
    with pytest.raises(
        ParameterFileError,
        match=r"model.hosting.dataCapture.destinationS3Uri s3://other-bucket/capture/ is outside the data bucket "
        r"s3://my-bucket/, which is the only one the model's execution role may write",
    ):
        ml_parameters.check_data_capture_bucket(elsewhere, "my-bucket")


@pytest.mark.parametrize(
    ("capture", "message"),
    [
        ({"initialSamplingPercentage": 50}, r"dataCapture.destinationS3Uri: Field required"),
        (
            CAPTURED_TO | {"initialSamplingPercentage": 101},
            r"Percentage: Input should be less than or equal to 100",
        ),
        (
            CAPTURED_TO | {"initialSamplingPercentage": True},
            r"Percentage: Input should be a number, not a boolean",
        ),
        (CAPTURED_TO | {"captureOptions": []}, r"captureOptions: List should have at least 1 item"),
        (
            CAPTURED_TO | {"captureOptions": ["Input", "Input"]},
            r"captureOptions: each of Input and Output at most",
        ),
        (
            CAPTURED_TO | {"captureOptions": ["InputAndOutput"]},
            r"captureOptions.0: Input should be 'Input' or",
        ),
        (
            CAPTURED_TO | {"kmsKeyId": "alias/capture"},
            r"dataCapture.kmsKeyId: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_data_capture_names_the_field(capture: dict, message: str) -> None:
    with pytest.raises(ParameterFileError, match=message):
        parse_document(MlParameters, with_data_capture(capture), "ml")


def test_missing_required_key_is_named() -> None:
    document = filled_original_ml_parameters()
    del document["endpointName"]
    with pytest.raises(ParameterFileError, match=r"ml-parameters.json: endpointName: Field required"):
        parse_document(MlParameters, document, "ml-parameters.json")


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        (
            {"IntegerParameterRanges": [{"Name": "ntrees", "MinValue": "100", "MaxValue": "10"}]},
            r"ntrees: MinValue \(100\) is greater than MaxValue \(10\)",
        ),
        (
            {
                "ContinuousParameterRanges": [
                    {"Name": "learn_rate", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}
                ]
            },
            r"learn_rate: Logarithmic scaling needs MinValue > 0",
        ),
        (
            {
                "ContinuousParameterRanges": [
                    {"Name": "x", "MinValue": "0.1", "MaxValue": "1", "ScalingType": "Cubic"}
                ]
            },
            r"ScalingType: Input should be",
        ),
        (
            {"IntegerParameterRanges": [{"Name": "ntrees", "MinValue": "1.5", "MaxValue": "10"}]},
            r"IntegerParameterRanges.0.MinValue: Input should be a valid integer",
        ),
    ],
)
def test_bad_ranges_name_the_parameter(ranges: dict, message: str) -> None:
    with pytest.raises(ParameterFileError, match=message):
        parse_document(Hyperparameters, {"parameterRanges": ranges}, "hyperparameters.json")


def test_static_values_become_strings_and_conflicts_are_refused() -> None:
    parsed = parse_document(
        Hyperparameters,
        {"staticHyperParameters": {"seed": 1, "balance_classes": True}},
        "hyperparameters.json",
    )
    assert parsed.static_hyper_parameters == {"seed": "1", "balance_classes": "true"}
    with pytest.raises(ParameterFileError, match=r"both tuned and static: ntrees"):
        parse_document(
            Hyperparameters,
            {
                "parameterRanges": {
                    "IntegerParameterRanges": [{"Name": "ntrees", "MinValue": 1, "MaxValue": 2}]
                },
                "staticHyperParameters": {"ntrees": "5"},
            },
            "hyperparameters.json",
        )
    with pytest.raises(ParameterFileError, match=r"training is not a dict literal"):
        parse_document(
            Hyperparameters, {"staticHyperParameters": {"training": "{'target': "}}, "hyperparameters.json"
        )


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        ([], r"channels: List should have at least 1 item"),
        (
            [{"channelName": "validation", "s3DataSource": {"S3Uri": "s3://my-bucket/v.csv"}}],
            r"'training' channel is required",
        ),
        (
            [{"channelName": "test", "s3DataSource": {"S3Uri": "s3://my-bucket/t.csv"}}],
            r"channelName: Input should be 'training' or 'validation'",
        ),
        (
            [{"channelName": "training", "s3DataSource": {"S3Uri": "/local/file.csv"}}],
            r"S3Uri: String should match pattern",
        ),
        (
            [TRAINING | {"contentType": "application/json"}],
            r"channels\.0\.contentType: the trainer reads text/csv or application/x-parquet, not 'application/json'",
        ),
        (
            [TRAINING | {"compressionType": "Bzip2"}],
            r"channels\.0\.compressionType: Input should be 'None' or 'Gzip'",
        ),
        (
            [TRAINING, VALIDATION | {"contentType": "text/csv", "compressionType": "Gzip"}],
            r"channels\.1\.compressionType: Gzip is for Pipe input mode only .* read as gzip from "
            r"their first bytes: leave compressionType out, or None",
        ),
    ],
)
def test_bad_manifests_name_the_problem(channels: list, message: str) -> None:
    with pytest.raises(ParameterFileError, match=message):
        parse_document(Manifest, {"channels": channels}, "manifest.json")


@pytest.mark.parametrize(
    "formats",
    [
        {},
        {"contentType": "text/csv"},
        {
            "contentType": "text/csv",
            "compressionType": "None",
        },  # gzip-compressed CSV or not, told by its bytes
        {"contentType": "application/x-parquet"},
        {"contentType": "application/x-parquet", "compressionType": "None"},
    ],
)
def test_channel_formats_the_trainer_reads_are_accepted(formats: dict) -> None:
    manifest = parse_document(Manifest, {"channels": [TRAINING | formats]}, "manifest.json")

    assert manifest.channels[0].content_type == formats.get("contentType")
    assert manifest.channels[0].compression_type == formats.get("compressionType")


def test_manifest_outside_the_data_bucket_is_refused() -> None:
    manifest = parse_document(
        Manifest,
        {"channels": [{"channelName": "training", "s3DataSource": {"S3Uri": "s3://other-bucket/t.csv"}}]},
        "manifest.json",
    )
    with pytest.raises(ParameterFileError, match=r"outside the data bucket s3://my-bucket/"):
        manifest.check_bucket("my-bucket")


def test_malformed_json_is_reported_with_its_position() -> None:
    with pytest.raises(ParameterFileError, match=r"manifest.json is not valid JSON: .*line 1 column"):
        decode_json(b'{"channels": [', "manifest.json")


# Every key the files accept, as the original system's files spell them.
ACCEPTED_KEYS = {
    "CategoricalRange": {"Name", "Values"},
    "Channel": {"channelName", "s3DataSource", "contentType", "compressionType"},
    "ContinuousRange": {"Name", "MinValue", "MaxValue", "ScalingType"},
    "Hosting": {
        "dataCapture",
        "initialInstanceCount",
        "instanceType",
        "securityGroupIds",
        "serverlessConfig",
        "subnets",
    },
    "ServerlessConfig": {"MemorySizeInMB", "MaxConcurrency", "ProvisionedConcurrency"},
    "DataCapture": {"captureOptions", "destinationS3Uri", "initialSamplingPercentage"},
    "HyperbandStrategyConfig": {"MinResource", "MaxResource"},
    "Hyperparameters": {"parameterRanges", "staticHyperParameters", "hyperbandStrategyConfig"},
    "IntegerRange": {"Name", "MinValue", "MaxValue", "ScalingType"},
    "Manifest": {"channels", "dataWatermark"},
    "MlParameters": {
        "tuningJobName",
        "tuningStrategy",
        "algorithmARN",
        "trainingImage",
        "inferenceImage",
        "maxParallelTrainingJobs",
        "maxNumberOfTrainingJobs",
        "inputContentType",
        "trainingInputMode",
        "trainingJobDefinitionName",
        "enableManagedSpotTraining",
        "spotTrainingCheckpointS3Uri",
        "trainingInstanceType",
        "trainingInstanceCount",
        "trainingInstanceVolumeSizeInGB",
        "trainingJobEarlyStoppingType",
        "maxRuntimeInSeconds",
        "maxWaitTimeInSeconds",
        "objectiveMetricName",
        "objectiveType",
        "enableNetworkIsolation",
        "endpointName",
        "endpointPollIntervalSeconds",
        "endpointMaxPollAttempts",
        "model",
        "autoscalingMinCapacity",
        "autoscalingMaxCapacity",
        "targetTrackingScalingPolicyConfiguration",
        "qualityGate",
        "retraining",
        "warmStart",
        "tuningRandomSeed",
        "modelApproval",
        "deployment",
    },
    "CapacitySize": {"type", "value"},
    "Deployment": {
        "strategy",
        "canarySize",
        "linearStepSize",
        "waitIntervalInSeconds",
        "bakingPeriodInSeconds",
        "maximumExecutionTimeoutInSeconds",
        "rollbackAlarms",
    },
    "RollbackAlarms": {"maxErrorRate", "maxModelLatencyMilliseconds", "evaluationPeriods"},
    "QualityGate": {"minObjectiveValue", "mustBeatDeployedModel", "minImprovement"},
    "Retraining": {"trainingDataPrefixes", "trainingWindowDays", "validationS3Uri"},
    "WarmStart": {"maxParents"},
    "ModelSettings": {
        "artifactType",
        "artifactsS3OutputPath",
        "name",
        "trainingSecurityGroupIds",
        "trainingSubnets",
        "hosting",
    },
    "ParameterRanges": {"IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges"},
    "PredefinedMetric": {"PredefinedMetricType"},
    "S3DataSource": {"S3Uri", "S3DataType", "S3DataDistributionType", "AttributeNames"},
    "TargetTracking": {
        "TargetValue",
        "PredefinedMetricSpecification",
        "ScaleInCooldown",
        "ScaleOutCooldown",
        "DisableScaleIn",
    },
}


def test_the_files_keep_their_key_names() -> None:
    models = {
        name: model
        for name, model in vars(ml_parameters).items()
        if isinstance(model, type)
        and issubclass(model, BaseModel)
        and model.__module__ == ml_parameters.__name__
    }
    assert {
        name: {field.alias for field in model.model_fields.values()} for name, model in models.items()
    } == (ACCEPTED_KEYS)


def test_code_can_build_a_model_with_python_names() -> None:
    hosting = ml_parameters.Hosting(initial_instance_count=2, instance_type="ml.m5.large")

    assert hosting.model_dump(by_alias=True)["initialInstanceCount"] == 2
    assert (
        ml_parameters.Hosting.model_validate({"instanceType": "ml.m5.large"}).instance_type == "ml.m5.large"
    )


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key path of a parameter file that holds a value, not an object: `model.hosting.instanceType`."""
    keys = []
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        nested = [
            kind
            for kind in (field.annotation, *typing.get_args(field.annotation))
            for kind in (kind, *typing.get_args(kind))
            if isinstance(kind, type) and issubclass(kind, BaseModel)
        ]
        keys += _leaf_keys(nested[0], path + ".") if nested else [path]
    return keys


def _keys_in_readme_table(heading: str) -> set[str]:
    """The keys the first column of a README section's table names; `.x` after `a.b.c` is `a.b.x`."""
    section = (REPO_ROOT / "README.md").read_text().split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    keys = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        parent = ""
        for name in re.findall(r"`([^`]+)`", line.split(" | ", 1)[0]):
            if name.startswith("."):
                keys.add(parent + name)
            else:
                keys.add(name)
                parent = name.rpartition(".")[0]
    return keys


def test_the_readme_documents_every_ml_parameters_key() -> None:
    documented = _keys_in_readme_table("### ml-parameters.json")
    leaves = _leaf_keys(MlParameters)

    def covered(key: str) -> bool:
        if key in documented:
            return True
        # An object documented whole (an AWS shape such as targetTrackingScalingPolicyConfiguration) covers its
        # keys, unless the table also lists some of them: then it must list them all.
        ancestor = key.rpartition(".")[0]
        while ancestor:
            if ancestor in documented:
                return not any(other.startswith(ancestor + ".") for other in documented)
            ancestor = ancestor.rpartition(".")[0]
        return False

    assert [key for key in leaves if not covered(key)] == []
    objects = {key.rsplit(".", depth)[0] for key in leaves for depth in range(1, key.count(".") + 1)}
    assert documented - set(leaves) - objects == set(), (
        "the README names keys ml-parameters.json does not have"
    )


def test_warm_start_takes_one_to_five_parents_with_the_strategies_sagemaker_documents_it_for() -> None:
    params = parse_document(MlParameters, trained_with_images() | {"warmStart": {}}, "ml-parameters.json")
    assert params.warm_start is not None and params.warm_start.max_parents == 1
    for document, message in [
        (
            trained_with_images() | {"warmStart": {"maxParents": 6}},
            r"warmStart.maxParents: Input should be less",
        ),
        (
            trained_with_images() | {"warmStart": {"maxParents": 0}},
            r"warmStart.maxParents: Input should be greater",
        ),
        (
            trained_with_images() | {"warmStart": {}, "tuningStrategy": "Hyperband"},
            r"warmStart: SageMaker documents warm start for the Bayesian and Random strategies, not Hyperband",
        ),
        (
            trained_with_images() | {"warmStart": {}, "tuningStrategy": "Grid"},
            r"not Grid: remove warmStart or change tuningStrategy",
        ),
    ]:
        with pytest.raises(ParameterFileError, match=message):
            parse_document(MlParameters, document, "ml-parameters.json")


def test_the_tuning_random_seed_is_an_api_integer_from_zero() -> None:
    params = parse_document(
        MlParameters, trained_with_images() | {"tuningRandomSeed": "7"}, "ml-parameters.json"
    )
    assert params.tuning_random_seed == 7
    for seed, message in [
        (-1, r"tuningRandomSeed: Input should be greater than or equal to 0"),
        (2**31, r"tuningRandomSeed: Input should be less than or equal to 2147483647"),
        (True, r"tuningRandomSeed: Input should be a number, not a boolean"),
    ]:
        with pytest.raises(ParameterFileError, match=message):
            parse_document(
                MlParameters, trained_with_images() | {"tuningRandomSeed": seed}, "ml-parameters.json"
            )
