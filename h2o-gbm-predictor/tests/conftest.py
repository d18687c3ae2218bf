"""A Titanic model from the real `train` entrypoint, and real `serve` processes on free loopback ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from h2o_sagemaker_local.opt_ml import InputChannel, lay_out_training_job

REPO_ROOT = Path(__file__).resolve().parents[2]
ORIGINAL_HYPERPARAMETERS = REPO_ROOT / "tests" / "fixtures" / "original-examples" / "hyperparameters.json"
BIN_DIR = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ModelServer:
    """One `serve` process; ``url`` is its loopback base URL."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @classmethod
    def start(cls, base_dir: Path, helper_dir: Path, **extra_env: str) -> ModelServer:
        port = free_port()
        log_path = base_dir / f"serve-{port}.log"
        environment = os.environ | {
            "SAGEMAKER_BASE_DIR": str(base_dir),
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "H2O_GBM_PREDICTOR_BIND_HOST": "127.0.0.1",
            "H2O_GBM_PREDICTOR_HELPER_DIR": str(helper_dir),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            "H2O_GBM_PREDICTOR_JVM_HEAP": "256m",
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(BIN_DIR / "serve")], env=environment | extra_env, stdout=log, stderr=subprocess.STDOUT
            )
        return cls(process, f"http://127.0.0.1:{port}", log_path)

    def wait_listening(self, timeout: float = 30) -> requests.Response:
        """The first /ping answer (whatever its status) once the server accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/ping", timeout=5)
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"serve did not listen within {timeout} s:\n{self.log()}")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.wait_listening(timeout).status_code != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not ready within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def helper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache for the compiled Java helper, so the session also tests the compile-on-first-use path."""
    return tmp_path_factory.mktemp("helper")


def lay_out_titanic_job(folder: Path, hyperparameters: dict[str, str]) -> Path:
    """A SAGEMAKER_BASE_DIR training on the example Titanic data with the original examples' static
    hyperparameters, ``hyperparameters`` over them."""
    static = json.loads(ORIGINAL_HYPERPARAMETERS.read_text())["staticHyperParameters"]
    return lay_out_training_job(
        folder,
        static | hyperparameters,
        [
            InputChannel.of("training", REPO_ROOT / "examples" / "train.csv"),
            InputChannel.of("validation", REPO_ROOT / "examples" / "validation.csv"),
        ],
    )


def train_all(base_dirs: list[Path]) -> None:
    """Runs the real `train` in each SAGEMAKER_BASE_DIR, all at once."""
    jobs = [
        subprocess.Popen(
            [str(BIN_DIR / "train")],
            env=os.environ | {"SAGEMAKER_BASE_DIR": str(base_dir), "H2O_GBM_TRAINER_MAX_MEM_SIZE": "1G"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for base_dir in base_dirs
    ]
    for job in jobs:
        _, stderr = job.communicate(timeout=180)
        assert job.returncode == 0, f"train failed ({job.returncode}):\n{stderr[-3000:]}"


@pytest.fixture(scope="session")
def titanic_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SAGEMAKER_BASE_DIR whose model/ came from h2o-gbm-trainer's `train` on the example Titanic data."""
    base_dir = lay_out_titanic_job(tmp_path_factory.mktemp("titanic"), {"ntrees": "30"})
    train_all([base_dir])
    return base_dir


# The other model categories, from the same data: the fare (regression) and the passenger class (3 classes).
OTHER_TARGETS = {
    "Regression": "{'classification': 'false', 'target': 'Fare', 'distribution': 'gaussian', "
    "'ignored_columns': 'PassengerId,Name,Cabin,Ticket', 'categorical_columns': 'Sex,Embarked,Pclass'}",
    "Multinomial": "{'classification': 'true', 'target': 'Pclass', 'distribution': 'multinomial', "
    "'ignored_columns': 'PassengerId,Name,Cabin,Ticket', 'categorical_columns': 'Sex,Embarked,Pclass'}",
}


@pytest.fixture(scope="session")
def other_base_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model category -> a SAGEMAKER_BASE_DIR with a model of that category (see OTHER_TARGETS)."""
    base_dirs = {
        category: lay_out_titanic_job(
            tmp_path_factory.mktemp(category.lower()),
            {"training": training, "balance_classes": "False", "ntrees": "20", "stopping_metric": "AUTO"},
        )
        for category, training in OTHER_TARGETS.items()
    }
    train_all(list(base_dirs.values()))
    return base_dirs


@pytest.fixture(scope="session")
def start_server(helper_dir: Path) -> Callable[..., ModelServer]:
    """Starts `serve` for a SAGEMAKER_BASE_DIR, with any extra environment variables as keywords; the test stops
    it (tests import nothing from conftest)."""
    return lambda base_dir, **environment: ModelServer.start(base_dir, helper_dir, **environment)


@pytest.fixture(scope="session")
def titanic_server(titanic_base_dir: Path, helper_dir: Path) -> Iterator[ModelServer]:
    server = ModelServer.start(titanic_base_dir, helper_dir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def batch_transform_server(titanic_base_dir: Path, helper_dir: Path) -> Iterator[ModelServer]:
    """`serve` as a batch transform job runs it: SAGEMAKER_BATCH set, MaxPayloadInMB 0 (chunked bodies)."""
    server = ModelServer.start(
        titanic_base_dir,
        helper_dir,
        SAGEMAKER_BATCH="true",
        SAGEMAKER_BATCH_STRATEGY="MULTI_RECORD",
        SAGEMAKER_MAX_PAYLOAD_IN_MB="0",
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
