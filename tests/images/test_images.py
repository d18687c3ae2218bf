"""The two SageMaker images, built with docker and with podman (``scripts/build-images.sh``) and run as SageMaker
runs them: ``<image> train`` with /opt/ml mounted and no network, then ``<image> serve`` with the model it wrote
mounted read-only under /opt/ml/model and port 8080 published."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job

pytestmark = pytest.mark.h2o

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
HYPERPARAMETERS = REPO_ROOT / "tests" / "fixtures" / "original-examples" / "hyperparameters.json"
TUNER_ASL = REPO_ROOT / "sagemaker-model-tuner" / "statemachine" / "model-tuning.asl.json"
TRAINER, PREDICTOR = "h2o-gbm-trainer:local", "h2o-gbm-predictor:local"


@dataclass(frozen=True)
class Engine:
    command: str
    environment: dict[str, str]

    def run(self, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.command, *arguments], env=self.environment, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="module", params=["docker", "podman"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Both images built with one engine (cached layers make this quick when nothing changed): each test runs with
    docker and with podman, which `make test` both provides (scripts/ensure-container-engines.sh)."""
    environment = dict(os.environ, CONTAINER_ENGINE=request.param)
    if request.param == "podman":
        environment.setdefault("CONTAINERS_CONF", str(REPO_ROOT / "scripts" / "containers.conf"))
    built = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "build-images.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return Engine(request.param, environment)


def sagemaker_base_dir(root: Path, hyperparameters: dict[str, str]) -> Path:
    """/opt/ml as SageMaker lays it out for a training job with two CSV channels and a checkpoint folder."""
    channels = [
        InputChannel.of("training", EXAMPLES / "train.csv"),
        InputChannel.of("validation", EXAMPLES / "validation.csv"),
    ]
    return lay_out_training_job(root, hyperparameters, channels, checkpoints=True)


