"""Every setting of the server, read from environment variables in one place (SageMaker hosting habits)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = "SAGEMAKER_BASE_DIR"
BIND_TO_PORT = "SAGEMAKER_BIND_TO_PORT"
MODEL_SERVER_WORKERS = "SAGEMAKER_MODEL_SERVER_WORKERS"
MODEL_SERVER_TIMEOUT = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
MAX_PAYLOAD_IN_MB = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
DEFAULT_ACCEPT = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
BIND_HOST = "H2O_GBM_PREDICTOR_BIND_HOST"
JVM_HEAP = "H2O_GBM_PREDICTOR_JVM_HEAP"
HELPER_DIR = "H2O_GBM_PREDICTOR_HELPER_DIR"

SUPPORTED_ACCEPTS = ("application/json", "application/jsonlines", "text/csv")


class InvalidEnvironment(ValueError):
    """An environment variable holds a value the server cannot use."""


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidEnvironment(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise InvalidEnvironment(f"{name} must be a positive integer, got {raw!r}")
    return value


def _default_helper_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "h2o-gbm-predictor"


@dataclass(frozen=True)
class Environment:
    base_dir: Path
    port: int
    bind_host: str
    workers: int
    timeout_seconds: int
    max_payload_bytes: int
    default_accept: str
    jvm_heap: str
    helper_dir: Path

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Environment:
        default_accept = environ.get(DEFAULT_ACCEPT, "application/json").strip()
        if default_accept not in SUPPORTED_ACCEPTS:
            raise InvalidEnvironment(
                f"{DEFAULT_ACCEPT} must be one of {', '.join(SUPPORTED_ACCEPTS)}, got {default_accept!r}"
            )
        jvm_heap = environ.get(JVM_HEAP, "512m").strip()
        if not jvm_heap[:-1].isdigit() or jvm_heap[-1].lower() not in "kmg":
            raise InvalidEnvironment(f"{JVM_HEAP} must look like 512m or 2g, got {jvm_heap!r}")
        return cls(
            base_dir=Path(environ.get(BASE_DIR, "/opt/ml")),
            port=_positive_int(environ, BIND_TO_PORT, 8080),
            bind_host=environ.get(BIND_HOST, "0.0.0.0"),
            workers=_positive_int(environ, MODEL_SERVER_WORKERS, os.cpu_count() or 1),
            timeout_seconds=_positive_int(environ, MODEL_SERVER_TIMEOUT, 60),
            max_payload_bytes=_positive_int(environ, MAX_PAYLOAD_IN_MB, 6) * 1024 * 1024,
            default_accept=default_accept,
            jvm_heap=jvm_heap,
            helper_dir=Path(environ[HELPER_DIR]) if environ.get(HELPER_DIR) else _default_helper_dir(),
        )
