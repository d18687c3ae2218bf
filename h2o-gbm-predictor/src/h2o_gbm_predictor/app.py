"""The SageMaker hosting contract as a bare ASGI app: GET /ping, POST /invocations, and batch transform's
GET /execution-parameters.

Bare ASGI (no framework routing or middleware) because per-request overhead decides the 1-row throughput.
Each worker loads the model during ASGI startup, before it accepts connections; /ping and /invocations
answer 503 (with the reason) when loading failed or has not happened.

POST /invocations hands the body to Java in one call (RequestScorer: parse, score, write the response) and
answers with its bytes. What it hands back (every request error, and rare valid inputs such as JSON integers
of more than 18 digits) goes through the Python decoder and encoder (formats.py), which word every error
message, so both paths answer a request alike. So does a request whose rows get their feature contributions
(CustomAttributes contributions=true, or H2O_GBM_PREDICTOR_CONTRIBUTIONS): the Java path writes predictions
only. Content-Type and Accept values are negotiated once per distinct value.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from h2o_gbm_predictor.environment import CONTRIBUTIONS, Environment
from h2o_gbm_predictor.formats import (
    CUSTOM_ATTRIBUTES_HEADER,
    FORMAT_CODES,
    RequestDecoder,
    RequestError,
    ResponseEncoder,
    accept_of,
    content_type_of,
    contributions_asked,
)
from h2o_gbm_predictor.metadata import ModelMetadataError, load_metadata
from h2o_gbm_predictor.scorer import (
    InvalidCell,
    RequestScorer,
    Scorer,
    ScorerError,
    ensure_helper_compiled,
)

logger = logging.getLogger("h2o_gbm_predictor")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON_TYPE = b"application/json"
CUSTOM_ATTRIBUTES = CUSTOM_ATTRIBUTES_HEADER.lower().encode()
TEXT_TYPE = b"text/plain"
# Distinct Content-Type / Accept values remembered, each; clients choose them, so the memory is bounded.
NEGOTIATED_VALUES = 64


@dataclass(frozen=True)
class LoadedModel:
    decoder: RequestDecoder
    encoder: ResponseEncoder
    scorer: Scorer
    request_scorer: RequestScorer


def load_model(environment: Environment) -> LoadedModel:
    metadata = load_metadata(environment.model_dir)
    helper_classes = ensure_helper_compiled(environment.helper_dir, metadata.genmodel_jar_path)
    scorer = Scorer(metadata, helper_classes, environment.jvm_heap)
    if environment.contributions and not scorer.explainable:
        # Every request would be refused: better not ready, with the reason, than up and failing each one.
        raise ScorerError(
            f"{CONTRIBUTIONS} is true, but h2o-genmodel computes no contributions for multinomial models"
        )
    encoder = ResponseEncoder(metadata, csv_header=not environment.batch)
    return LoadedModel(
        decoder=RequestDecoder(metadata),
        encoder=encoder,
        scorer=scorer,
        request_scorer=scorer.request_scorer(metadata, encoder.fragments()),
    )


class ModelServerApp:
    def __init__(self, environment: Environment) -> None:
        self._environment = environment
        self._model: LoadedModel | None = None
        self._not_ready = RequestError(503, "model is loading")
        self._body_limit = environment.max_payload_bytes or math.inf  # batch transform's 0: no limit
        self._too_large = RequestError(413, f"request body is over the {environment.max_payload_mb} MB limit")
        self._execution_parameters = orjson.dumps(
            {
                # Each worker scores one request at a time.
                "MaxConcurrentTransforms": environment.workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": environment.max_payload_mb,
            }
        )
        # Content-Type header -> (media type, format code); Accept header -> (media type, format code, bytes)
        self._request_formats: dict[bytes | None, tuple[str, int]] = {}
        self._response_formats: dict[bytes | None, tuple[str, int, bytes]] = {}

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self._model = load_model(self._environment)
        except (ModelMetadataError, ScorerError) as error:
            self._not_ready = RequestError(503, f"model not loaded: {error}")
            logger.error("model not loaded: %s", error)
            return
        # JPype runs a full Python collection after each Java GC (to break cycles across the two heaps), so
        # every few MB of Java garbage (e.g. ~30 requests of 1000 rows) traversed every object in the process:
        # 4.7 ms each, 9% of in-process scoring time, 16% of a worker's time under 1000-row load (py-spy).
        # Frozen, the objects that live as long as the worker are no longer traversed: 0.01 ms each.
        gc.freeze()
        logger.info(
            "model from %s ready in %.2f s", self._environment.model_dir, time.perf_counter() - started
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        try:
            model = self._model
            if model is not None and scope["path"] == "/invocations" and scope["method"] == "POST":
                status = 200
                content_type, body = await self._invoke(model, scope["headers"], receive)
            else:
                status, content_type, body = self._respond(scope)
        except RequestError as error:
            status, content_type, body = error.status, JSON_TYPE, error.body()
        except Exception:
            # A bug, not bad input: log it whole, answer JSON without the traceback.
            logger.exception("unexpected error on %s %s", scope["method"], scope["path"])
            status, content_type, body = (
                500,
                JSON_TYPE,
                orjson.dumps({"error": "internal server error", "row": None}),
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
            }
        )
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

    def _respond(self, scope: Scope) -> tuple[int, bytes, bytes]:
        """Every request but a POST /invocations to a loaded model."""
        path, method = scope["path"], scope["method"]
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                raise RequestError(405, "use GET /ping")
            if self._model is None:
                raise self._not_ready
            return 200, TEXT_TYPE, b""  # "an HTTP 200 status code and an empty body", as SageMaker asks
        if path == "/execution-parameters":
            if method != "GET":
                raise RequestError(405, "use GET /execution-parameters")
            return 200, JSON_TYPE, self._execution_parameters
        if path != "/invocations":
            raise RequestError(
                404, f"no route {path}; use GET /ping, POST /invocations or GET /execution-parameters"
            )
        if method != "POST":
            raise RequestError(405, "use POST /invocations")
        raise self._not_ready

    async def _invoke(
        self, model: LoadedModel, headers: list[tuple[bytes, bytes]], receive: Receive
    ) -> tuple[bytes, bytes]:
        """POST /invocations: the response's Content-Type and body."""
        content_type = accept = declared_length = custom_attributes = None
        for name, value in headers:  # uvicorn gives lower-case names; the last of a repeated header wins
            if name == b"content-type":
                content_type = value
            elif name == b"accept":
                accept = value
            elif name == b"content-length":
                declared_length = value
            elif name == CUSTOM_ATTRIBUTES:
                custom_attributes = value
        request_format = self._request_formats.get(content_type)
        if request_format is None:
            media_type = content_type_of(_text(content_type))
            request_format = self._remember(
                self._request_formats, content_type, (media_type, FORMAT_CODES[media_type])
            )
        response_format = self._response_formats.get(accept)
        if response_format is None:
            media_type = accept_of(_text(accept), self._environment.default_accept)
            response_format = self._remember(
                self._response_formats, accept, (media_type, FORMAT_CODES[media_type], media_type.encode())
            )
        explain = self._explains(model, custom_attributes)
        body = await self._read_body(declared_length, receive)
        # The one-call Java path writes predictions only; contributions take the Python one.
        answer = None if explain else model.request_scorer.invoke(body, request_format[1], response_format[1])
        if answer is None:
            cells = model.decoder.decode(request_format[0], body)
            try:
                if explain:
                    batch = model.scorer.explain(cells.text, cells.row_count)
                else:
                    batch = model.scorer.score(cells.text, cells.row_count)
            except InvalidCell as error:
                raise RequestError(400, str(error), error.row + 1) from None
            answer = model.encoder.encode(response_format[0], batch)
        return response_format[2], answer

    def _explains(self, model: LoadedModel, custom_attributes: bytes | None) -> bool:
        """Whether the rows get their contributions: the request's CustomAttributes say, else the environment."""
        explain = self._environment.contributions
        if custom_attributes is not None:
            asked = contributions_asked(custom_attributes.decode("latin-1"))
            explain = explain if asked is None else asked
        if explain and not model.scorer.explainable:
            raise RequestError(
                400, "contributions are computed for binomial and regression models, not multinomial"
            )
        return explain

    @staticmethod
    def _remember(negotiated: dict[bytes | None, Any], header: bytes | None, value: Any) -> Any:
        if len(negotiated) < NEGOTIATED_VALUES:
            negotiated[header] = value
        return value

    async def _read_body(self, declared_length: bytes | None, receive: Receive) -> bytes:
        limit = self._body_limit
        if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
            raise self._too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large
            if not message.get("more_body", False):
                if not chunks:
                    return chunk
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)


def _text(header: bytes | None) -> str | None:
    return header.decode("latin-1") if header is not None else None
