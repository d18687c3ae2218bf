"""A run whose training jobs have 2 instances (`trainingInstanceCount` 2), through the whole local pipeline, as
`train` processes and in the trainer image (`--containers`): each job's two hosts form one H2O cluster, the
leader's model is deployed, and it is the model one instance trains from the same hyperparameters. The jobs read
their channels in FastFile mode (`trainingInputMode`), as data large enough for several instances would; the one
instance reads them in File mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from h2o_sagemaker_local.cli import local_inputs, parse_arguments, score_validation
from h2o_sagemaker_local.containers import ContainerRuntime
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job
from h2o_sagemaker_local.pipeline import LocalPipeline, RunResult
from process_watch import no_process_left, processes_using

pytestmark = pytest.mark.h2o

INSTANCES = 2


@pytest.fixture(scope="module")
def options() -> Any:
    # One job at a time: each already runs two JVMs on this machine's cores.
    return parse_arguments(["run", "--max-jobs", "2", "--max-parallel", "1", "--early-stopping", "Off"])


def left_by(runtime: ContainerRuntime) -> list[str]:
    """This runner's containers and networks the engine still has."""
    containers = runtime.call("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
    networks = runtime.call("network", "ls", "--format", "{{.Name}}").stdout.decode().split()
    return [name for name in containers + networks if name.startswith("h2o-local-")]


@pytest.fixture(scope="module", params=[None, "docker", "podman"], ids=["processes", "docker", "podman"])
def distributed_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, options: Any
) -> Iterator[tuple[LocalPipeline, RunResult]]:
    """As `train` processes, then as trainer containers with each engine."""
    ml_parameters, hyperparameters, manifest = local_inputs(options)
    ml_parameters["trainingInstanceCount"] = INSTANCES
    ml_parameters["trainingInputMode"] = "FastFile"
    workdir = tmp_path_factory.mktemp("distributed")
    with pytest.MonkeyPatch.context() as environment:
        if request.param is not None:
            environment.setenv("CONTAINER_ENGINE", request.param)
        pipeline = LocalPipeline(workdir, seed=3, containers=request.param is not None)
    assert getattr(pipeline.sagemaker.containers, "engine", None) == request.param
    with pipeline:
        pipeline.deploy(ml_parameters, hyperparameters)
        data = {"training": options.train, "validation": options.validation}
        yield pipeline, pipeline.run(manifest, data, "manifests/distributed/manifest.json")
    assert no_process_left(pipeline.workdir), processes_using(pipeline.workdir)
    if pipeline.sagemaker.containers is not None:
        assert left_by(pipeline.sagemaker.containers) == []


def test_each_job_trains_in_one_h2o_cloud_of_two_led_by_algo_1(
    distributed_run: tuple[LocalPipeline, RunResult],
) -> None:
    pipeline, result = distributed_run
    assert result.status == "SUCCEEDED", result.cause
    tuning_job = pipeline.sagemaker.tuning_jobs[result.output["model"]["hyperParameterTuningJobName"]]
    assert len(tuning_job.training_jobs) == 2
    for job in tuning_job.training_jobs:
        assert [host.name for host in job.hosts] == ["algo-1", "algo-2"]
        leader, member = (host.log_path.read_text() for host in job.hosts)
        assert (
            leader.count(f"H2O cloud of {INSTANCES} nodes")
            == member.count(f"H2O cloud of {INSTANCES} nodes")
            == 1
        )
        assert "validation:auc=" in leader and "validation:auc=" not in member
        # As processes the hosts resolve to loopback (nss_wrapper); as containers, to their own network's addresses.
        assert ("algo-1 at 127.0.0.1:" in leader) == (pipeline.sagemaker.containers is None)
        interface = "lo" if pipeline.sagemaker.containers is None else "eth0"
        for host in job.hosts:
            config = json.loads((host.base_dir / "input/config/resourceconfig.json").read_text())
            assert config["network_interface_name"] == interface, host.name
            data_config = json.loads((host.base_dir / "input/config/inputdataconfig.json").read_text())
            assert {channel["TrainingInputMode"] for channel in data_config.values()} == {"FastFile"}, (
                host.name
            )
        assert job.describe()["ResourceConfig"]["InstanceCount"] == INSTANCES


def test_the_deployed_model_is_the_one_a_single_instance_trains(
    distributed_run: tuple[LocalPipeline, RunResult], options: Any, tmp_path: Path
) -> None:
    pipeline, result = distributed_run
    objective = result.output["model"]["objective"]["Value"]
    endpoint = pipeline.sagemaker.endpoints[result.output["endpoint"]["endpointName"]]
    model_dir = endpoint.workdir / result.output["endpoint"]["endpointConfigName"] / "model"
    metadata = json.loads((model_dir / "model-metadata.json").read_text())
    _, endpoint_auc = score_validation(endpoint.proxy.url, options.validation.read_bytes(), metadata)
    assert endpoint_auc == pytest.approx(objective, abs=1e-9)

    # The best job's hyperparameters, trained again by one instance.
    best = pipeline.sagemaker.describe_training_job(
        {"TrainingJobName": result.output["model"]["trainingJobName"]}
    )
    base_dir = lay_out_training_job(
        tmp_path / "one-instance",
        best["HyperParameters"],
        [InputChannel.of("training", options.train), InputChannel.of("validation", options.validation)],
    )
    subprocess.run(
        [str(Path(sys.executable).with_name("train"))],
        env=os.environ | {"SAGEMAKER_BASE_DIR": str(base_dir), "H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G"},
        check=True,
        capture_output=True,
    )
    one_instance = json.loads((base_dir / "model" / "model-metadata.json").read_text())
    assert one_instance["metrics"]["validation"]["auc"] == pytest.approx(objective, abs=0.002)
