"""The dashboard's web routes: HTML pages under ``/dashboard`` and their data as JSON.

``GET /dashboard`` (every model), ``GET /dashboard/models/{name}`` (one model), and the same
under ``/dashboard/api/...`` as JSON. Query: ``window`` (1h, 6h, 24h, 7d), ``version``, and
``refresh`` (seconds, 0 for none) for a page that reloads itself.

Predictions come first: a page is computed in a worker thread, never on the event loop, and
kept for :data:`CACHE_SECONDS`, with one computation at a time per page however many browsers
ask. The routes sit behind the server's token middleware: paths outside ``/v1`` and ``/v2``
need the ``admin`` role when tokens are required (:mod:`mlscale.serve.auth`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mlscale.dashboard.counts import CountsHistory, counts_from_files, counts_from_metrics
from mlscale.dashboard.data import DEFAULT_WINDOW, Collector, check_window
from mlscale.dashboard.page import render_error, render_model, render_overview
from mlscale.errors import MlscaleError, UserError

if TYPE_CHECKING:
    from mlscale.serve.metrics import ServerMetrics
    from mlscale.workspace import Workspace

CACHE_SECONDS = 5.0
DEFAULT_REFRESH_S = 60


class Dashboard:
    """Pages of one workspace, computed off the event loop and cached for ``cache_seconds``.

    ``metrics``: the live counters of the server it is mounted in; without them, the counters
    that multi-worker servers share in ``.mlscale/run`` are read.
    """

    def __init__(
        self,
        ws: Workspace,
        *,
        metrics: ServerMetrics | None = None,
        cache_seconds: float = CACHE_SECONDS,
        sample_counts: bool = True,
    ) -> None:
        if metrics is not None:
            read: Callable[[], dict[str, dict[int, int]]] = lambda: counts_from_metrics(metrics)  # noqa: E731
        else:
            run_dir = ws.root / ".mlscale" / "run"
            read = lambda: counts_from_files(run_dir)  # noqa: E731
        self.counts = CountsHistory(read, shared_files=metrics is None)
        if sample_counts:
            self.counts.sample()  # the baseline: error rates count from here
            self.counts.start()
        self.collector = Collector(ws, counts=self.counts)
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple, tuple[float, Any]] = {}
        self._pending: dict[tuple, asyncio.Future[Any]] = {}

    async def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()`` run in a thread, or its result of less than ``cache_seconds`` ago;
        callers asking while it runs wait for the same run."""
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        running = self._pending.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await run_in_threadpool(compute)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._pending[key]
        future.set_result(value)
        self._cache = {
            k: v for k, v in self._cache.items() if time.monotonic() - v[0] < self.cache_seconds
        }
        self._cache[key] = (time.monotonic(), value)
        return value

    # -- handlers --

    async def overview_page(self, request: Request) -> Response:
        try:
            window, refresh = _window(request), _refresh(request)
            html = await self.get(
                ("overview", window, refresh),
                lambda: render_overview(self.collector.overview(window=window), refresh=refresh),
            )
        except UserError as exc:  # a person reads this page: answer in HTML
            return _error_page(exc)
        return HTMLResponse(html)

    async def model_page(self, request: Request) -> Response:
        try:
            name, window, version, refresh = (
                request.path_params["name"], _window(request), _version(request),
                _refresh(request),
            )  # fmt: skip
            html = await self.get(
                ("model", name, window, version, refresh),
                lambda: render_model(
                    self.collector.model(name, version=version, window=window), refresh=refresh
                ),
            )
        except UserError as exc:
            return _error_page(exc)
        return HTMLResponse(html)

    async def overview_json(self, request: Request) -> Response:
        window = _window(request)
        data = await self.get(
            ("overview.json", window), lambda: self.collector.overview(window=window)
        )
        return _json(data)

    async def model_json(self, request: Request) -> Response:
        name, window, version = request.path_params["name"], _window(request), _version(request)
        data = await self.get(
            ("model.json", name, window, version),
            lambda: self.collector.model(name, version=version, window=window),
        )
        return _json(data)

    def routes(self) -> list[BaseRoute]:
        """The routes, to mount in an app (the model server's or the dashboard's own)."""

        async def to_overview(request: Request) -> Response:
            return RedirectResponse("/dashboard", status_code=307)

        return [
            Route("/dashboard", self.overview_page, methods=["GET"]),
            Route("/dashboard/", to_overview, methods=["GET"]),
            Route("/dashboard/models/{name}", self.model_page, methods=["GET"]),
            Route("/dashboard/api/overview", self.overview_json, methods=["GET"]),
            Route("/dashboard/api/models/{name}", self.model_json, methods=["GET"]),
        ]


def dashboard_routes(ws: Workspace, metrics: ServerMetrics | None = None) -> list[BaseRoute]:
    """The dashboard's routes for the model server (its live ``metrics`` give error rates)."""
    return Dashboard(ws, metrics=metrics).routes()


def create_dashboard_app(ws: Workspace, *, require_token: bool = False) -> Starlette:
    """A stand-alone app serving only the dashboard of ``ws`` (``mlscale dashboard``); with
    ``require_token``, an ``admin`` API token is needed (as on the model server)."""
    from mlscale.serve.auth import TokenAuth

    dashboard = Dashboard(ws)

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MlscaleError)
        return Response(
            orjson.dumps({"error": str(exc)}),
            status_code=exc.http_status,
            media_type="application/json",
        )

    async def root(request: Request) -> Response:
        return RedirectResponse("/dashboard", status_code=307)

    app = Starlette(
        routes=[Route("/", root, methods=["GET"]), *dashboard.routes()],
        exception_handlers={MlscaleError: on_error},
    )
    app.add_middleware(TokenAuth, verify=ws.metadata.verify_token, required=require_token)
    return app


# --- query parsing and JSON -------------------------------------------------------------------


def _window(request: Request) -> str:
    window = request.query_params.get("window", DEFAULT_WINDOW)
    check_window(window)
    return window


def _version(request: Request) -> int | None:
    text = request.query_params.get("version")
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise UserError(f"version must be a number, found {text!r}")
    return int(text)


def _refresh(request: Request) -> int | None:
    text = request.query_params.get("refresh", str(DEFAULT_REFRESH_S))
    if not text.isdigit():
        raise UserError(f"refresh must be a number of seconds, found {text!r}")
    return int(text) or None


def _error_page(exc: UserError) -> Response:
    return HTMLResponse(render_error(str(exc), status=exc.http_status), exc.http_status)


def _json(data: Any) -> Response:
    return Response(
        orjson.dumps(_plain(data), option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
    )


def _plain(value: Any) -> Any:
    """Dataclasses as dicts (properties of reports included), NaN as null, times as ISO."""
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value
