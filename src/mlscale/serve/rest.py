"""``POST /v1/models/{ref}/predict`` as plain ASGI, answered before Starlette's router.

The busiest route of the server skips the framework's per-request objects (routing, ``Request``,
``Response``, exception middleware): the body is read from ``receive``, the answer sent with two
``send`` calls. Every other method and path falls through to the wrapped app. Errors are answered
as everywhere else: ``{"error": ...}`` with the status of the :class:`MlscaleError`, a 503 with
``Retry-After`` when a model's queue is full, a 500 (logged) for anything unexpected.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from mlscale.errors import MlscaleError, UserError
from mlscale.serve.batching import Overloaded

log = logging.getLogger("mlscale.serve")

PREFIX = "/v1/models/"
SUFFIX = "/predict"
MAX_BODY_BYTES = 16 << 20

#: ``handle(ref, body, headers, state)`` -> the answer's JSON bytes; headers are lower-case names.
Handler = Callable[[str, bytes, dict[bytes, bytes], dict[str, Any]], Awaitable[bytes]]


class RequestIds:
    """Unique request ids without a system call per request: a random per-process prefix and a
    counter (os.urandom was ~15 us a call on this VM, a tenth of a request's budget)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def new(self) -> str:
        if self._pid != os.getpid():  # a forked worker must not repeat its parent's ids
            self._pid, self._prefix = os.getpid(), os.urandom(8).hex()
        return f"{self._prefix}{next(self._counter):016x}"


class RestPredict:
    """ASGI middleware sending REST predict requests to ``handle``, the rest to ``app``."""

    def __init__(self, app: Any, handle: Handler) -> None:
        self.app = app
        self.handle = handle

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        ref = _predict_ref(scope)
        if ref is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        state = scope.setdefault("state", {})
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or REQUEST_IDS.new()
        state["request_id"] = request_id
        extra: list[tuple[bytes, bytes]] = []
        try:
            body = await _read_body(receive, headers.get(b"content-length"))
            if body is None:
                return  # the client went away: nobody to answer
            status, answer = 200, await self.handle(ref, body, headers, state)
        except MlscaleError as exc:
            status, answer = exc.http_status, _error(str(exc))
            if isinstance(exc, Overloaded):
                extra.append((b"retry-after", b"1"))
            elif not isinstance(exc, UserError):
                log.exception("request failed", exc_info=exc)
        except Exception as exc:
            log.exception("unexpected error", exc_info=exc)
            status, answer = 500, _error(f"internal error: {type(exc).__name__}")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(answer)),
                    (b"x-request-id", request_id.encode("latin-1")),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


class BodyTooLarge(UserError):
    http_status = 413


REQUEST_IDS = RequestIds()


def _predict_ref(scope: dict) -> str | None:
    """The ``{ref}`` of a REST predict request, or None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    ref = path[len(PREFIX) : -len(SUFFIX)]
    return ref if ref and "/" not in ref else None


async def _read_body(receive: Any, declared: bytes | None) -> bytes | None:
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        # Refused before reading it: a huge body costs nothing but this answer.
        raise BodyTooLarge(
            f"request body is {declared.decode()} bytes; the limit is {MAX_BODY_BYTES}"
        )
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(f"request body is over the limit of {MAX_BODY_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _error(message: str) -> bytes:
    return orjson.dumps({"error": message})
