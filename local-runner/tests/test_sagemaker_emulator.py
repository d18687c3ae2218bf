"""Local SageMaker tuning jobs, driven with a stub `train` executable instead of H2O.

The stub follows the container contract (hyperparameters.json in, metric lines on stdout, model/ or
output/failure out) and acts on its hyperparameters: `x` and `n` set the metrics, a value starting with
``fail:`` fails the job with the rest as its reason, `metric=omit` leaves out the objective metric, `epochs`
(`0.8/0.85`) prints an objective value per epoch first, `sleep` delays it and `grandchild` makes it start a
process of its own, as `train` starts its H2O JVM (`detached`: in a session of its own, as h2o-py does). With a checkpoints/ folder it counts its attempts there and prints
the count it found, as a restarted job resumes from its checkpoint. It prints the host it is (resourceconfig.json)
with what its host names resolve to and the environment a cluster needs, and `fail_host` fails that host at once.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import signal
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from api_shapes import SAGEMAKER_API, assert_matches_api_shape
from botocore.model import Shape
from botocore.validate import validate_parameters
from h2o_sagemaker_local import events, opt_ml, processing, sagemaker_emulator, training
from h2o_sagemaker_local.sagemaker_emulator import LocalSageMaker
from moto import mock_aws
from moto.sagemaker.exceptions import ValidationError
from polling import wait_until
from process_watch import no_process_left, processes_using
from trained_models import train_models

REPO_ROOT = Path(__file__).resolve().parents[2]
TUNER_ASL = REPO_ROOT / "sagemaker-model-tuner" / "statemachine" / "model-tuning.asl.json"
REGION = "us-east-1"
BUCKET = "data-bucket"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker-execution"

STUB_TRAIN = """\
#!{python}
import json, os, subprocess, sys, time
from pathlib import Path

base = Path(os.environ["SAGEMAKER_BASE_DIR"])
hp = json.loads((base / "input" / "config" / "hyperparameters.json").read_text())
if hp.get("grandchild") in ("true", "detached"):
    detached = hp["grandchild"] == "detached"
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=detached)
if (base / "checkpoints").is_dir():
    attempts = base / "checkpoints" / "attempts"
    found = int(attempts.read_text()) if attempts.exists() else 0
    print(f"attempts found in the checkpoint folder: {{found}}", flush=True)
    attempts.write_text(str(found + 1))
(base / "started").write_text(str(os.getpid()))
resources = json.loads((base / "input" / "config" / "resourceconfig.json").read_text())
host = resources["current_host"]
if len(resources["hosts"]) > 1:
    import socket
    resolved = " ".join(name + "=" + socket.gethostbyname(name) for name in resources["hosts"])
    print(f"host {{host}} of {{resources['hosts']}} resolves {{resolved}}", flush=True)
    print("environment", os.environ["TRAINING_JOB_NAME"], os.environ["H2O_GBM_TRAINER_CLUSTER_PORT"], flush=True)
for value in filter(None, hp.get("epochs", "").split("/")):  # an objective value per epoch, as they come
    print(f"validation:auc={{value}};", flush=True)
    time.sleep(0.2)
if hp.get("fail_host") != host:
    time.sleep(float(hp.get("sleep", "0")))
reasons = [value[len("fail:"):] for value in hp.values() if value.startswith("fail:")]
if hp.get("fail_host") == host:
    reasons.append(host + " failed")
if not any((base / "input" / "data" / "training").iterdir()):
    reasons.append("no training data")
if reasons:
    (base / "output").mkdir(exist_ok=True)
    (base / "output" / "failure").write_text(reasons[0] + "\\n")
    sys.exit(1)
x = float(hp.get("x", "0")) + float(hp.get("n", "0"))
print("training:auc=0.99;")
if hp.get("metric") != "omit":
    print(f"validation:auc={{0.5 + x / 100!r}};")
    print(f"validation:logloss={{x / 10!r}};")
(base / "model").mkdir(exist_ok=True)
(base / "model" / "model.json").write_text(json.dumps(hp))
(base / "model" / "host.txt").write_text(host)
"""


def expected_auc(hyperparameters: dict[str, str]) -> float:
    """The stub's validation:auc for these hyperparameters."""
    return 0.5 + (float(hyperparameters.get("x", "0")) + float(hyperparameters.get("n", "0"))) / 100


