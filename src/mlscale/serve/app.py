"""The HTTP API: ``POST /v1/models/{name}@{version|alias}/predict`` and ``GET /healthz``.

A thin edge: parse JSON, call the :class:`Predictor`, format the answer. Every user error becomes
a 4xx with ``{"error": ...}``; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlscale.dashboard import dashboard_routes
from mlscale.errors import MlscaleError, SchemaError, UserError
from mlscale.models.predictor import Prediction, Predictor
from mlscale.refs import cached_ref
from mlscale.serve.auth import TokenAuth
from mlscale.serve.batching import Overloaded
from mlscale.serve.labels import labels_route
from mlscale.serve.log_columns import PredictionColumns, RecordColumns
from mlscale.serve.metrics import ServerMetrics
from mlscale.serve.models import ServedModels
from mlscale.serve.observe import Observe
from mlscale.serve.openapi import openapi_document
from mlscale.serve.predlog import PredictionLog
from mlscale.serve.rest import RestPredict
from mlscale.serve.routing import Rule, ShadowQueue
from mlscale.serve.v2 import v2_routes

log = logging.getLogger("mlscale.serve")
FLUSH_SLICE = 64  # prediction-log appends turned into Arrow at a time (~0.3 ms) on the loop
THREADPOOL_ROWS = 1_000  # bigger requests predict off the event loop
UNSEEN_POLICIES = ("unknown", "reject")


class AnswerCache:
    """The answers to recent identical requests (same model version, same body bytes)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, bytes], Prediction] = OrderedDict()

    def get(self, key: tuple[str, int, bytes]) -> Prediction | None:
        if not self.size:
            return None
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: tuple[str, int, bytes], value: Prediction) -> None:
        if self.size:
            self._items[key] = value
            if len(self._items) > self.size:
                self._items.popitem(last=False)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(
    models: ServedModels,
    *,
    metrics: ServerMetrics | None = None,
    prediction_log: PredictionLog | None = None,
    log_predictions: bool = True,
    metrics_dir: str | None = None,
    unseen: str = "unknown",
    cache_size: int = 0,
    rules: dict[str, Rule] | None = None,
    require_token: bool = False,
) -> Starlette:
    """The ASGI app serving ``models``: metrics at ``/metrics``, every prediction logged to
    ``.mlscale/predictions`` in the workspace (append-only Arrow segments) unless disabled.

    ``unseen``: a category the model never saw is ``"unknown"`` (treated like a missing value, as
    the model learned to) or ``"reject"`` (a 422 naming it). ``cache_size`` > 0 keeps the answers
    to that many recent distinct request bodies (an LRU cache; a new version never sees old ones).
    ``rules`` route canary and shadow traffic (:mod:`mlscale.serve.routing`).
    ``require_token``: every request but health checks needs an API token (``mlscale tokens``);
    a token that is sent is always checked, required or not.
    """
    if unseen not in UNSEEN_POLICIES:
        raise UserError(
            f"unknown unseen-category policy {unseen!r}; expected one of {UNSEEN_POLICIES}"
        )
    # With several workers, each shares its numbers in metrics_dir so any scrape sees them all.
    metrics = metrics or ServerMetrics(Path(metrics_dir) if metrics_dir else None)
    cache = AnswerCache(cache_size)
    rules = rules or {}
    shadows = ShadowQueue()
    flush_on_loop = prediction_log is None and log_predictions
    if flush_on_loop:
        folder = models.ws.root / ".mlscale" / "predictions"
        prediction_log = PredictionLog(folder, background=False)

    async def flush_every_second(log_: PredictionLog) -> None:
        # Arrow batches are built on the event loop (a writer thread doing that would hold the
        # GIL against every request: a convoy); the write and fsync, which wait on the disk
        # without the GIL, go to a thread so the loop never waits for the disk.
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(log_.flush_interval_s)
            try:
                # What is pending now, not what arrives meanwhile (under steady traffic such a
                # flush never ends, writing and fsyncing a few rows at a time); built in small
                # slices with requests served in between, so none waits long; one write.
                batches = []
                for _ in range(-(-log_.pending_entries() // FLUSH_SLICE)):
                    batches.extend(log_.take_batches(max_entries=FLUSH_SLICE))
                    await asyncio.sleep(0)
                await loop.run_in_executor(None, log_.write_batches, batches)
            except Exception:
                log.exception("prediction log: flush failed; will retry")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        flusher = None
        if flush_on_loop and prediction_log is not None:
            flusher = asyncio.get_running_loop().create_task(flush_every_second(prediction_log))
        yield
        if flusher is not None:
            flusher.cancel()
        models.close()
        metrics.close()
        if prediction_log is not None:
            prediction_log.close()  # flush what is buffered before the process ends

    async def openapi(request: Request) -> JSONResponse:
        refs = {}
        for name in models.names:
            for version in models.ws.metadata.list_model_versions(name):
                for alias in version.aliases:
                    refs[f"{name}@{alias}"] = models.get(f"{name}@{alias}")
        return JSONResponse(openapi_document(refs, _package_version()))

    async def metrics_page(request: Request) -> Response:
        body, content_type = metrics.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    async def healthz(request: Request) -> JSONResponse:
        body = {"status": "ok", "models": models.names, "loaded": models.loaded()}
        if models.errors:
            body["errors"] = dict(models.errors)
        return JSONResponse(body)

    async def list_models(request: Request) -> JSONResponse:
        return JSONResponse({"models": models.names})

    async def predict(ref: str, body: bytes, headers: dict[bytes, bytes], state: dict) -> bytes:
        """The REST predict route's work (:class:`RestPredict` does the HTTP around it)."""
        started = time.perf_counter()
        request_id = state["request_id"]
        rule = rules.get(str(cached_ref(ref))) if rules else None
        if rule is not None:
            key = headers.get(b"x-routing-key")
            predictor = models.get(rule.pick(key.decode("latin-1") if key is not None else None))
        else:
            predictor = models.get(ref)
        version = predictor.version
        state["model"], state["version"] = version.name, version.version
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UserError(f"request body is not valid JSON: {exc}") from None
        rows, columnar = _inputs(payload)
        cache_key = (version.name, version.version, body)
        result = cache.get(cache_key)
        if result is None:
            result = await _predict(predictor, rows, columnar)
            cache.put(cache_key, result)
        state["rows"] = len(result.predictions)
        if rule is not None and rule.shadow is not None:
            shadows.offer((rule.shadow, rows, columnar, request_id), shadow_predict)
        record(predictor, request_id, rows, columnar, result, started)
        return orjson.dumps(
            _output(predictor, result, request_id), option=orjson.OPT_SERIALIZE_NUMPY
        )

    async def shadow_predict(ref: str, rows: Any, columnar: bool, request_id: str) -> None:
        started = time.perf_counter()
        predictor = models.get(ref)
        result = await _predict(predictor, rows, columnar)
        # Logged with the request id of the answer it shadows, so the two pair up.
        record(predictor, request_id, rows, columnar, result, started)

    def record(
        predictor: Predictor,
        request_id: str,
        rows: Any,
        columnar: bool,
        result: Prediction,
        started: float,
    ) -> None:
        """Append one answered request to the prediction log (a no-op when it is off)."""
        if prediction_log is None:
            return
        names = predictor.encoder.names
        version = predictor.version
        prediction_log.append(
            version.name,
            version.version,
            request_id,
            rows if columnar else RecordColumns(rows, names),
            PredictionColumns(result.predictions, result.probabilities, result.classes),
            (time.perf_counter() - started) * 1e3,
        )

    async def _predict(predictor: Predictor, rows: Any, columnar: bool) -> Prediction:
        encoder = predictor.encoder
        if columnar:
            X = encoder.encode_table(encoder.table_from_columns(rows))
        else:
            X = encoder.encode_records(rows)
        _check_values(predictor, rows, columnar, X, unseen)
        if len(X) > THREADPOOL_ROWS:  # a big batch is a batch already: predict it off the loop
            return await run_in_threadpool(predictor.predict_matrix, X)
        batcher = models.batcher(predictor)
        metrics.set_queue_depth(predictor.version.name, batcher.depth)
        return await batcher.predict(X)

    async def predict_columns(predictor: Predictor, columns: dict[str, list[Any]]) -> Prediction:
        return await _predict(predictor, columns, True)

    def record_columns(
        predictor: Predictor,
        request_id: str,
        columns: dict[str, list[Any]],
        result: Prediction,
        started: float,
    ) -> None:
        record(predictor, request_id, columns, True, result, started)

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

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/v1/models", list_models, methods=["GET"]),
            # POST is answered by RestPredict before routing; other methods get their 405 here.
            Route("/v1/models/{ref}/predict", _not_allowed, methods=["POST"]),
            labels_route(models.ws),
            *v2_routes(models, predict=predict_columns, record=record_columns),
            *dashboard_routes(models.ws, metrics),  # admin-only when tokens are required
        ],
        exception_handlers={
            MlscaleError: on_mlscale_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
        lifespan=lifespan,
    )
    app.add_middleware(RestPredict, handle=predict)
    app.add_middleware(TokenAuth, verify=models.ws.metadata.verify_token, required=require_token)
    app.add_middleware(Observe, metrics=metrics)  # outermost: refused requests are counted too
    return app


async def _not_allowed(request: Request) -> Response:  # pragma: no cover - never routed to
    raise HTTPException(405)


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


def _package_version() -> str:
    from importlib.metadata import version

    return version("mlscale")


def _check_values(
    predictor: Predictor, rows: Any, columnar: bool, X: np.ndarray, unseen: str
) -> None:
    """Infinite numbers are always refused; unseen categories when the policy says so."""
    if np.isinf(X).any():
        i, j = (int(k[0]) for k in np.nonzero(np.isinf(X)))
        name = predictor.signature.features[j].name
        raise SchemaError(f"row {i}, feature {name!r}: expected a finite number, found {X[i, j]}")
    if unseen != "reject":
        return
    for j, feature in enumerate(predictor.signature.features):
        if feature.kind != "categorical":
            continue
        for i in np.flatnonzero(np.isnan(X[:, j])):
            value = rows[feature.name][i] if columnar else rows[i][feature.name]
            if value is not None:
                known = ", ".join(feature.categories[:10])
                more = " ..." if len(feature.categories) > 10 else ""
                raise SchemaError(
                    f"row {i}, feature {feature.name!r}: {value!r} was not seen in training "
                    f"(known: {known}{more})"
                )


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
