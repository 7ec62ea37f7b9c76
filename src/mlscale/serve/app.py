"""The HTTP API: ``POST /v1/models/{name}@{version|alias}/predict`` and ``GET /healthz``.

A thin edge: parse JSON, call the :class:`Predictor`, format the answer. Every user error becomes
a 4xx with ``{"error": ...}``; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlscale.errors import MlscaleError, SchemaError, UserError
from mlscale.models.predictor import Prediction, Predictor
from mlscale.serve.batching import Overloaded
from mlscale.serve.models import ServedModels
from mlscale.serve.v2 import v2_routes

log = logging.getLogger("mlscale.serve")
MAX_BODY_BYTES = 16 << 20
THREADPOOL_ROWS = 1_000  # bigger requests predict off the event loop
REQUEST_TIMEOUT_S = 30.0


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(models: ServedModels) -> Starlette:
    """The ASGI app serving ``models``."""

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "models": models.names, "loaded": models.loaded()})

    async def list_models(request: Request) -> JSONResponse:
        return JSONResponse({"models": models.names})

    async def predict(request: Request) -> JSONResponse:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        predictor = models.get(request.path_params["ref"])
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return error(413, f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UserError(f"request body is not valid JSON: {exc}") from None
        rows, columnar = _inputs(payload)
        if columnar:
            X = predictor.encoder.encode_table(predictor.encoder.table_from_columns(rows))
        else:
            X = predictor.encoder.encode_records(rows)
        size = len(X)
        if size > THREADPOOL_ROWS:  # a big batch is a batch already: predict it off the loop
            result = await run_in_threadpool(predictor.predict_matrix, X)
        else:
            try:
                result = await asyncio.wait_for(
                    models.batcher(predictor).predict(X), timeout=REQUEST_TIMEOUT_S
                )
            except TimeoutError:
                return error(504, f"prediction took longer than {REQUEST_TIMEOUT_S:g}s")
        body_out = _output(predictor, result, request_id)
        log.info(
            "predict %s rows=%d ms=%.2f id=%s",
            predictor.version.ref,
            size,
            (time.perf_counter() - started) * 1e3,
            request_id,
        )
        return JSONResponse(body_out, headers={"x-request-id": request_id})

    async def on_mlscale_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MlscaleError)
        if isinstance(exc, Overloaded):
            response = error(503, str(exc))
            response.headers["retry-after"] = "1"
            return response
        if not isinstance(exc, UserError):
            log.exception("request failed", exc_info=exc)
        return error(exc.http_status, str(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, exc.detail)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return error(500, f"internal error: {type(exc).__name__}")

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{ref}/predict", predict, methods=["POST"]),
            *v2_routes(models),
        ],
        exception_handlers={
            MlscaleError: on_mlscale_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
    )


def _inputs(payload: Any) -> tuple[Any, bool]:
    """``{"rows": [{...}]}``, ``{"columns": {name: [...]}}`` or a bare list of rows."""
    if isinstance(payload, list):
        rows, columnar = payload, False
    elif isinstance(payload, dict) and ("rows" in payload) != ("columns" in payload):
        columnar = "columns" in payload
        rows = payload["columns" if columnar else "rows"]
    else:
        raise SchemaError(
            'expected {"rows": [{feature: value, ...}, ...]} or {"columns": {feature: [...]}}'
        )
    if columnar and not isinstance(rows, dict):
        raise SchemaError('"columns" must be an object mapping feature names to lists')
    if not columnar and not isinstance(rows, list):
        raise SchemaError('"rows" must be a list of objects')
    if not rows:
        raise SchemaError("no rows to predict")
    return rows, columnar


def _output(predictor: Predictor, result: Prediction, request_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": predictor.version.name,
        "version": predictor.version.version,
        "request_id": request_id,
        "predictions": result.predictions,
    }
    if result.probabilities is not None:
        out["classes"] = result.classes
        out["probabilities"] = result.probabilities
    return out
