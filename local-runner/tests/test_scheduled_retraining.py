"""Scheduled retraining through the local pipeline: schedule ticks at given times (a frozen clock), the real
planner, trigger, state machines, trainer and predictor. No new data: no run, watermark unchanged; new data:
one run on exactly the window's files, watermark moved once it succeeded; a failed run leaves the watermark,
so the next tick retries the same data."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from h2o_sagemaker_local.cli import local_inputs, parse_arguments
from h2o_sagemaker_local.pipeline import DATA_BUCKET, LocalPipeline
from h2o_sagemaker_local.sagemaker_emulator import TuningJob
from h2o_sagemaker_local.stack import REGION
from moto.backends import get_backend

pytestmark = pytest.mark.h2o

WATERMARK = "/h2o-local/data-watermark"
VALIDATION_KEY = "titanic/validation/validation.csv"


@pytest.fixture(scope="module")
def options() -> Any:
    return parse_arguments(["run", "--max-jobs", "2", "--max-parallel", "2"])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, options: Any) -> Iterator[LocalPipeline]:
    ml_parameters, hyperparameters, _ = local_inputs(options)
    ml_parameters["retraining"] = {
        "trainingDataPrefixes": [f"s3://{DATA_BUCKET}/titanic/training/"],
        "trainingWindowDays": 7,
        "validationS3Uri": f"s3://{DATA_BUCKET}/{VALIDATION_KEY}",
    }
    ml_parameters["tuningRandomSeed"] = 3  # scheduled runs reproducible: each tuning job's RandomSeed
    with LocalPipeline(tmp_path_factory.mktemp("retraining"), seed=3) as local:
        local.deploy(ml_parameters, hyperparameters, {"RetrainingSchedule": "rate(1 day)"})
        local.notifications()
        yield local


def watermark(pipeline: LocalPipeline) -> str | None:
    ssm = boto3.client("ssm", region_name=REGION)
    try:
        return str(ssm.get_parameter(Name=WATERMARK)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def executions(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    assert pipeline.stack is not None
    machine = pipeline.stack.outputs["TuningWithDeploymentStateMachineArn"]
    return list(pipeline.sfn.list_executions(stateMachineArn=machine)["executions"])


def backdate(key: str, modified: datetime) -> None:
    """The object as if uploaded at ``modified`` (moto stamps the wall clock)."""
    bucket = get_backend("s3")["123456789012"]["aws"].buckets[DATA_BUCKET]
    bucket.keys[key].last_modified = modified.astimezone(UTC).replace(tzinfo=None)


def test_scheduled_ticks_retrain_only_on_new_data_and_move_the_watermark_after_success(
    pipeline: LocalPipeline, options: Any
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)

    # No data yet: the tick ends NoNewData, starts nothing, writes no watermark.
    first = pipeline.fire_schedule(now + timedelta(minutes=1))
    assert first.plan["status"] == "NO_NEW_DATA" and first.execution_arn is None
    assert executions(pipeline) == [] and watermark(pipeline) is None
    # The message attributes (the notification convention) are checked in tests/unit/test_retraining_planner.py.
    [message] = pipeline.notifications()
    assert (message["workflow"], message["stage"], message["status"]) == (
        "RetrainingPlanner",
        "NoNewData",
        "NO_NEW_DATA",
    )

    # New data, one file older than the window; the validation file missing: the run fails.
    pipeline.upload(options.train, f"s3://{DATA_BUCKET}/titanic/training/2026/train.csv")
    pipeline.upload(options.train, f"s3://{DATA_BUCKET}/titanic/training/old/train.csv")
    backdate("titanic/training/old/train.csv", now - timedelta(days=10))
    failed_tick = pipeline.fire_schedule(now + timedelta(minutes=2))
    assert failed_tick.plan["status"] == "PLANNED" and failed_tick.execution_arn
    assert failed_tick.plan["files"] == ["titanic/training/2026/train.csv"]
    failed = pipeline.follow(failed_tick.execution_arn, timeout_seconds=600)
    assert failed.status == "FAILED"
    assert watermark(pipeline) is None, "a failed run moved the watermark"

    # The next tick retries the same data, and succeeds with the validation file back.
    pipeline.upload(options.validation, f"s3://{DATA_BUCKET}/{VALIDATION_KEY}")
    retry_tick = pipeline.fire_schedule(now + timedelta(minutes=3))
    assert retry_tick.plan["status"] == "PLANNED" and retry_tick.execution_arn
    assert retry_tick.plan["files"] == failed_tick.plan["files"]
    manifest_key = retry_tick.plan["manifest"].removeprefix(f"s3://{DATA_BUCKET}/")
    manifest = json.loads(pipeline.s3.get_object(Bucket=DATA_BUCKET, Key=manifest_key)["Body"].read())
    file_list_key = manifest["channels"][0]["s3DataSource"]["S3Uri"].removeprefix(f"s3://{DATA_BUCKET}/")
    file_list = json.loads(pipeline.s3.get_object(Bucket=DATA_BUCKET, Key=file_list_key)["Body"].read())
    assert file_list == [{"prefix": f"s3://{DATA_BUCKET}/"}, "titanic/training/2026/train.csv"]
    succeeded = pipeline.follow(retry_tick.execution_arn, timeout_seconds=900)
    assert succeeded.status == "SUCCEEDED", succeeded.cause
    newest = pipeline.s3.head_object(Bucket=DATA_BUCKET, Key="titanic/training/2026/train.csv")[
        "LastModified"
    ]
    assert watermark(pipeline) == retry_tick.plan["dataWatermark"] == newest.isoformat()
    # The training job got exactly the window's file, from the manifest file channel.
    tuning = pipeline.sagemaker.tuning_jobs[succeeded.output["model"]["hyperParameterTuningJobName"]]
    channel = tuning.training_jobs[0].base_dir / "input" / "data" / "training"
    assert sorted(str(path.relative_to(channel)) for path in channel.rglob("*.csv")) == [
        "titanic/training/2026/train.csv"
    ]
    # The failed run's tuning job did not complete: this first successful run tuned from scratch.
    assert "WarmStartConfig" not in tuning.request
    assert tuning.request["HyperParameterTuningJobConfig"]["RandomSeed"] == 3

    # Nothing new since: NoNewData, no run, the watermark stays.
    pipeline.notifications()
    quiet = pipeline.fire_schedule(now + timedelta(minutes=4))
    assert quiet.plan["status"] == "NO_NEW_DATA" and quiet.execution_arn is None
    assert len(executions(pipeline)) == 2
    assert watermark(pipeline) == newest.isoformat()


def run_on_new_data(pipeline: LocalPipeline, options: Any, folder: str, minutes: int) -> TuningJob:
    """New training data under the watched prefix, a tick ``minutes`` from now, its run to success: its tuning job."""
    pipeline.upload(options.train, f"s3://{DATA_BUCKET}/titanic/training/{folder}/train.csv")
    tick = pipeline.fire_schedule(datetime.now(UTC) + timedelta(minutes=minutes))
    assert tick.execution_arn, tick.plan
    run = pipeline.follow(tick.execution_arn, timeout_seconds=900)
    assert run.status == "SUCCEEDED", run.cause
    return pipeline.sagemaker.tuning_jobs[run.output["model"]["hyperParameterTuningJobName"]]


def test_a_scheduled_run_on_new_data_starts_its_tuning_from_the_last_completed_one(
    pipeline: LocalPipeline, options: Any
) -> None:
    """ml-parameters' warmStart (the example's): the next run's tuning job is a TransferLearning warm start from
    the last completed tuning job of the stack, its search started from that job's scored training jobs."""
    [last] = [tuning for tuning in pipeline.sagemaker.tuning_jobs.values() if tuning.status == "Completed"]
    pipeline.notifications()

    tuning = run_on_new_data(pipeline, options, "2027", minutes=5)

    assert tuning.request["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": last.name}],
        "WarmStartType": "TransferLearning",
    }
    scored = [job for job in last.training_jobs if last.objective_value(job) is not None]
    assert tuning.warm_start_trials == len(scored) > 0
    # People following the run read it in TuningCompleted.
    [completed] = [
        message for message in pipeline.notifications() if message.get("stage") == "TuningCompleted"
    ]
    assert completed["warmStartParents"] == [last.name]


