"""The `train` console script: what SageMaker runs (`docker run <image> train`) and what the local pipeline runs.

Exit codes: 0 success, 2 bad input (hyperparameters, channels, data), 1 anything else, including a stop by
SIGTERM (a spot interruption: the last checkpoint is kept). On failure the one-line reason goes to stderr and
to `<SAGEMAKER_BASE_DIR>/output/failure`, where SageMaker reads it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from . import interruption
from .environment import BASE_DIR_ENV, MAX_MEM_SIZE_ENV, Environment
from .errors import TrainingError, TrainingInputError
from .training import train

logger = logging.getLogger("h2o_gbm_trainer")

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
MAX_REASON_CHARS = 1000


def run_reporting_failure(job: Callable[[], object], failure_file: Path, what: str) -> int:
    """Run ``job``; on failure its one-line reason goes to stderr and to ``failure_file``, where SageMaker reads it
    (a training job's FailureReason, a processing job's ExitMessage: each keeps the first 1 KB)."""
    try:
        job()
    except TrainingInputError as error:
        return _fail(failure_file, what, str(error), EXIT_BAD_INPUT)
    except TrainingError as error:
        return _fail(failure_file, what, str(error), EXIT_FAILED)
    except Exception as error:
        logger.exception("unexpected error")
        return _fail(failure_file, what, f"unexpected error: {type(error).__name__}: {error}", EXIT_FAILED)
    return 0


def _fail(failure_file: Path, what: str, reason: str, exit_code: int) -> int:
    one_line = " ".join(reason.split())[:MAX_REASON_CHARS]
    print(f"{what} failed: {one_line}", file=sys.stderr, flush=True)
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file.write_text(one_line + "\n", encoding="utf-8")
    return exit_code


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="train",
        description=f"Train an H2O GBM under the SageMaker training contract rooted at ${BASE_DIR_ENV} "
        f"(default /opt/ml). JVM heap: ${MAX_MEM_SIZE_ENV} (e.g. 4G; default half of the memory).",
    ).parse_known_args(argv)  # SageMaker may pass its own arguments: only --help is ours.
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s [trainer] %(message)s"
    )
    signal.signal(signal.SIGTERM, interruption.on_sigterm)
    env = Environment.from_env()
    return run_reporting_failure(lambda: train(env), env.failure_file, "training")
