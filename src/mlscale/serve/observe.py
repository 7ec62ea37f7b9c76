"""Per-request observability as plain ASGI middleware: Prometheus metrics and an access log line.

Handlers say which model answered by setting ``request.state.model`` / ``version`` / ``rows``; the
middleware times every request, whatever route or error, so failures are counted too.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mlscale.serve.metrics import UNKNOWN, ServerMetrics, access_log_line

access_log = logging.getLogger("mlscale.access")
_MODEL_PATHS = ("/v1/models/", "/v2/models/")


class Observe:
    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            seconds = time.perf_counter() - started
            state = scope.get("state") or {}
            model, version = state.get("model", UNKNOWN), state.get("version", UNKNOWN)
            path = scope["path"]
            if path.startswith(_MODEL_PATHS) and scope["method"] == "POST":
                self.metrics.observe_request(
                    model, str(version), status, seconds, state.get("rows", 0)
                )
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    access_log_line(
                        scope["method"],
                        path,
                        status,
                        seconds * 1e3,
                        state.get("request_id", ""),
                        model=state.get("model"),
                        version=state.get("version"),
                        rows=state.get("rows"),
                    )
                )