def test_after_a_change_sagemaker_would_refuse_for_a_warm_start_the_next_run_tunes_from_scratch(
    pipeline: LocalPipeline, options: Any
) -> None:
    """One more static hyperparameter: no completed tuning job can be a parent (SageMaker asks for the same number
    of hyperparameters), so the trigger passes them over and the run starts cold instead of failing."""
    _, hyperparameters, _ = local_inputs(options)
    hyperparameters["staticHyperParameters"]["max_runtime_secs"] = "0"
    pipeline.update_stack({"ParametersRevision": "2"}, hyperparameters=hyperparameters)
    pipeline.notifications()

    tuning = run_on_new_data(pipeline, options, "2028", minutes=6)

    assert "WarmStartConfig" not in tuning.request
    [completed] = [
        message for message in pipeline.notifications() if message.get("stage") == "TuningCompleted"
    ]
    assert completed["warmStartParents"] == []
    assert tuning.request["TrainingJobDefinition"]["StaticHyperParameters"]["max_runtime_secs"] == "0"
    # What the trigger spared the run: SageMaker refuses those parents.
    completed = [job.name for job in pipeline.sagemaker.tuning_jobs.values() if job.status == "Completed"]
    refused = copy.deepcopy(tuning.request) | {
        "HyperParameterTuningJobName": "warm-start-refused",
        "WarmStartConfig": {
            "ParentHyperParameterTuningJobs": [
                {"HyperParameterTuningJobName": name} for name in completed if name != tuning.name
            ],
            "WarmStartType": "TransferLearning",
        },
    }
    with pytest.raises(ClientError, match="The total number of static plus tunable hyperparameters"):
        boto3.client("sagemaker", region_name=REGION).create_hyper_parameter_tuning_job(**refused)
