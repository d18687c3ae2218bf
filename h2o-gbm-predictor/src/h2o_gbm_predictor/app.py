"""The SageMaker hosting contract as a bare ASGI app: GET /ping and POST /invocations.

Bare ASGI (no framework routing or middleware) because per-request overhead decides the 1-row throughput.
Each worker loads the model during ASGI startup, before it accepts connections; /ping and /invocations
answer 503 (with the reason) when loading failed or has not happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from h2o_gbm_predictor.environment import Environment
from h2o_gbm_predictor.formats import (
    RequestDecoder,
    RequestError,
    ResponseEncoder,
    accept_of,
    content_type_of,
)
from h2o_gbm_predictor.metadata import ModelMetadataError, load_metadata
from h2o_gbm_predictor.scorer import InvalidCell, Scorer, ScorerError, ensure_helper_compiled

logger = logging.getLogger("h2o_gbm_predictor")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class LoadedModel:
    decoder: RequestDecoder
    encoder: ResponseEncoder
    scorer: Scorer


def load_model(environment: Environment) -> LoadedModel:
    metadata = load_metadata(environment.model_dir)
    helper_classes = ensure_helper_compiled(environment.helper_dir, metadata.genmodel_jar_path)
    scorer = Scorer(metadata, helper_classes, environment.jvm_heap)
    return LoadedModel(decoder=RequestDecoder(metadata), encoder=ResponseEncoder(metadata), scorer=scorer)


class ModelServerApp:
    def __init__(self, environment: Environment) -> None:
        self._environment = environment
        self._model: LoadedModel | None = None
        self._not_ready = RequestError(503, "model is loading")

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self._model = load_model(self._environment)
        except (ModelMetadataError, ScorerError) as error:
            self._not_ready = RequestError(503, f"model not loaded: {error}")
            logger.error("model not loaded: %s", error)
            return
        logger.info(
            "model from %s ready in %.2f s", self._environment.model_dir, time.perf_counter() - started
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            try:
                status, headers, body = await self._respond(scope, receive)
            except RequestError as error:
                status, headers, body = error.status, JSON_HEADERS, error.body()
            except Exception:
                # A bug, not bad input: log it whole, answer JSON without the traceback.
                logger.exception("unexpected error on %s %s", scope["method"], scope["path"])
                status, headers, body = (
                    500,
                    JSON_HEADERS,
                    orjson.dumps({"error": "internal server error", "row": None}),
                )
            headers = [*headers, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # The worker accepts connections only after startup, so no request meets a half-loaded
                # worker while another worker already answers /ping. A failed load still completes startup:
                # the worker stays up and answers 503 with the reason instead of being restarted in a loop.
                await asyncio.get_running_loop().run_in_executor(None, self._load)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _respond(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path, method = scope["path"], scope["method"]
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                raise RequestError(405, "use GET /ping")
            if self._model is None:
                raise self._not_ready
            return 200, JSON_HEADERS, b'{"status": "ready"}'
        if path != "/invocations":
            raise RequestError(404, f"no route {path}; use GET /ping or POST /invocations")
        if method != "POST":
            raise RequestError(405, "use POST /invocations")
        model = self._model
        if model is None:
            raise self._not_ready
        headers = dict(scope["headers"])
        content_type = content_type_of(_header(headers, b"content-type"))
        accept = accept_of(_header(headers, b"accept"), self._environment.default_accept)
        body = await self._read_body(headers, receive)
        cells = model.decoder.decode(content_type, body)
        try:
            batch = model.scorer.score(cells.text, cells.row_count)
        except InvalidCell as error:
            raise RequestError(400, str(error), error.row + 1) from None
        return 200, [(b"content-type", accept.encode())], model.encoder.encode(accept, batch)

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        limit = self._environment.max_payload_bytes
        too_large = RequestError(413, f"request body is over the {limit // (1024 * 1024)} MB limit")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None
