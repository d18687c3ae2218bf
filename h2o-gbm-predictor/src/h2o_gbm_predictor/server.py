"""`serve`: the SageMaker model server process (gunicorn master, one ASGI worker per CPU by default).

SageMaker starts the container as `docker run <image> serve`. Each worker starts its own JVM after the fork
(a JVM started before fork hangs the workers); the master only compiles the Java helper once so the workers
do not race to do it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, ClassVar

import uvicorn_worker  # type: ignore[import-untyped]  # no stubs; the top-level mypy overrides do not list it
from gunicorn.app.base import BaseApplication

from h2o_gbm_predictor.app import ModelServerApp
from h2o_gbm_predictor.environment import Environment, InvalidEnvironment
from h2o_gbm_predictor.metadata import ModelMetadataError, load_metadata
from h2o_gbm_predictor.scorer import ScorerError, ensure_helper_compiled

logger = logging.getLogger("h2o_gbm_predictor")


class UvicornWorker(uvicorn_worker.UvicornWorker):
    """uvicorn's gunicorn worker with this server's uvicorn settings.

    uvloop and httptools named rather than "auto", so a missing one fails loudly instead of falling back to the
    pure-Python loop or parser. No access log (it is already off: gunicorn's accesslog is None, leaving uvicorn's
    logger without handlers). No X-Forwarded-* rewriting (the app reads neither the client address nor the
    scheme) and no "server: uvicorn" header: one middleware layer and one header fewer per response. Measured
    together on 1-row requests (workers' CPU per request, medians of 3 paired runs; small against the
    runs' noise): serve 39.5 -> 34.7 us, the no-op app 29.8 -> 27.7 us.
    """

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }


GRACEFUL_STOP_SECONDS = 25


class GunicornServer(BaseApplication):
    def __init__(self, environment: Environment) -> None:
        self._environment = environment
        super().__init__()

    def load_config(self) -> None:
        settings: dict[str, Any] = {
            "bind": f"{self._environment.bind_host}:{self._environment.port}",
            "workers": self._environment.workers,
            "worker_class": "h2o_gbm_predictor.server.UvicornWorker",
            "timeout": self._environment.timeout_seconds,
            # SageMaker sends SIGKILL 30 s after SIGTERM: workers finish their requests within 25 s, so the server
            # exits on its own first (your-algorithms-inference-code.html).
            "graceful_timeout": GRACEFUL_STOP_SECONDS,
            # SageMaker reuses connections; a short keep-alive would make clients reconnect all the time.
            "keepalive": 75,
            "accesslog": None,
            # Several servers may run on one machine (tests, the local pipeline): no shared control socket.
            "control_socket_disable": True,
            "loglevel": "info",
        }
        for name, value in settings.items():
            self.cfg.set(name, value)

    def load(self) -> ModelServerApp:
        return ModelServerApp(self._environment)


def _compile_helper_once(environment: Environment) -> None:
    try:
        metadata = load_metadata(environment.model_dir)
        ensure_helper_compiled(environment.helper_dir, metadata.genmodel_jar_path)
    except (ModelMetadataError, ScorerError) as error:
        # The workers report the same error on /ping; the server still starts so SageMaker sees it there.
        logger.error("model not loadable: %s", error)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="serve",
        description="Serve the H2O MOJO under $SAGEMAKER_BASE_DIR/model (default /opt/ml/model) on GET /ping and POST /invocations.",
    ).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
    )
    try:
        environment = Environment.from_env()
    except InvalidEnvironment as error:
        logger.error("%s", error)
        return 2
    _compile_helper_once(environment)
    GunicornServer(environment).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