def metric_definitions() -> list[dict[str, str]]:
    """The tuner's MetricDefinitions, read from its state machine: the one place they live."""
    states = json.loads(TUNER_ASL.read_text())["States"]
    return states["UseTrainingImage"]["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]


def categorical(**values: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {"CategoricalParameterRanges": [{"Name": name, "Values": items} for name, items in values.items()]}


RANDOM_RANGES = {
    "IntegerParameterRanges": [{"Name": "n", "MinValue": "1", "MaxValue": "5", "ScalingType": "Linear"}],
    "ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "40", "ScalingType": "Auto"}],
    "CategoricalParameterRanges": [],
}


def tuning_request(
    name: str,
    ranges: dict[str, Any],
    *,
    strategy: str = "Grid",
    max_jobs: int | None = None,
    max_parallel: int = 2,
    objective: tuple[str, str] = ("Maximize", "validation:auc"),
    static: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob as the tuner state machine sends it (execution input + trainingJobExtras)."""
    limits = {"MaxParallelTrainingJobs": max_parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    request = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": objective[0], "MetricName": objective[1]},
            "ResourceLimits": limits,
            "ParameterRanges": ranges,
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"seed": "1"} | (static or {}),
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "ContentType": "text/csv",
                    "CompressionType": "None",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{BUCKET}/data/{channel}/",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
                for channel in ("training", "validation")
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
            "EnableManagedSpotTraining": False,
            "EnableNetworkIsolation": False,
            "AlgorithmSpecification": {
                "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/h2o-gbm-trainer:latest",
                "TrainingInputMode": "File",
                "MetricDefinitions": metric_definitions(),
            },
            "RoleArn": ROLE_ARN,
        },
        "Tags": [{"Key": "Environment", "Value": "test"}],
    }
    # A request the real API would refuse would make these tests prove nothing about the emulation.
    validate_parameters(request, SAGEMAKER_API.operation_model("CreateHyperParameterTuningJob").input_shape)
    return request


def spot(request: dict[str, Any]) -> dict[str, Any]:
    definition = request["TrainingJobDefinition"]
    definition["EnableManagedSpotTraining"] = True
    definition["StoppingCondition"]["MaxWaitTimeInSeconds"] = 600
    definition["CheckpointConfig"] = {
        "S3Uri": f"s3://{BUCKET}/checkpoints/{request['HyperParameterTuningJobName']}"
    }
    validate_parameters(request, SAGEMAKER_API.operation_model("CreateHyperParameterTuningJob").input_shape)
    return request


# --- fixtures and helpers ---------------------------------------------------------------------------------


@pytest.fixture
def sagemaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSageMaker]:
    """A LocalSageMaker whose jobs run the stub, against moto S3 holding the training and validation data."""
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    stub = tmp_path / "bin" / "train"
    stub.parent.mkdir()
    stub.write_text(STUB_TRAIN.format(python=sys.executable))
    stub.chmod(0o755)
    monkeypatch.setattr(training, "TRAIN_EXECUTABLE", stub)
    workdir = tmp_path / "work"
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/training/train.csv", Body=b"a,b\n1,2\n")
        s3.put_object(Bucket=BUCKET, Key="data/validation/validation.csv", Body=b"a,b\n3,4\n")
        local = LocalSageMaker(workdir, seed=1)
        try:
            yield local
        finally:
            local.shutdown()
            no_process_left(workdir)
            leftovers = processes_using(workdir)
            for pid in leftovers:  # only the stubs this test started: their environment names its workdir
                os.kill(pid, signal.SIGKILL)
    assert leftovers == [], "a training process outlived shutdown()"


def run_to_end(sagemaker: LocalSageMaker, request: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    """Create the tuning job, poll it to a final status and return DescribeHyperParameterTuningJob."""
    sagemaker.create_hyper_parameter_tuning_job(request)
    return run_to_end_of(sagemaker, request["HyperParameterTuningJobName"], timeout)


def run_to_end_of(sagemaker: LocalSageMaker, name: str, timeout: float = 15) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        description = sagemaker.describe_hyper_parameter_tuning_job({"HyperParameterTuningJobName": name})
        return description if description["HyperParameterTuningJobStatus"] != "InProgress" else None

    return wait_until(finished, f"tuning job {name} ending", timeout)


def summaries(sagemaker: LocalSageMaker, name: str, **filters: str) -> list[dict[str, Any]]:
    request = {"HyperParameterTuningJobName": name} | filters
    return sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(request)["TrainingJobSummaries"]


def started(sagemaker: LocalSageMaker, name: str, count: int) -> bool:
    """`count` stubs of the tuning job are running (each wrote its started marker)."""
    jobs = sagemaker.tuning_jobs[name].training_jobs
    return sum((job.base_dir / "started").exists() for job in jobs) >= count


def most_at_once(jobs: list[dict[str, Any]]) -> int:
    """The most training jobs that ran at the same time, from their start and end times."""
    events = sorted(
        [(job["TrainingStartTime"], 1) for job in jobs] + [(job["TrainingEndTime"], -1) for job in jobs],
        key=lambda event: (event[0], event[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


# --- outcomes of the training jobs ------------------------------------------------------------------------


def test_a_failed_training_job_does_not_fail_the_tuning_job(sagemaker: LocalSageMaker) -> None:
    request = tuning_request("one-fails", categorical(x=["10", "fail:H2O ran out of memory", "30", "20"]))
    description = run_to_end(sagemaker, request)

    assert description["HyperParameterTuningJobStatus"] == "Completed"
    assert "FailureReason" not in description
    best = description["BestTrainingJob"]
    assert best["TunedHyperParameters"] == {"x": "30"}
    assert best["TrainingJobStatus"] == "Completed"
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == expected_auc({"x": "30"})
    assert description["TrainingJobStatusCounters"] == {
        "Completed": 3,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 1,
        "Stopped": 0,
    }
    assert description["ObjectiveStatusCounters"] == {"Succeeded": 3, "Pending": 0, "Failed": 1}
    failed = summaries(sagemaker, "one-fails", StatusEquals="Failed")
    assert len(failed) == 1
    assert failed[0]["TunedHyperParameters"] == {"x": "fail:H2O ran out of memory"}
    assert failed[0]["FailureReason"] == "H2O ran out of memory"
    assert failed[0]["ObjectiveStatus"] == "Failed"
    assert "FinalHyperParameterTuningJobObjectiveMetric" not in failed[0]
    assert len(summaries(sagemaker, "one-fails", StatusEquals="Completed")) == 3


def test_an_emulator_fault_fails_the_job_with_its_traceback_in_the_jobs_log(
    sagemaker: LocalSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_upload(*_: Any) -> str:
        raise RuntimeError("the emulator broke")

    monkeypatch.setattr(training, "_upload_model", broken_upload)
    description = run_to_end(sagemaker, tuning_request("emulator-fault", categorical(x=["10"])))

    assert description["HyperParameterTuningJobStatus"] == "Failed"
    [job] = sagemaker.tuning_jobs["emulator-fault"].training_jobs
    assert job.failure_reason == "local emulation error: RuntimeError: the emulator broke"
    log = job.log_path.read_text()
    assert "[local SageMaker] local emulation error: RuntimeError: the emulator broke" in log
    assert "Traceback (most recent call last)" in log and "in broken_upload" in log


def test_the_best_job_has_its_model_where_sagemaker_puts_it(sagemaker: LocalSageMaker) -> None:
    description = run_to_end(sagemaker, tuning_request("artifact", categorical(x=["10", "20"])))
    best = sagemaker.describe_training_job(
        {"TrainingJobName": description["BestTrainingJob"]["TrainingJobName"]}
    )

    artifact = best["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/models/{best['TrainingJobName']}/output/model.tar.gz"
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=artifact.split("/", 3)[3])
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read())) as archive:
        model = json.loads(archive.extractfile("model.json").read())  # type: ignore[union-attr]
    # The job saw the static and tuned hyperparameters and the objective, as SageMaker passes them.
    assert model == {"seed": "1", "x": "20", "_tuning_objective_metric": "validation:auc"}
    assert best["HyperParameters"] == model
    assert {"MetricName": "training:auc", "Value": 0.99} in [
        {key: metric[key] for key in ("MetricName", "Value")} for metric in best["FinalMetricDataList"]
    ]


@pytest.mark.parametrize(
    ("values", "static", "reasons"),
    [
        (["fail:out of memory", "fail:bad column"], {}, ["bad column", "out of memory"]),
        (["10", "20"], {"metric": "omit"}, ["objective metric not reported"]),
    ],
    ids=["all-jobs-fail", "no-job-reports-the-objective"],
)
def test_without_a_scored_job_the_tuning_job_fails_with_the_jobs_reasons(
    sagemaker: LocalSageMaker, values: list[str], static: dict[str, str], reasons: list[str]
) -> None:
    description = run_to_end(sagemaker, tuning_request("all-fail", categorical(x=values), static=static))

    assert description["HyperParameterTuningJobStatus"] == "Failed"
    assert description["FailureReason"] == "All training jobs failed: " + " | ".join(reasons)
    assert "BestTrainingJob" not in description
    assert "HyperParameterTuningEndTime" in description
    assert description["ObjectiveStatusCounters"] == {"Succeeded": 0, "Pending": 0, "Failed": 2}


def test_a_job_without_the_objective_metric_is_completed_but_not_scored(sagemaker: LocalSageMaker) -> None:
    ranges = categorical(x=["10", "30"], metric=["report", "omit"])
    description = run_to_end(sagemaker, tuning_request("no-metric", ranges))

    assert description["HyperParameterTuningJobStatus"] == "Completed"
    # x=30 without the metric scores nothing, however good its model: the best is x=30 that reported.
    assert description["BestTrainingJob"]["TunedHyperParameters"] == {"x": "30", "metric": "report"}
    assert description["TrainingJobStatusCounters"]["Completed"] == 4
    assert description["ObjectiveStatusCounters"] == {"Succeeded": 2, "Pending": 0, "Failed": 2}
    for job in summaries(sagemaker, "no-metric"):
        reported = job["TunedHyperParameters"]["metric"] == "report"
        assert job["TrainingJobStatus"] == "Completed"
        assert job["ObjectiveStatus"] == ("Succeeded" if reported else "Failed")
        assert ("FinalHyperParameterTuningJobObjectiveMetric" in job) is reported


@pytest.mark.parametrize(
    ("objective", "best_x", "best_value"),
    [(("Maximize", "validation:auc"), "30", 0.8), (("Minimize", "validation:logloss"), "10", 1.0)],
)
def test_the_objective_type_picks_the_best_job(
    sagemaker: LocalSageMaker, objective: tuple[str, str], best_x: str, best_value: float
) -> None:
    request = tuning_request("direction", categorical(x=["20", "10", "30"]), objective=objective)
    best = run_to_end(sagemaker, request)["BestTrainingJob"]

    assert best["TunedHyperParameters"] == {"x": best_x}
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": objective[0],
        "MetricName": objective[1],
        "Value": best_value,
    }


# --- strategies and resource limits -----------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_sampled_strategies_launch_max_jobs_at_most_max_parallel_at_once(
    sagemaker: LocalSageMaker, strategy: str
) -> None:
    request = tuning_request(
        "limits", RANDOM_RANGES, strategy=strategy, max_jobs=5, max_parallel=2, static={"sleep": "0.3"}
    )
    description = run_to_end(sagemaker, request)

    jobs = summaries(sagemaker, "limits")
    assert len(jobs) == 5
    assert description["TrainingJobStatusCounters"]["Completed"] == 5
    assert most_at_once(jobs) == 2
    for job in jobs:
        tuned = job["TunedHyperParameters"]
        assert set(tuned) == {"x", "n"}
        assert 0 <= float(tuned["x"]) <= 40 and 1 <= int(tuned["n"]) <= 5
        assert job["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == expected_auc(tuned)
    best_value = max(job["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for job in jobs)
    assert (
        description["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == best_value
    )


def test_the_tuning_jobs_random_seed_seeds_its_search(sagemaker: LocalSageMaker) -> None:
    """The same RandomSeed chooses alike again, another chooses otherwise, whatever the emulator's own seed."""

    def chosen(name: str, seed: int) -> list[dict[str, str]]:
        request = tuning_request(name, RANDOM_RANGES, strategy="Random", max_jobs=3, max_parallel=1)
        request["HyperParameterTuningJobConfig"]["RandomSeed"] = seed
        validate_parameters(
            request, SAGEMAKER_API.operation_model("CreateHyperParameterTuningJob").input_shape
        )
        run_to_end(sagemaker, request)
        return [
            job["TunedHyperParameters"]
            for job in sorted(summaries(sagemaker, name), key=lambda job: job["TrainingJobName"])
        ]

    first = chosen("seeded-a", 7)
    assert chosen("seeded-b", 7) == first
    assert chosen("seeded-c", 8) != first
    assert sagemaker.seed != 7


def test_grid_runs_every_combination_once_without_a_job_limit(sagemaker: LocalSageMaker) -> None:
    request = tuning_request("grid", categorical(x=["10", "20"], n=["1", "2", "3"]), max_parallel=3)
    assert "MaxNumberOfTrainingJobs" not in request["HyperParameterTuningJobConfig"]["ResourceLimits"]
    description = run_to_end(sagemaker, request)

    tried = sorted(
        (job["TunedHyperParameters"]["x"], job["TunedHyperParameters"]["n"])
        for job in summaries(sagemaker, "grid")
    )
    assert tried == [(x, n) for x in ("10", "20") for n in ("1", "2", "3")]
    assert description["BestTrainingJob"]["TunedHyperParameters"] == {"x": "20", "n": "3"}
    assert most_at_once(summaries(sagemaker, "grid")) <= 3


# --- requests the emulation refuses -----------------------------------------------------------------------


def algorithm_resource(request: dict[str, Any]) -> None:
    request["TrainingJobDefinition"]["AlgorithmSpecification"] = {
        "AlgorithmName": "arn:aws:sagemaker:us-east-1:123456789012:algorithm/h2o-gbm",
        "TrainingInputMode": "File",
    }


def several_definitions(request: dict[str, Any]) -> None:
    objective = request["HyperParameterTuningJobConfig"].pop("HyperParameterTuningJobObjective")
    definition = request.pop("TrainingJobDefinition") | {
        "DefinitionName": "only",
        "TuningObjective": objective,
    }
    request["TrainingJobDefinitions"] = [definition]


def hyperband(request: dict[str, Any]) -> None:
    request["HyperParameterTuningJobConfig"]["Strategy"] = "Hyperband"


def grid_with_ranges(request: dict[str, Any]) -> None:
    request["HyperParameterTuningJobConfig"]["ParameterRanges"] = RANDOM_RANGES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (hyperband, "strategy Hyperband is not emulated locally (supported: Bayesian, Random, Grid)"),
        (grid_with_ranges, "the Grid strategy takes only CategoricalParameterRanges"),
        (algorithm_resource, "use trainingImage/inferenceImage rather than an algorithm resource"),
        (several_definitions, "local SageMaker needs a single TrainingJobDefinition"),
    ],
    ids=["hyperband", "grid-with-numeric-ranges", "algorithm-name", "training-job-definitions"],
)
def test_unsupported_requests_are_refused_at_create_time(
    sagemaker: LocalSageMaker, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    request = tuning_request("refused", categorical(x=["10"]), max_jobs=2)
    change(request)
    validate_parameters(request, SAGEMAKER_API.operation_model("CreateHyperParameterTuningJob").input_shape)

    with pytest.raises(ValidationError) as refused:
        sagemaker.create_hyper_parameter_tuning_job(request)
    assert message in refused.value.message
    assert sagemaker.tuning_jobs == {} and sagemaker.training_jobs == {}
    with pytest.raises(ValidationError, match="can't find a tuning job with name refused"):
        sagemaker.describe_hyper_parameter_tuning_job({"HyperParameterTuningJobName": "refused"})


def test_a_tuning_job_name_is_taken_once(sagemaker: LocalSageMaker) -> None:
    first = tuning_request("taken", categorical(x=["10"]))
    sagemaker.create_hyper_parameter_tuning_job(first)

    with pytest.raises(ValidationError, match="Hyperparameter tuning job taken already exists"):
        sagemaker.create_hyper_parameter_tuning_job(tuning_request("taken", categorical(x=["20", "30"])))
    description = run_to_end_of(sagemaker, "taken")
    assert description["HyperParameterTuningJobStatus"] == "Completed"
    assert [job["TunedHyperParameters"] for job in summaries(sagemaker, "taken")] == [{"x": "10"}]


# --- early stopping ---------------------------------------------------------------------------------------


def early_stopping_request(name: str, stopping: str) -> dict[str, Any]:
    """One job at a time, each printing its epochs then training on for 10 s: the second is worse than the first
    at epoch 1, the third better at every epoch."""
    request = tuning_request(
        name,
        categorical(epochs=["0.80/0.85/0.90", "0.60/0.95", "0.85/0.90/0.95"]),
        max_parallel=1,
        static={"sleep": "10" if stopping == "Auto" else "0"},
    )
    request["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] = stopping
    return request


def test_auto_early_stopping_stops_a_job_worse_than_the_median_of_the_earlier_jobs(
    sagemaker: LocalSageMaker,
) -> None:
    finished: list[events.TrainingFinished] = []
    sagemaker.listener = lambda event: (
        finished.append(event) if isinstance(event, events.TrainingFinished) else None
    )
    started_at = time.monotonic()
    description = run_to_end(sagemaker, early_stopping_request("early", "Auto"), timeout=60)

    assert description["HyperParameterTuningJobStatus"] == "Completed"
    assert [job.status for job in finished] == ["Completed", "Stopped", "Completed"]
    assert finished[1].reason == (
        "stopped early: validation:auc=0.6000 at epoch 1, worse than 0.8000, the median of the earlier jobs' "
        "running averages"
    )
    assert time.monotonic() - started_at < 30, "the stopped job did not train on for its 10 s"
    assert description["TrainingJobStatusCounters"]["Stopped"] == 1
    assert description["BestTrainingJob"]["TrainingJobName"] in {finished[0].name, finished[2].name}


def test_without_auto_early_stopping_every_job_runs_to_its_end(sagemaker: LocalSageMaker) -> None:
    description = run_to_end(sagemaker, early_stopping_request("not-early", "Off"), timeout=30)

    assert description["TrainingJobStatusCounters"]["Completed"] == 3


def test_an_objective_no_metric_definition_reads_is_refused(sagemaker: LocalSageMaker) -> None:
    request = tuning_request("undefined", categorical(x=["1"]), objective=("Maximize", "validation:accuracy"))

    with pytest.raises(ValidationError, match="The objective metric validation:accuracy is not defined"):
        sagemaker.create_hyper_parameter_tuning_job(request)


# --- stopping ---------------------------------------------------------------------------------------------


def start_sleeping_jobs(sagemaker: LocalSageMaker, name: str) -> None:
    """Two stubs (and a child process each) that would run for a minute, of a tuning job allowing four."""
    request = tuning_request(
        name, RANDOM_RANGES, strategy="Random", max_jobs=4, static={"sleep": "60", "grandchild": "true"}
    )
    sagemaker.create_hyper_parameter_tuning_job(request)
    wait_until(lambda: started(sagemaker, name, 2), "two training jobs running", timeout=10)
    # Each stub and the process it started: what stopping must take down.
    assert len(processes_using(sagemaker.workdir)) == 4


def test_stopping_a_tuning_job_stops_its_jobs_and_their_processes(sagemaker: LocalSageMaker) -> None:
    start_sleeping_jobs(sagemaker, "stopped")

    sagemaker.stop_hyper_parameter_tuning_job({"HyperParameterTuningJobName": "stopped"})
    description = run_to_end_of(sagemaker, "stopped", timeout=10)

    assert description["HyperParameterTuningJobStatus"] == "Stopped"
    jobs = summaries(sagemaker, "stopped")
    assert len(jobs) == 2, "no job starts after the stop"
    assert {job["TrainingJobStatus"] for job in jobs} == {"Stopped"}
    assert description["TrainingJobStatusCounters"]["Stopped"] == 2
    for job in jobs:
        assert (
            sagemaker.describe_training_job({"TrainingJobName": job["TrainingJobName"]})["SecondaryStatus"]
            == "Stopped"
        )
    assert no_process_left(sagemaker.workdir), processes_using(sagemaker.workdir)


def test_a_stop_before_the_training_process_starts_still_stops_the_job(sagemaker: LocalSageMaker) -> None:
    """StopHyperParameterTuningJob while a job downloads its data: the job must not then train for its runtime."""

    def stop_on_first_start(event: events.Event) -> None:
        if isinstance(event, events.TrainingStarted):
            sagemaker.stop_hyper_parameter_tuning_job({"HyperParameterTuningJobName": "early-stop"})

    sagemaker.listener = stop_on_first_start
    request = tuning_request(
        "early-stop", RANDOM_RANGES, strategy="Random", max_jobs=2, max_parallel=1, static={"sleep": "60"}
    )
    sagemaker.create_hyper_parameter_tuning_job(request)
    description = run_to_end_of(sagemaker, "early-stop", timeout=10)

    assert description["HyperParameterTuningJobStatus"] == "Stopped"
    assert [job["TrainingJobStatus"] for job in summaries(sagemaker, "early-stop")] == ["Stopped"]
    assert no_process_left(sagemaker.workdir), processes_using(sagemaker.workdir)


def test_a_stop_while_the_next_job_is_chosen_stops_that_job_too(
    sagemaker: LocalSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StopHyperParameterTuningJob between the tuning loop's stop check and the new job's registration."""
    make_search = sagemaker_emulator.make_search

    def search_stopped_at_second_suggestion(*args: Any, **kwargs: Any) -> Any:
        search = make_search(*args, **kwargs)
        suggest, calls = search.suggest, []

        def suggest_after_a_stop() -> Any:
            calls.append(1)
            if len(calls) == 2:
                sagemaker.stop_hyper_parameter_tuning_job({"HyperParameterTuningJobName": "racing-stop"})
            return suggest()

        search.suggest = suggest_after_a_stop
        return search

    monkeypatch.setattr(sagemaker_emulator, "make_search", search_stopped_at_second_suggestion)
    request = tuning_request(
        "racing-stop", RANDOM_RANGES, strategy="Random", max_jobs=3, max_parallel=2, static={"sleep": "60"}
    )
    description = run_to_end(sagemaker, request, timeout=10)

    assert description["HyperParameterTuningJobStatus"] == "Stopped"
    assert [job["TrainingJobStatus"] for job in summaries(sagemaker, "racing-stop")] == ["Stopped", "Stopped"]
    assert no_process_left(sagemaker.workdir), processes_using(sagemaker.workdir)


def test_shutdown_leaves_no_process(sagemaker: LocalSageMaker) -> None:
    start_sleeping_jobs(sagemaker, "shutdown")

    began = time.monotonic()
    sagemaker.shutdown()

    assert time.monotonic() - began < 10
    assert no_process_left(sagemaker.workdir), processes_using(sagemaker.workdir)
    description = sagemaker.describe_hyper_parameter_tuning_job({"HyperParameterTuningJobName": "shutdown"})
    assert description["HyperParameterTuningJobStatus"] == "Stopped"
    assert {job["TrainingJobStatus"] for job in summaries(sagemaker, "shutdown")} == {"Stopped"}


# --- fault injection --------------------------------------------------------------------------------------


def running_job(sagemaker: LocalSageMaker, tuning_name: str, hyperparameter: str, value: str) -> str:
    def found() -> str | None:
        return next(
            (
                job.name
                for job in sagemaker.tuning_jobs[tuning_name].training_jobs
                if job.tuned_hyperparameters.get(hyperparameter) == value
                and (job.base_dir / "started").exists()
            ),
            None,
        )

    return wait_until(found, f"the job with {hyperparameter}={value} running", timeout=10)


def test_a_crashed_job_fails_with_the_signal_and_its_detached_processes_go_too(
    sagemaker: LocalSageMaker,
) -> None:
    request = tuning_request("crash", categorical(sleep=["60", "1"]), static={"grandchild": "detached"})
    sagemaker.create_hyper_parameter_tuning_job(request)
    victim = running_job(sagemaker, "crash", "sleep", "60")
    base_dir = sagemaker.training_jobs[victim].base_dir
    wait_until(lambda: len(processes_using(base_dir)) == 2, "the stub and its detached child", timeout=10)

    sagemaker.crash_training_job(victim)
    description = run_to_end_of(sagemaker, "crash")

    assert description["HyperParameterTuningJobStatus"] == "Completed"
    assert description["TrainingJobStatusCounters"]["NonRetryableError"] == 1
    assert description["BestTrainingJob"]["TunedHyperParameters"] == {"sleep": "1"}
    crashed = sagemaker.describe_training_job({"TrainingJobName": victim})
    assert crashed["TrainingJobStatus"] == "Failed"
    assert crashed["FailureReason"] == f"train was killed by SIGKILL; see {base_dir / 'training.log'}"
    assert no_process_left(base_dir), processes_using(base_dir)


def test_an_interrupted_spot_job_runs_again_with_its_checkpoint_folder(sagemaker: LocalSageMaker) -> None:
    sagemaker.create_hyper_parameter_tuning_job(spot(tuning_request("spot", categorical(sleep=["2"]))))
    name = running_job(sagemaker, "spot", "sleep", "2")

    sagemaker.interrupt_training_job(name)
    during = sagemaker.describe_training_job({"TrainingJobName": name})
    description = run_to_end_of(sagemaker, "spot")

    assert during["TrainingJobStatus"] == "InProgress"
    assert description["HyperParameterTuningJobStatus"] == "Completed"
    job = sagemaker.describe_training_job({"TrainingJobName": name})
    assert job["TrainingJobStatus"] == "Completed"
    assert [item["Status"] for item in job["SecondaryStatusTransitions"]] == [
        "Downloading", "Training", "Interrupted", "Restarting", "Training", "Uploading", "Completed"
    ]  # fmt: skip
    log = sagemaker.training_jobs[name].log_path.read_text()
    # One log across both runs; the second found what the first left in the checkpoint folder.
    assert "attempts found in the checkpoint folder: 0" in log
    assert "attempts found in the checkpoint folder: 1" in log
    assert sagemaker.training_jobs[name].interruptions == 1


def test_faults_are_injected_only_where_they_can_happen(sagemaker: LocalSageMaker) -> None:
    sagemaker.create_hyper_parameter_tuning_job(tuning_request("on-demand", categorical(sleep=["60"])))
    name = running_job(sagemaker, "on-demand", "sleep", "60")

    with pytest.raises(ValidationError, match="does not use managed spot training"):
        sagemaker.interrupt_training_job(name)
    with pytest.raises(ValidationError, match="no running training process"):
        sagemaker.crash_training_job("no-such-job")
    with pytest.raises(ValidationError, match='Could not find endpoint "no-such-endpoint"'):
        sagemaker.crash_model_server("no-such-endpoint")
    sagemaker.stop_hyper_parameter_tuning_job({"HyperParameterTuningJobName": "on-demand"})
    run_to_end_of(sagemaker, "on-demand")
    with pytest.raises(ValidationError, match="no running training process"):
        sagemaker.crash_training_job(name)


# --- training jobs of several instances ---------------------------------------------------------------------


def instances(request: dict[str, Any], count: int, sharded_training: bool = False) -> dict[str, Any]:
    """The request with ``count`` training instances (the training channel ShardedByS3Key if asked)."""
    definition = request["TrainingJobDefinition"]
    definition["ResourceConfig"]["InstanceCount"] = count
    if sharded_training:
        definition["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = (
            "ShardedByS3Key"
        )
    validate_parameters(request, SAGEMAKER_API.operation_model("CreateHyperParameterTuningJob").input_shape)
    return request


def test_a_job_of_several_instances_runs_a_train_per_host_each_with_its_opt_ml(
    sagemaker: LocalSageMaker,
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for name in ("more.csv", "most.csv"):
        s3.put_object(Bucket=BUCKET, Key=f"data/training/{name}", Body=b"a,b\n5,6\n")
    request = instances(tuning_request("hosts", categorical(x=["10"])), 3, sharded_training=True)

    description = run_to_end(sagemaker, request)

    assert description["HyperParameterTuningJobStatus"] == "Completed"
    name = description["BestTrainingJob"]["TrainingJobName"]
    job = sagemaker.training_jobs[name]
    names = ["algo-1", "algo-2", "algo-3"]
    assert [(host.name, host.base_dir) for host in job.hosts] == [
        ("algo-1", job.base_dir),  # the job's folder, where its model and log have always been
        ("algo-2", job.base_dir / "algo-2"),
        ("algo-3", job.base_dir / "algo-3"),
    ]
    training_files = []
    for host in job.hosts:
        config = json.loads((host.base_dir / "input" / "config" / "resourceconfig.json").read_text())
        assert config == {"current_host": host.name, "hosts": names, "network_interface_name": "lo"}
        log = host.log_path.read_text()
        assert (
            f"host {host.name} of {names} resolves algo-1=127.0.0.1 algo-2=127.0.0.1 algo-3=127.0.0.1" in log
        )
        job_name, port = next(line for line in log.splitlines() if line.startswith("environment")).split()[1:]
        assert job_name == name and 20000 <= int(port) < 32000
        data = host.base_dir / "input" / "data"
        assert [path.name for path in (data / "validation").iterdir()] == [
            "validation.csv"
        ]  # FullyReplicated
        training_files.append(sorted(path.name for path in (data / "training").iterdir()))
    # ShardedByS3Key: the training channel's three objects dealt out, one to each host.
    assert training_files == [["more.csv"], ["most.csv"], ["train.csv"]]
    # The model and the metrics are the first host's.
    described = sagemaker.describe_training_job({"TrainingJobName": name})
    assert described["ResourceConfig"]["InstanceCount"] == 3
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
    with tarfile.open(
        fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=artifact)["Body"].read())
    ) as archive:
        assert archive.extractfile("host.txt").read() == b"algo-1"  # type: ignore[union-attr]
    assert description["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"][
        "Value"
    ] == expected_auc({"x": "10"})


def test_the_first_host_that_fails_fails_the_job_and_the_others_are_stopped(
    sagemaker: LocalSageMaker,
) -> None:
    static = {"fail_host": "algo-2", "sleep": "60", "grandchild": "detached"}
    request = instances(tuning_request("one-host-fails", categorical(x=["10"]), static=static), 2)
    began = time.monotonic()

    description = run_to_end(sagemaker, request)

    assert time.monotonic() - began < 10, "algo-1 was left sleeping"
    assert description["HyperParameterTuningJobStatus"] == "Failed"
    job = sagemaker.tuning_jobs["one-host-fails"].training_jobs[0]
    assert job.failure_reason == "algo-2 failed"
    assert no_process_left(job.base_dir), processes_using(job.base_dir)


@pytest.mark.parametrize("fault", ["crash", "stop"])
def test_a_crash_or_a_stop_takes_every_host_of_a_job_down(sagemaker: LocalSageMaker, fault: str) -> None:
    request = instances(
        tuning_request("hosts-down", categorical(sleep=["60"]), static={"grandchild": "detached"}), 2
    )
    sagemaker.create_hyper_parameter_tuning_job(request)
    name = running_job(sagemaker, "hosts-down", "sleep", "60")
    job = sagemaker.training_jobs[name]
    wait_until(lambda: len(processes_using(job.base_dir)) == 4, "two stubs and their children", timeout=10)

    if fault == "crash":
        sagemaker.crash_training_job(name)
    else:
        sagemaker.stop_hyper_parameter_tuning_job({"HyperParameterTuningJobName": "hosts-down"})
    run_to_end_of(sagemaker, "hosts-down")

    described = sagemaker.describe_training_job({"TrainingJobName": name})
    if fault == "crash":
        assert described["TrainingJobStatus"] == "Failed"
        assert re.fullmatch(r"train was killed by SIGKILL; see .*training\.log", described["FailureReason"])
    else:
        assert described["TrainingJobStatus"] == "Stopped"
    assert no_process_left(job.base_dir), processes_using(job.base_dir)


def test_each_channel_is_told_its_input_mode_and_fastfile_data_is_laid_out_as_files(
    sagemaker: LocalSageMaker,
) -> None:
    """The job's TrainingInputMode, unless a channel's InputMode overrides it, reaches inputdataconfig.json; a
    FastFile channel's objects are at the paths File mode gives them (SageMaker: "no code changes")."""
    request = tuning_request("fastfile", categorical(x=["10"]))
    definition = request["TrainingJobDefinition"]
    definition["AlgorithmSpecification"]["TrainingInputMode"] = "FastFile"
    definition["InputDataConfig"][1]["InputMode"] = "File"
    validate_parameters(request, SAGEMAKER_API.operation_model("CreateHyperParameterTuningJob").input_shape)

    description = run_to_end(sagemaker, request)

    assert description["HyperParameterTuningJobStatus"] == "Completed"
    name = description["BestTrainingJob"]["TrainingJobName"]
    base_dir = sagemaker.training_jobs[name].base_dir
    config = json.loads((base_dir / "input" / "config" / "inputdataconfig.json").read_text())
    assert {channel: settings["TrainingInputMode"] for channel, settings in config.items()} == {
        "training": "FastFile",
        "validation": "File",
    }
    assert (base_dir / "input" / "data" / "training" / "train.csv").read_bytes() == b"a,b\n1,2\n"
    described = sagemaker.describe_training_job({"TrainingJobName": name})
    assert [channel.get("InputMode") for channel in described["InputDataConfig"]] == [None, "File"]


@pytest.mark.parametrize(
    ("channel_settings", "reason"),
    [
        ({"InputMode": "Pipe"}, "channel training: Pipe input mode is not emulated by the local SageMaker"),
        (
            {"InputMode": "FastFile", "DataSource": {"S3DataSource": {
                "S3DataType": "ManifestFile", "S3Uri": f"s3://{BUCKET}/data/training.manifest"}}},
            "channel training: S3DataType ManifestFile in FastFile input mode: SageMaker documents FastFile for "
            "S3Prefix data sources",
        ),
        (
            {"InputMode": "FastFile", "CompressionType": "Gzip"},
            "channel training: CompressionType Gzip is used only in Pipe input mode; in FastFile mode leave it",
        ),
    ],
)  # fmt: skip
def test_input_modes_the_emulation_does_not_run_as_sagemaker_would_are_refused(
    sagemaker: LocalSageMaker, channel_settings: dict[str, Any], reason: str
) -> None:
    request = tuning_request("input-mode", categorical(x=["1"]))
    request["TrainingJobDefinition"]["InputDataConfig"][0].update(channel_settings)
    validate_parameters(request, SAGEMAKER_API.operation_model("CreateHyperParameterTuningJob").input_shape)
    with pytest.raises(ValidationError, match=re.escape(reason)):
        sagemaker.create_hyper_parameter_tuning_job(request)
    assert "input-mode" not in sagemaker.tuning_jobs


def test_gzip_compression_in_file_mode_is_refused(sagemaker: LocalSageMaker) -> None:
    request = tuning_request("gzip-file-mode", categorical(x=["1"]))
    request["TrainingJobDefinition"]["InputDataConfig"][1]["CompressionType"] = "Gzip"
    with pytest.raises(
        ValidationError,
        match=r"channel validation: CompressionType Gzip is used only in Pipe input mode; in File mode leave it",
    ):
        sagemaker.create_hyper_parameter_tuning_job(request)
    assert "gzip-file-mode" not in sagemaker.tuning_jobs


def test_several_instances_are_refused_where_they_cannot_run(
    sagemaker: LocalSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opt_ml, "find_nss_wrapper", lambda: None)
    with pytest.raises(
        ValidationError, match=r"algo-1, algo-2 resolve to 127.0.0.1: install Debian's libnss-wrapper"
    ):
        sagemaker.create_hyper_parameter_tuning_job(
            instances(tuning_request("no-wrapper", categorical(x=["1"])), 2)
        )
    # One instance needs neither.
    run_to_end(sagemaker, tuning_request("one-instance", categorical(x=["1"])))


@pytest.mark.h2o
def test_two_instances_train_as_one_h2o_cluster_and_match_one_instance(
    sagemaker: LocalSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real `train` on the Titanic data, by one instance and by two forming one H2O cluster, side by side."""
    monkeypatch.setattr(training, "TRAIN_EXECUTABLE", Path(sys.executable).with_name("train"))
    monkeypatch.setenv("H2O_GBM_TRAINER_MAX_MEM_SIZE", "1G")
    s3 = boto3.client("s3", region_name=REGION)
    for channel, name in (("training", "train.csv"), ("validation", "validation.csv")):
        s3.delete_object(Bucket=BUCKET, Key=f"data/{channel}/{channel}.csv")
        s3.put_object(
            Bucket=BUCKET, Key=f"data/{channel}/{name}", Body=(REPO_ROOT / "examples" / name).read_bytes()
        )
    static = json.loads(
        (REPO_ROOT / "tests" / "fixtures" / "original-examples" / "hyperparameters.json").read_text()
    )["staticHyperParameters"] | {"ntrees": "30", "score_tree_interval": "5"}
    for count in (1, 2):
        request = tuning_request(
            f"instances-{count}", categorical(max_depth=["5"]), static=static, max_parallel=1
        )
        sagemaker.create_hyper_parameter_tuning_job(instances(request, count))
    one, two = (run_to_end_of(sagemaker, f"instances-{count}", timeout=180) for count in (1, 2))

    assert (one["HyperParameterTuningJobStatus"], two["HyperParameterTuningJobStatus"]) == (
        "Completed",
        "Completed",
    )
    job = sagemaker.tuning_jobs["instances-2"].training_jobs[0]
    leader_log, member_log = (host.log_path.read_text() for host in job.hosts)
    assert leader_log.count("H2O cloud of 2 nodes") == member_log.count("H2O cloud of 2 nodes") == 1
    assert "validation:auc=" in leader_log and "validation:auc=" not in member_log
    assert "the leader algo-1 finished: this instance leaves the H2O cluster" in member_log
    auc_one, auc_two = (
        description["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        for description in (one, two)
    )
    assert auc_two == pytest.approx(auc_one, abs=0.002)
    metadata = json.loads((job.base_dir / "model" / "model-metadata.json").read_text())
    assert metadata["metrics"]["validation"]["auc"] == pytest.approx(auc_two, abs=1e-9)
    assert not (job.base_dir / "algo-2" / "model" / "model-metadata.json").exists()
    assert no_process_left(sagemaker.workdir), processes_using(sagemaker.workdir)


# --- response shapes --------------------------------------------------------------------------------------


def test_responses_have_the_shapes_of_the_sagemaker_api(sagemaker: LocalSageMaker) -> None:
    description = run_to_end(
        sagemaker, tuning_request("shapes", categorical(x=["10", "fail:bad data", "20"]))
    )
    best = description["BestTrainingJob"]
    listed = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        {"HyperParameterTuningJobName": "shapes"}
    )
    training_job = sagemaker.describe_training_job({"TrainingJobName": best["TrainingJobName"]})

    def output_shape(operation: str) -> Shape:
        return SAGEMAKER_API.operation_model(operation).output_shape

    assert_matches_api_shape(description, output_shape("DescribeHyperParameterTuningJob"))
    assert_matches_api_shape(listed, output_shape("ListTrainingJobsForHyperParameterTuningJob"))
    assert_matches_api_shape(training_job, output_shape("DescribeTrainingJob"))
    # What the BestModelSelector Lambda and the state machines read, spelled as AWS spells it.
    assert set(best) == {
        "TrainingJobName",
        "TrainingJobArn",
        "TuningJobName",
        "CreationTime",
        "TrainingStartTime",
        "TrainingEndTime",
        "TrainingJobStatus",
        "TunedHyperParameters",
        "FinalHyperParameterTuningJobObjectiveMetric",
        "ObjectiveStatus",
    }
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Maximize",
        "MetricName": "validation:auc",
        "Value": expected_auc({"x": "20"}),
    }
    assert best["TuningJobName"] == "shapes" and best["ObjectiveStatus"] == "Succeeded"
    assert best["TrainingJobName"].startswith("shapes-")
    assert (
        best["TrainingJobArn"]
        == f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{best['TrainingJobName']}"
    )
    assert training_job["TuningJobArn"] == description["HyperParameterTuningJobArn"]
    assert training_job["TrainingJobStatus"] == "Completed"


# --- warm start ---------------------------------------------------------------------------------------------


def warm_start(request: dict[str, Any], *parents: str, kind: str = "TransferLearning") -> dict[str, Any]:
    request["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": name} for name in parents],
        "WarmStartType": kind,
    }
    validate_parameters(request, SAGEMAKER_API.operation_model("CreateHyperParameterTuningJob").input_shape)
    return request


def test_a_warm_start_tuning_job_starts_from_its_parents_results_in_its_own_ranges(
    sagemaker: LocalSageMaker,
) -> None:
    parent = run_to_end(sagemaker, tuning_request("parent", RANDOM_RANGES, strategy="Random", max_jobs=6))
    parent_jobs = summaries(sagemaker, "parent")
    narrower = copy.deepcopy(RANDOM_RANGES)
    narrower["ContinuousParameterRanges"][0]["MaxValue"] = (
        "20"  # x in [0, 20]: the parents' other jobs do not fit
    )

    child = run_to_end(
        sagemaker,
        warm_start(tuning_request("child", narrower, strategy="Bayesian", max_jobs=2), "parent"),
    )

    assert parent["HyperParameterTuningJobStatus"] == child["HyperParameterTuningJobStatus"] == "Completed"
    assert child["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent"}],
        "WarmStartType": "TransferLearning",
    }
    in_range = [job for job in parent_jobs if float(job["TunedHyperParameters"]["x"]) <= 20]
    assert 0 < len(in_range) < len(parent_jobs), "the seed should give jobs on both sides of x=20"
    assert sagemaker.tuning_jobs["child"].warm_start_trials == len(in_range)
    # The parents' jobs inform the search; the best job is one of this tuning job's own (TransferLearning).
    assert child["BestTrainingJob"]["TuningJobName"] == "child"
    assert len(summaries(sagemaker, "child")) == 2
    assert_matches_api_shape(
        child, SAGEMAKER_API.operation_model("DescribeHyperParameterTuningJob").output_shape
    )


def test_warm_starts_sagemaker_refuses_are_refused_naming_the_rule(sagemaker: LocalSageMaker) -> None:
    run_to_end(sagemaker, tuning_request("parent", RANDOM_RANGES, strategy="Random", max_jobs=2))
    start_sleeping_jobs(sagemaker, "running")
    many = categorical(x=["10"], y=[str(value) for value in range(11)])
    run_to_end(sagemaker, tuning_request("many-values", many, strategy="Random", max_jobs=1))

    def child(**changes: Any) -> dict[str, Any]:
        return tuning_request("child", RANDOM_RANGES, strategy="Bayesian", max_jobs=2) | changes

    retyped = copy.deepcopy(RANDOM_RANGES)
    retyped["IntegerParameterRanges"] = [{"Name": "x", "MinValue": "0", "MaxValue": "40"}]
    retyped["ContinuousParameterRanges"] = [{"Name": "n", "MinValue": "1", "MaxValue": "5"}]
    cases = [
        (warm_start(child(), "gone"), "Parent tuning job(s) not found: gone"),
        (warm_start(child(), "running"), "Parent tuning job running is InProgress: parent jobs must be in a"),
        (
            warm_start(
                tuning_request(
                    "child",
                    RANDOM_RANGES,
                    strategy="Bayesian",
                    max_jobs=2,
                    objective=("Minimize", "validation:logloss"),
                ),
                "parent",
            ),
            "The objective metric validation:logloss is not the one of parent tuning job parent",
        ),
        (
            warm_start(
                tuning_request(
                    "child", RANDOM_RANGES, strategy="Bayesian", max_jobs=2, static={"ntrees": "50"}
                ),
                "parent",
            ),
            "The total number of static plus tunable hyperparameters (4) differs from parent tuning job parent's (3)",
        ),
        (
            warm_start(tuning_request("child", retyped, strategy="Bayesian", max_jobs=2), "parent"),
            "The type of hyperparameter",
        ),
        (
            warm_start(
                tuning_request(
                    "child", categorical(x=["10"]), strategy="Random", max_jobs=1, static={"y": "3"}
                ),
                "many-values",
            ),
            "11 changes from parent tuning job many-values's tunable and static hyperparameters",
        ),
        (
            warm_start(tuning_request("child", RANDOM_RANGES, strategy="Bayesian", max_jobs=499), "parent"),
            "The parent tuning jobs' 2 training jobs and MaxNumberOfTrainingJobs 499 exceed the 500",
        ),
        (warm_start(child(), *["parent"] * 6), "has 6 jobs; 1 to 5 are allowed"),
        (
            warm_start(child(), "parent", kind="IdenticalDataAndAlgorithm"),
            "WarmStartType IdenticalDataAndAlgorithm is not emulated",
        ),
        (
            warm_start(tuning_request("child", categorical(x=["10"]), max_jobs=2), "parent"),
            "Warm start is emulated for the Bayesian and Random strategies only, not Grid",
        ),
    ]
    for request, message in cases:
        with pytest.raises(ValidationError) as refused:
            sagemaker.create_hyper_parameter_tuning_job(request)
        assert message in refused.value.message
        assert "child" not in sagemaker.tuning_jobs


def test_tuning_jobs_are_listed_filtered_sorted_and_paged_with_their_tags(sagemaker: LocalSageMaker) -> None:
    for name in ("survival-b", "survival-a", "other-c"):
        run_to_end(sagemaker, tuning_request(name, categorical(x=["10"])))

    def names(**request: Any) -> tuple[list[str], str | None]:
        listed = sagemaker.list_hyper_parameter_tuning_jobs(request)
        assert_matches_api_shape(
            listed, SAGEMAKER_API.operation_model("ListHyperParameterTuningJobs").output_shape
        )
        return [
            item["HyperParameterTuningJobName"] for item in listed["HyperParameterTuningJobSummaries"]
        ], listed.get("NextToken")

    assert names() == (["other-c", "survival-a", "survival-b"], None)  # by name, ascending
    assert names(NameContains="SURVIVAL", SortBy="CreationTime", SortOrder="Descending") == (
        ["survival-a", "survival-b"],
        None,
    )
    assert names(StatusEquals="InProgress") == ([], None)
    first_page, token = names(MaxResults=2)
    assert first_page == ["other-c", "survival-a"] and token
    assert names(MaxResults=2, NextToken=token) == (["survival-b"], None)
    arn = sagemaker.tuning_jobs["survival-a"].arn
    assert sagemaker.list_tags({"ResourceArn": arn}) == {"Tags": [{"Key": "Environment", "Value": "test"}]}


# --- processing jobs ----------------------------------------------------------------------------------------

STUB_EVALUATE = """\
#!{python}
import json, os, sys, time
from pathlib import Path

base = Path(os.environ["SAGEMAKER_BASE_DIR"])
(base / "started").write_text(str(os.getpid()))
time.sleep(float(os.environ.get("STUB_SLEEP", "0")))
if os.environ.get("STUB_FAIL"):
    (base / "output" / "message").write_text(os.environ["STUB_FAIL"] + "\\n")
    sys.exit(2)
inputs = base / "processing" / "input"
listing = sorted(str(path.relative_to(inputs)) for path in inputs.rglob("*") if path.is_file())
(base / "processing" / "evaluation").mkdir(parents=True)
(base / "processing" / "evaluation" / "evaluation.json").write_text(json.dumps({{"inputs": listing, "args": sys.argv[1:]}}))
"""


def processing_request(name: str, **environment: str) -> dict[str, Any]:
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE_ARN,
        "AppSpecification": {
            "ImageUri": "trainer:1",
            "ContainerEntrypoint": ["evaluate"],
            "ContainerArguments": ["--quiet"],
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "ProcessingInputs": [
            {
                "InputName": "model",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/artifacts/model.tar.gz",
                    "LocalPath": "/opt/ml/processing/input/model",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "validation",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/data/validation",
                    "LocalPath": "/opt/ml/processing/input/validation",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "evaluation",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/evaluations/{name}",
                        "LocalPath": "/opt/ml/processing/evaluation",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "Environment": environment,
    }


@pytest.fixture
def evaluate_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub = tmp_path / "processing-bin" / "evaluate"
    stub.parent.mkdir()
    stub.write_text(STUB_EVALUATE.format(python=sys.executable))
    stub.chmod(0o755)
    monkeypatch.setattr(processing, "COMMAND_DIR", stub.parent)


def processing_to_end(sagemaker: LocalSageMaker, name: str, timeout: float = 15) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        description = sagemaker.describe_processing_job({"ProcessingJobName": name})
        return description if description["ProcessingJobStatus"] not in ("InProgress", "Stopping") else None

    return wait_until(finished, f"processing job {name} ending", timeout)


def test_a_processing_job_reads_its_inputs_runs_the_entrypoint_and_uploads_its_outputs(
    sagemaker: LocalSageMaker, evaluate_stub: None
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key="artifacts/model.tar.gz", Body=b"artifact")

    sagemaker.create_processing_job(processing_request("evaluate-deployed"))
    description = processing_to_end(sagemaker, "evaluate-deployed")

    assert description["ProcessingJobStatus"] == "Completed", description.get("FailureReason")
    assert_matches_api_shape(description, SAGEMAKER_API.operation_model("DescribeProcessingJob").output_shape)
    uploaded = s3.get_object(Bucket=BUCKET, Key="evaluations/evaluate-deployed/evaluation.json")[
        "Body"
    ].read()
    # Each input where its LocalPath says, the arguments after the entrypoint.
    assert json.loads(uploaded) == {
        "inputs": ["model/model.tar.gz", "validation/validation.csv"],
        "args": ["--quiet"],
    }
    assert (
        description["ProcessingJobArn"]
        == f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/evaluate-deployed"
    )


def test_a_failed_processing_job_reports_the_containers_message(
    sagemaker: LocalSageMaker, evaluate_stub: None
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key="artifacts/model.tar.gz", Body=b"artifact")

    sagemaker.create_processing_job(
        processing_request("bad-rows", STUB_FAIL="channel 'validation' lacks 'Sex'")
    )
    description = processing_to_end(sagemaker, "bad-rows")

    assert description["ProcessingJobStatus"] == "Failed"
    assert description["ExitMessage"] == "channel 'validation' lacks 'Sex'"
    assert description["FailureReason"].startswith("AlgorithmError: channel 'validation' lacks 'Sex'")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="evaluations/bad-rows")


def test_a_processing_job_without_its_input_objects_fails_before_running(
    sagemaker: LocalSageMaker, evaluate_stub: None
) -> None:
    sagemaker.create_processing_job(processing_request("no-artifact"))
    description = processing_to_end(sagemaker, "no-artifact")

    assert description["ProcessingJobStatus"] == "Failed"
    assert description["FailureReason"] == (
        f'ClientError: No S3 objects found under S3 URL "s3://{BUCKET}/artifacts/model.tar.gz" given in input '
        "data source model"
    )
    assert not (sagemaker.processing_jobs["no-artifact"].base_dir / "started").exists()


def test_stopping_a_processing_job_stops_its_process(sagemaker: LocalSageMaker, evaluate_stub: None) -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key="artifacts/model.tar.gz", Body=b"x")
    sagemaker.create_processing_job(processing_request("long", STUB_SLEEP="60"))
    job = sagemaker.processing_jobs["long"]
    wait_until(lambda: (job.base_dir / "started").exists(), "the evaluate stub starting", timeout=10)

    sagemaker.stop_processing_job({"ProcessingJobName": "long"})

    assert processing_to_end(sagemaker, "long")["ProcessingJobStatus"] == "Stopped"
    assert processes_using(job.base_dir) == []
    with pytest.raises(ValidationError, match="is not in progress"):
        sagemaker.stop_processing_job({"ProcessingJobName": "long"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"AppSpecification": {"ImageUri": "trainer:1", "ContainerEntrypoint": ["python3", "x.py"]}},
            r"ContainerEntrypoint must start with one of \['evaluate'\]",
        ),
        ({"AppSpecification": {"ImageUri": "trainer:1"}}, r"ContainerEntrypoint must start with one of"),
    ],
)
def test_processing_requests_the_emulation_cannot_run_are_refused_at_create_time(
    sagemaker: LocalSageMaker, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        sagemaker.create_processing_job(processing_request("refused") | change)
    assert "refused" not in sagemaker.processing_jobs


def test_local_paths_outside_opt_ml_processing_and_a_taken_name_are_refused(
    sagemaker: LocalSageMaker, evaluate_stub: None
) -> None:
    request = processing_request("paths")
    request["ProcessingInputs"][0]["S3Input"]["LocalPath"] = "/opt/ml/model"
    with pytest.raises(
        ValidationError, match=r"LocalPath /opt/ml/model must be a path under /opt/ml/processing/"
    ):
        sagemaker.create_processing_job(request)
    sagemaker.create_processing_job(processing_request("taken"))
    with pytest.raises(ValidationError, match=r"a job with this name already exists"):
        sagemaker.create_processing_job(processing_request("taken"))
    with pytest.raises(ValidationError, match=r"Could not find requested job with name missing"):
        sagemaker.describe_processing_job({"ProcessingJobName": "missing"})


@pytest.mark.h2o
def test_the_trainer_images_evaluate_scores_a_real_artifact_as_its_training_job_did(
    sagemaker: LocalSageMaker, tmp_path: Path
) -> None:
    """The real `train`, then the real `evaluate` as a Processing job on the same validation rows."""
    examples = REPO_ROOT / "examples"
    model = train_models(lambda name: tmp_path / name, {"trained": "20"})["trained"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key="artifacts/model.tar.gz", Body=model.archive)
    s3.put_object(
        Bucket=BUCKET, Key="data/validation/validation.csv", Body=(examples / "validation.csv").read_bytes()
    )
    request = processing_request("evaluate-real")
    request["AppSpecification"].pop("ContainerArguments")
    request["Environment"] = {"H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G"}

    sagemaker.create_processing_job(request)
    description = processing_to_end(sagemaker, "evaluate-real", timeout=180)

    assert description["ProcessingJobStatus"] == "Completed", description.get("FailureReason")
    evaluation = json.loads(
        s3.get_object(Bucket=BUCKET, Key="evaluations/evaluate-real/evaluation.json")["Body"].read()
    )
    reported = model.metadata["metrics"]["validation"]
    assert evaluation["metrics"] == pytest.approx(
        {f"validation:{name}": value for name, value in reported.items()}
    )
