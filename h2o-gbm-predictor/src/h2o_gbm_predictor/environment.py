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
BATCH = "SAGEMAKER_BATCH"
DEFAULT_ACCEPT = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
BIND_HOST = "H2O_GBM_PREDICTOR_BIND_HOST"
JVM_HEAP = "H2O_GBM_PREDICTOR_JVM_HEAP"
HELPER_DIR = "H2O_GBM_PREDICTOR_HELPER_DIR"
CONTRIBUTIONS = "H2O_GBM_PREDICTOR_CONTRIBUTIONS"

SUPPORTED_ACCEPTS = ("application/json", "application/jsonlines", "text/csv")


class InvalidEnvironment(ValueError):
    """An environment variable holds a value the server cannot use."""


def _int_at_least(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    wanted = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    try:
        value = int(raw)
    except ValueError:
        raise InvalidEnvironment(f"{name} must be {wanted}, got {raw!r}") from None
    if value < minimum:
        raise InvalidEnvironment(f"{name} must be {wanted}, got {raw!r}")
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
    max_payload_mb: int
    batch: bool
    default_accept: str
    jvm_heap: str
    helper_dir: Path
    contributions: (
        bool  # every request's rows get their contributions unless its CustomAttributes say otherwise
    )

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @property
    def max_payload_bytes(self) -> int | None:
        """The largest request body, or None for no limit (batch transform's MaxPayloadInMB 0: chunked bodies)."""
        return self.max_payload_mb * 1024 * 1024 or None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Environment:
        default_accept = environ.get(DEFAULT_ACCEPT, "application/json").strip()
        if default_accept not in SUPPORTED_ACCEPTS:
            raise InvalidEnvironment(
                f"{DEFAULT_ACCEPT} must be one of {', '.join(SUPPORTED_ACCEPTS)}, got {default_accept!r}"
            )
        contributions = environ.get(CONTRIBUTIONS, "false").strip().lower()
        if contributions not in ("true", "false"):
            raise InvalidEnvironment(f"{CONTRIBUTIONS} must be true or false, got {contributions!r}")
        jvm_heap = environ.get(JVM_HEAP, "512m").strip()
        if not jvm_heap[:-1].isdigit() or jvm_heap[-1].lower() not in "kmg":
            raise InvalidEnvironment(f"{JVM_HEAP} must look like 512m or 2g, got {jvm_heap!r}")
        return cls(
            base_dir=Path(environ.get(BASE_DIR, "/opt/ml")),
            port=_int_at_least(environ, BIND_TO_PORT, 8080),
            bind_host=environ.get(BIND_HOST, "0.0.0.0"),
            workers=_int_at_least(environ, MODEL_SERVER_WORKERS, os.cpu_count() or 1),
            timeout_seconds=_int_at_least(environ, MODEL_SERVER_TIMEOUT, 60),
            max_payload_mb=_int_at_least(environ, MAX_PAYLOAD_IN_MB, 6, minimum=0),
            # SageMaker sets it to "true" in batch transform; its SDK's local mode sets "True".
            batch=environ.get(BATCH, "").strip().lower() == "true",
            default_accept=default_accept,
            jvm_heap=jvm_heap,
            helper_dir=Path(environ[HELPER_DIR]) if environ.get(HELPER_DIR) else _default_helper_dir(),
            contributions=contributions == "true",
        )
