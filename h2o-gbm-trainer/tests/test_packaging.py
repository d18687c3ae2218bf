"""The package pins its dependencies and the Dockerfile says what the image is made of (tests/images builds and runs
it)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def test_h2o_is_pinned_to_the_release_that_exports_mojos_and_installed_as_pinned() -> None:
    project = tomllib.loads((PACKAGE_DIR / "pyproject.toml").read_text())["project"]

    assert "h2o==3.46.0.11" in project["dependencies"]
    assert version("h2o") == "3.46.0.11"
    assert project["scripts"] == {
        "train": "h2o_gbm_trainer.cli:main",
        "evaluate": "h2o_gbm_trainer.evaluation:main",  # the quality gate's Processing job
    }


def test_every_dependency_is_pinned_exactly() -> None:
    project = tomllib.loads((PACKAGE_DIR / "pyproject.toml").read_text())["project"]

    assert all(
        re.fullmatch(r"[a-z0-9_.\[\]-]+==[0-9.]+", requirement) for requirement in project["dependencies"]
    )


def test_the_image_is_debian_bookworm_with_java_17_and_unbuffered_output() -> None:
    dockerfile = (PACKAGE_DIR / "Dockerfile").read_text()

    # The base a registry-less CI makes from Debian's archive under the same name (scripts/base-image.sh).
    assert re.search(r"^ARG BASE_IMAGE=debian:bookworm-slim$", dockerfile, flags=re.MULTILINE)
    assert re.findall(r"^FROM .*$", dockerfile, flags=re.MULTILINE) == ["FROM ${BASE_IMAGE}"]
    assert "openjdk-17-jre-headless" in dockerfile
    assert "PYTHONUNBUFFERED=1" in dockerfile
    assert "RUN pip install . " in dockerfile
    # SageMaker runs `docker run <image> train`: an ENTRYPOINT would swallow that command.
    assert "ENTRYPOINT" not in dockerfile