@dataclass(frozen=True)
class TrainingRun:
    base_dir: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def training(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> TrainingRun:
    hyperparameters = json.loads(HYPERPARAMETERS.read_text())["staticHyperParameters"] | {"ntrees": "30"}
    base_dir = sagemaker_base_dir(tmp_path_factory.mktemp("opt-ml"), hyperparameters)
    result = engine.run(
        "run", "--rm", "--network", "none", "-e", "H2O_GBM_TRAINER_MAX_MEM_SIZE=1G",
        "-v", f"{base_dir}:/opt/ml", TRAINER, "train",
    )  # fmt: skip
    return TrainingRun(base_dir, result)


def test_the_trainer_image_trains_as_sagemaker_runs_it(training: TrainingRun) -> None:
    assert training.result.returncode == 0, training.result.stdout[-2000:] + training.result.stderr[-2000:]
    model_dir = training.base_dir / "model"
    assert {path.name for path in model_dir.iterdir()} >= {
        "model.zip",
        "model-metadata.json",
        "h2o-genmodel.jar",
    }
    metadata = json.loads((model_dir / "model-metadata.json").read_text())
    assert metadata["target"] == "Survived"
    # The tuner's MetricDefinitions read a value per scoring round (early stopping's epochs), the final metrics
    # last: the latest value, what SageMaker keeps, is the model's validation AUC.
    definitions = [
        item for state in json.loads(TUNER_ASL.read_text())["States"].values()
        for item in state.get("Parameters", {}).get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
    ]  # fmt: skip
    found = {item["Name"]: re.findall(item["Regex"], training.result.stdout) for item in definitions}
    rounds = {row["number_of_trees"] for row in metadata["scoring_history"] if row["number_of_trees"] > 0}
    assert len(found["validation:auc"]) == len(rounds) + 1
    assert float(found["validation:auc"][-1]) == pytest.approx(metadata["metrics"]["validation"]["auc"])
    assert (training.base_dir / "checkpoints").iterdir(), "a checkpoint is kept for a spot restart"


def test_both_images_run_as_root_and_the_predictor_accepts_a_bound_port(engine: Engine) -> None:
    """SageMaker "expects all containers to run with root users" (your-algorithms-inference-code.html), and gives
    SAGEMAKER_BIND_TO_PORT in an inference pipeline only to an image with the accept-bind-to-port label."""
    for image in (TRAINER, PREDICTOR):
        user = engine.run("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
        assert user in ("", "root", "0"), f"{image} runs as {user}"
    labels = engine.run("image", "inspect", "--format", "{{json .Config.Labels}}", PREDICTOR).stdout
    assert json.loads(labels)["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"


def test_bad_input_fails_the_image_with_the_reason_in_the_failure_file(
    engine: Engine, tmp_path: Path
) -> None:
    base_dir = sagemaker_base_dir(tmp_path, {"target": "Survival", "classification": "true"})
    result = engine.run("run", "--rm", "--network", "none", "-v", f"{base_dir}:/opt/ml", TRAINER, "train")
    assert result.returncode == 2
    assert "target 'Survival' is not a column" in (base_dir / "output" / "failure").read_text()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Server:
    container: str
    url: str


@pytest.fixture(scope="module")
def server(engine: Engine, training: TrainingRun) -> Iterator[Server]:
    port = free_port()
    started = engine.run(
        "run", "-d", "-p", f"127.0.0.1:{port}:8080",
        "-v", f"{training.base_dir / 'model'}:/opt/ml/model:ro", PREDICTOR, "serve",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, engine.run("logs", container).stderr[-3000:]
            time.sleep(0.3)
        yield Server(container, url)
    finally:
        engine.run("rm", "-f", container)


def test_the_predictor_image_serves_the_model_as_sagemaker_calls_it(server: Server) -> None:
    with (EXAMPLES / "validation.csv").open(newline="") as source:
        records = [
            {name: value for name, value in row.items() if name != "Survived"}
            for row in csv.DictReader(source)
        ]
    body = io.StringIO()
    csv.writer(body).writerows(list(record.values()) for record in records[:3])

    csv_answer = requests.post(
        f"{server.url}/invocations", data=body.getvalue(), headers={"Content-Type": "text/csv"}, timeout=10
    )
    assert csv_answer.status_code == 200, csv_answer.text
    assert [item["label"] for item in csv_answer.json()["predictions"]] and len(
        csv_answer.json()["predictions"]
    ) == 3

    record = records[0]
    json_answer = requests.post(
        f"{server.url}/invocations",
        data=json.dumps({"instances": [record]}),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        timeout=10,
    )
    assert json_answer.status_code == 200, json_answer.text

    explained = requests.post(
        f"{server.url}/invocations",
        data=json.dumps({"instances": [record]}),
        headers={
            "Content-Type": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": "contributions=true",
        },
        timeout=10,
    )
    assert explained.status_code == 200, explained.text
    prediction = explained.json()["predictions"][0]
    assert list(prediction.pop("contributions"))[-1] == "BiasTerm"  # the image's genmodel computes them
    assert prediction == json_answer.json()["predictions"][0]

    bad = requests.post(
        f"{server.url}/invocations", data="1,2,3", headers={"Content-Type": "text/csv"}, timeout=10
    )
    assert bad.status_code == 400 and "expected" in bad.json()["error"]


def test_the_predictor_image_stops_cleanly_on_sigterm(engine: Engine, server: Server) -> None:
    started = time.monotonic()
    assert engine.run("kill", "--signal", "TERM", server.container).returncode == 0
    waited = engine.run("wait", server.container, timeout=30)
    assert waited.stdout.strip() == "0", engine.run("logs", server.container).stderr[-2000:]
    assert time.monotonic() - started < 5


def test_make_push_images_pushes_both_to_a_registry_and_prints_their_uris(
    engine: Engine, tmp_path: Path
) -> None:
    """Against a registry on loopback (never a remote one): the tags it holds are the images built here."""
    port = free_port()
    registry = subprocess.Popen(
        ["bash", str(REPO_ROOT / "scripts" / "local-registry.sh"), str(port), str(tmp_path / "registry")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and registry.poll() is None, "the local registry did not start"
            time.sleep(0.2)
        pushed = subprocess.run(
            ["make", "-s", "push-images", f"REGISTRY=127.0.0.1:{port}", "TAG=test"],
            cwd=REPO_ROOT,
            env=engine.environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        uris = json.loads(pushed.stdout[pushed.stdout.index("{") :])
        assert uris == {
            "trainingImage": f"127.0.0.1:{port}/h2o-gbm-trainer:test",
            "inferenceImage": f"127.0.0.1:{port}/h2o-gbm-predictor:test",
        }
        for name, uri in (
            ("h2o-gbm-trainer", uris["trainingImage"]),
            ("h2o-gbm-predictor", uris["inferenceImage"]),
        ):
            tags = requests.get(f"http://127.0.0.1:{port}/v2/{name}/tags/list", timeout=5).json()
            assert tags == {"name": name, "tags": ["test"]}
            manifest = requests.get(
                f"http://127.0.0.1:{port}/v2/{name}/manifests/test",
                headers={
                    "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
                },
                timeout=5,
            ).json()
            local_id = engine.run("image", "inspect", "--format", "{{.Id}}", f"{name}:local").stdout.strip()
            assert manifest["config"]["digest"].removeprefix("sha256:") == local_id.removeprefix("sha256:"), (
                uri
            )
    finally:
        registry.terminate()
        registry.wait(timeout=10)
        for name in ("h2o-gbm-trainer", "h2o-gbm-predictor"):  # the pushed tags, not the images they name
            engine.run("rmi", f"127.0.0.1:{port}/{name}:test")
