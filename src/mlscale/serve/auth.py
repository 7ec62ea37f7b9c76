"""API token authentication for the model server, as plain ASGI middleware.

A request names its token in ``Authorization: Bearer <token>`` (or ``X-API-Key: <token>``). Paths
need a role: the health probes in :data:`PUBLIC_PATHS` none; the rest of ``/v1``, ``/v2`` and
``/healthz`` (predict, infer, model metadata) ``predict`` or ``admin``; everything else,
``/metrics`` included, ``admin``.

With ``required=False`` (a server on a loopback address) a request without a token passes, but a
token that is sent is still checked, roles included, so a client meets the same answers locally as
in production.

Successful verifications are cached in process for ``cache_seconds`` (10 s), keyed by the secret's
SHA-256, so the hot path does not query the metadata database: a revoked token therefore keeps
working for up to that long in each server process that has just seen it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from mlscale.store.records import TokenRecord

logger = logging.getLogger("mlscale.serve.auth")

#: Health probes answer without a token, so load balancers and orchestrators need none.
PUBLIC_PATHS = frozenset({"/healthz", "/v2/health/live", "/v2/health/ready"})
CACHE_SECONDS = 10.0
_PREDICT_ROOTS = ("/v1", "/v2", "/healthz", "/openapi.json")
# Enough for every token of a deployment; past it, expired entries go, then all of them.
_CACHE_MAX = 4096
_MISSING = (
    "missing API token: send 'Authorization: Bearer <token>' or 'X-API-Key: <token>' "
    "(create one with: mlscale tokens create NAME --role predict)"
)


@functools.lru_cache(maxsize=4096)  # a server sees few distinct paths; this is per request
def required_role(path: str) -> str | None:
    """The least role ``path`` needs: ``None`` (public), ``"predict"`` or ``"admin"``.

    >>> required_role("/v1/models/loans@production/predict")
    'predict'
    >>> required_role("/metrics")
    'admin'
    >>> required_role("/healthz") is None
    True
    """
    if path in PUBLIC_PATHS:
        return None
    # A segment starting with "." ("..", "./") or an empty one is never a real route here; such
    # a path gets the strictest rule rather than a guess at how something downstream resolves it.
    if "/." in path or "//" in path:
        return "admin"
    if any(path == root or path.startswith(root + "/") for root in _PREDICT_ROOTS):
        return "predict"
    return "admin"


class TokenAuth:
    """ASGI middleware: check the request's API token and the role its path needs.

    ``verify`` maps a secret to its active token or None (``store.verify_token``); it is called
    in a worker thread, and only when the cache has no live entry for the secret. Denials are
    JSON ``{"error": ...}``: 401 (no or bad token, with ``WWW-Authenticate: Bearer``), 403 (a
    role too weak for the path), 503 (``verify`` failed). Handlers find the caller's
    :class:`TokenRecord` in ``request.state.token``.
    """

    def __init__(
        self,
        app: Any,
        verify: Callable[[str], TokenRecord | None],
        *,
        required: bool,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.verify = verify
        self.required = required
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[bytes, tuple[float, TokenRecord]] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        needs = required_role(scope["path"])
        secret = _secret(scope["headers"]) if needs is not None else None
        if secret is None:
            if needs is None or not self.required:
                await self.app(scope, receive, send)
            else:
                await _deny(scope, send, 401, _MISSING, "Bearer")
            return
        try:
            token = await self._verify(secret)
        except Exception:
            logger.exception("cannot verify an API token")
            await _deny(scope, send, 503, "cannot verify the API token now; try again", None)
            return
        if token is None:
            message = "invalid or revoked API token"
            await _deny(scope, send, 401, message, 'Bearer error="invalid_token"')
            return
        if needs == "admin" and token.role != "admin":
            message = f"token {token.name!r} has role {token.role!r}; {scope['path']} needs 'admin'"
            await _deny(scope, send, 403, message, 'Bearer error="insufficient_scope"')
            return
        scope.setdefault("state", {})["token"] = token
        await self.app(scope, receive, send)

    async def _verify(self, secret: str) -> TokenRecord | None:
        key = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        token = await run_in_threadpool(self.verify, secret)
        if token is None:
            # Failures are not cached: a flood of bad tokens must not fill memory.
            self._cache.pop(key, None)
            return None
        now = self.clock()
        if len(self._cache) >= _CACHE_MAX:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
        self._cache[key] = (now + self.cache_seconds, token)
        return token


def _secret(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token a request sends: ``Authorization: Bearer`` first, then ``X-API-Key``.

    An empty value counts as a (bad) token, so a client whose token variable is unset hears so.
    Another ``Authorization`` scheme (Basic, say) is not ours and is ignored.
    """
    api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer":
                return rest.strip()
        elif name == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1").strip()
    return api_key


async def _deny(scope: dict, send: Any, status: int, message: str, challenge: str | None) -> None:
    if scope["type"] == "websocket":
        # Closing before the handshake is accepted makes the server answer 403.
        await send({"type": "websocket.close", "code": 1008, "reason": message})
        return
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if challenge is not None:
        headers.append((b"www-authenticate", challenge.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
