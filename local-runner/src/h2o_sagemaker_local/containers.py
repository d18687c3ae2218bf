"""Training jobs and endpoints in the built images (``--containers``), one container each, as SageMaker runs them.

A training job's container gets its ``/opt/ml`` mounted (its checkpoint folder at ``/opt/ml/checkpoints``), no
network when the job asks for network isolation, and runs ``train``. A job of several instances gets a network of
its own, on which each instance's container is reachable by its host name (``algo-1`` ...) as on SageMaker; an
internal one (no way out) when the job asks for network isolation, which on SageMaker still lets a job's instances
reach each other. an endpoint's container gets the model
mounted read-only at ``/opt/ml/model`` and port 8080 published on loopback, and runs ``serve``. The engine is
``CONTAINER_ENGINE`` when set, else docker when its engine answers, else podman (``scripts/container-engine.sh``
picks the same way for the builds).
The engine's client process stands for the container: its output is the container's, SIGTERM to it reaches the
container (``--sig-proxy``), and it ends when the container does; a kill removes the container itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TRAINER_IMAGE = "h2o-gbm-trainer:local"
PREDICTOR_IMAGE = "h2o-gbm-predictor:local"


class ContainersUnavailable(RuntimeError):
    """No engine, or the images are not built; the message says what to do."""


@dataclass(frozen=True)
class ContainerRuntime:
    engine: str
    trainer_image: str = TRAINER_IMAGE
    predictor_image: str = PREDICTOR_IMAGE
    environment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def detect(cls, containers_conf: Path) -> ContainerRuntime:
        """``CONTAINER_ENGINE`` when set (docker or podman), else docker when its engine answers, else podman (with
        ``containers_conf``, the settings the images were built with, when it exists); both images must be built
        (``make images``), as ``scripts/container-engine.sh`` picks the engine for the builds."""
        engine = os.environ.get("CONTAINER_ENGINE") or None
        if engine is not None:
            if engine not in ("docker", "podman"):
                raise ContainersUnavailable(f"CONTAINER_ENGINE={engine}: docker or podman")
            if not _answers(engine):
                raise ContainersUnavailable(
                    f"CONTAINER_ENGINE={engine}, but {engine} does not answer (`{engine} info`)"
                )
        elif _answers("docker"):
            engine = "docker"
        elif shutil.which("podman"):
            engine = "podman"
        else:
            raise ContainersUnavailable("--containers needs docker or podman: `make images` installs podman")
        environment = dict(os.environ)
        if engine == "podman" and containers_conf.is_file():
            environment.setdefault("CONTAINERS_CONF", str(containers_conf))
        runtime = cls(engine, environment=environment)
        for image in (runtime.trainer_image, runtime.predictor_image):
            if runtime.call("image", "inspect", image).returncode != 0:
                raise ContainersUnavailable(
                    f"image {image} is not built with {engine}: run `CONTAINER_ENGINE={engine} make images` first"
                )
        return runtime

    def call(self, *arguments: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.engine, *arguments], env=self.environment, capture_output=True, timeout=120
        )

    def train_command(
        self,
        name: str,
        base_dir: Path,
        checkpoint_dir: Path,
        network: str | None,
        environment: dict[str, str],
        host: str | None = None,
    ) -> list[str]:
        """``network``: the engine's default one when None, else its name ("none": no network). ``host``: the
        container's host name, by which the others on its network reach it."""
        settings = [item for key, value in environment.items() for item in ("-e", f"{key}={value}")]
        host_settings = ["--hostname", host, "--network-alias", host] if host else []
        return [
            self.engine, "run", "--rm", "--name", name, *(["--network", network] if network else []),
            *host_settings, "-v", f"{base_dir}:/opt/ml", "-v", f"{checkpoint_dir}:/opt/ml/checkpoints",
            *settings, self.trainer_image, "train",
        ]  # fmt: skip

    def create_network(self, name: str, internal: bool) -> None:
        """A bridge network whose containers resolve each other's names; ``internal``: none of them gets out."""
        self.remove_network(name)  # one left by a killed runner
        created = self.call("network", "create", *(["--internal"] if internal else []), name)
        if created.returncode != 0:
            raise ContainersUnavailable(
                f"{self.engine} network create {name} failed: {created.stderr.decode(errors='replace').strip()}"
            )

    def remove_network(self, name: str) -> None:
        self.call("network", "rm", "-f", name)

    def serve_command(self, name: str, model_dir: Path, port: int, environment: dict[str, str]) -> list[str]:
        settings = [item for key, value in environment.items() for item in ("-e", f"{key}={value}")]
        return [
            self.engine, "run", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8080",
            "-v", f"{model_dir}:/opt/ml/model:ro", *settings, self.predictor_image, "serve",
        ]  # fmt: skip

    def remove(self, name: str) -> None:
        """The container ends at once (SIGKILL), as when its instance goes; no error if it is already gone."""
        self.call("rm", "-f", name)


def _answers(engine: str) -> bool:
    return (
        shutil.which(engine) is not None
        and subprocess.run([engine, "info"], capture_output=True).returncode == 0
    )


def container_name(kind: str, name: str) -> str:
    return f"h2o-local-{kind}-{name}"[:128]
