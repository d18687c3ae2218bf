"""`--containers`: the whole local pipeline with training jobs and the endpoint in the built images (make images),
with docker and with podman, with the results of the process mode: the endpoint, and a batch transform job of the
tuned model, score the validation set to the best job's AUC."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
from batch_records import validation_rows
from h2o_sagemaker_local.account import DATA_BUCKET
from h2o_sagemaker_local.cli import area_under_roc, local_inputs, parse_arguments, score_validation
from h2o_sagemaker_local.containers import ContainerRuntime, ContainersUnavailable
from h2o_sagemaker_local.pipeline import LocalPipeline
from polling import wait_until

pytestmark = pytest.mark.h2o


def containers_of(runtime: ContainerRuntime) -> list[str]:
    listed = runtime.call("ps", "-a", "--format", "{{.Names}}")
    return [name for name in listed.stdout.decode().split() if name.startswith("h2o-local-")]


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_a_run_in_the_images_tunes_deploys_and_scores_as_the_process_mode(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINER_ENGINE", engine)
    options = parse_arguments(
        ["run", "--max-jobs", "2", "--max-parallel", "2", "--containers", "--early-stopping", "Off"]
    )
    ml_parameters, hyperparameters, manifest = local_inputs(options)
    with LocalPipeline(tmp_path, seed=3, containers=True) as pipeline:
        runtime = pipeline.sagemaker.containers
        assert runtime is not None and runtime.engine == engine
        pipeline.deploy(ml_parameters, hyperparameters)
        result = pipeline.run(
            manifest,
            {"training": options.train, "validation": options.validation},
            "manifests/c/manifest.json",
        )
        assert result.status == "SUCCEEDED", result.cause
        tuning = pipeline.sagemaker.tuning_jobs[result.output["model"]["hyperParameterTuningJobName"]]
        assert [job.status for job in tuning.training_jobs] == ["Completed", "Completed"], [
            job.failure_reason for job in tuning.training_jobs
        ]
        for job in tuning.training_jobs:  # each ran as `<image> train`, its output the container's
            assert "validation:auc=" in job.log_path.read_text()
            assert any((job.checkpoint_dir or tmp_path).iterdir()), "the checkpoint folder was mounted"
        endpoint = pipeline.sagemaker.endpoints[result.output["endpoint"]["endpointName"]]
        model_dir = endpoint.workdir / result.output["endpoint"]["endpointConfigName"] / "model"
        metadata = json.loads((model_dir / "model-metadata.json").read_text())
        _, auc = score_validation(endpoint.proxy.url, options.validation.read_bytes(), metadata)
        assert auc == pytest.approx(result.output["model"]["objective"]["Value"], abs=1e-9)
        assert containers_of(runtime), "the endpoint's container serves"
        transformed = transform_validation(pipeline, result.output["model"]["modelName"], options.validation)
        assert transformed == pytest.approx(result.output["model"]["objective"]["Value"], abs=1e-9)
    assert containers_of(runtime) == [], "a container outlived the pipeline"
    assert subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True).stdout == b""


def transform_validation(pipeline: LocalPipeline, model_name: str, validation: Path) -> float:
    """A batch transform job of the model over the validation file (one object, one request, its header kept):
    the AUC of the probabilities it wrote, one CSV line per row."""
    s3 = pipeline.s3
    s3.put_object(Bucket=DATA_BUCKET, Key="batch/input/validation.csv", Body=validation.read_bytes())
    pipeline.sagemaker.create_transform_job(
        {
            "TransformJobName": "validation",
            "ModelName": model_name,
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/batch/input/"}
                },
                "ContentType": "text/csv",
            },
            "TransformOutput": {"S3OutputPath": f"s3://{DATA_BUCKET}/batch/output", "Accept": "text/csv"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        }
    )
    job = pipeline.sagemaker.transform_jobs["validation"]
    wait_until(lambda: job.status not in ("InProgress", "Stopping"), "the transform job ending", timeout=60)
    assert job.status == "Completed", job.failure_reason
    output = s3.get_object(Bucket=DATA_BUCKET, Key="batch/output/validation.csv.out")["Body"].read().decode()
    labels = [row["Survived"] == "1" for row in validation_rows(validation)]
    scores = [float(record[2]) for record in csv.reader(io.StringIO(output))]
    assert len(scores) == len(labels)
    return area_under_roc(labels, scores)


def test_container_engine_picks_the_engine_and_refuses_any_other(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = tmp_path / "containers.conf"
    for engine in ("docker", "podman"):
        monkeypatch.setenv("CONTAINER_ENGINE", engine)
        assert ContainerRuntime.detect(conf).engine == engine
    monkeypatch.setenv("CONTAINER_ENGINE", "nerdctl")
    with pytest.raises(ContainersUnavailable, match="CONTAINER_ENGINE=nerdctl: docker or podman"):
        ContainerRuntime.detect(conf)
    monkeypatch.setenv("CONTAINER_ENGINE", "podman")
    monkeypatch.setenv("PATH", str(tmp_path))  # no engine on it
    with pytest.raises(ContainersUnavailable, match=r"CONTAINER_ENGINE=podman, but podman does not answer"):
        ContainerRuntime.detect(conf)
