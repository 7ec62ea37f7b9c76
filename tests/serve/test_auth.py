"""TokenAuth in front of a tiny Starlette app, with a real metadata store on SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from mlscale.serve.auth import TokenAuth, required_role
from mlscale.store.records import TokenRecord
from mlscale.store.sql import SqlMetadataStore

PREDICT_PATHS = [
    ("POST", "/v1/models/loans@production/predict"),
    ("GET", "/v1/models"),
    ("GET", "/v2"),
    ("GET", "/v2/models/loans"),
    ("POST", "/v2/models/loans/infer"),
]
ADMIN_PATHS = ["/metrics", "/admin/reload", "/v1//metrics", "/v1x"]
PUBLIC_PATHS = ["/healthz", "/v2/health/live", "/v2/health/ready"]


async def echo(request: Request) -> JSONResponse:
    token = getattr(request.state, "token", None)
    return JSONResponse({"path": request.url.path, "token": token and token.name})


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


def app() -> Starlette:
    paths = {p for _, p in PREDICT_PATHS} | set(ADMIN_PATHS) | set(PUBLIC_PATHS)
    routes: list = [Route(p, echo, methods=["GET", "POST"]) for p in sorted(paths)]
    return Starlette(routes=[*routes, WebSocketRoute("/v1/stream", socket)])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    yield opened
    opened.close()


@pytest.fixture
def calls() -> list[str]:
    """Every secret that reached the store."""
    return []


@pytest.fixture
def make_client(store: SqlMetadataStore, calls: list[str]) -> Callable[..., TestClient]:
    def verify(secret: str) -> TokenRecord | None:
        calls.append(secret)
        return store.verify_token(secret)

    def make(*, required: bool = True, clock: Clock | None = None) -> TestClient:
        auth = TokenAuth(app(), verify, required=required, clock=clock or Clock())
        return TestClient(auth)

    return make


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/healthz", None),
        ("/v2/health/ready", None),
        ("/healthz/", "predict"),
        ("/v1", "predict"),
        ("/v2/models/loans/versions/1/infer", "predict"),
        ("/metrics", "admin"),
        ("/", "admin"),
        ("/v1x/models", "admin"),
        ("/v1/models/../../metrics", "admin"),
        ("/v1/./metrics", "admin"),
        ("/v1//metrics", "admin"),
    ],
)
def test_required_role(path: str, role: str | None) -> None:
    assert required_role(path) == role


def test_required_and_missing_token_is_401(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for method, path in PREDICT_PATHS:
        r = client.request(method, path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"].startswith("missing API token: send 'Authorization: Bearer")
    assert client.get("/metrics").status_code == 401


def test_health_probes_are_public(make_client: Callable[..., TestClient], calls: list) -> None:
    client = make_client()
    for path in PUBLIC_PATHS:
        assert client.get(path).status_code == 200, path
        # Probes do not even look at a token: a stale one in a probe config cannot fail them.
        assert client.get(path, headers=bearer("mls_stale")).status_code == 200
    assert calls == []


def test_invalid_and_revoked_tokens_are_401(
    make_client: Callable[..., TestClient], store: SqlMetadataStore
) -> None:
    client = make_client()
    _, secret = store.create_token("ci", "predict")
    store.revoke_token("ci")
    for sent in ("mls_nope", "not-even-a-token", secret, ""):
        r = client.post("/v1/models/loans@production/predict", headers=bearer(sent))
        assert r.status_code == 401, sent
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert r.json() == {"error": "invalid or revoked API token"}


def test_predict_role(make_client: Callable[..., TestClient], store: SqlMetadataStore) -> None:
    client = make_client()
    _, secret = store.create_token("ci", "predict")
    for method, path in PREDICT_PATHS:
        r = client.request(method, path, headers=bearer(secret))
        assert r.status_code == 200, path
        assert r.json()["token"] == "ci"
    for path in ADMIN_PATHS:
        r = client.get(path, headers=bearer(secret))
        assert r.status_code == 403, path
        assert r.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    assert client.get("/metrics", headers=bearer(secret)).json() == {
        "error": "token 'ci' has role 'predict'; /metrics needs 'admin'"
    }


def test_admin_role_may_do_everything(
    make_client: Callable[..., TestClient], store: SqlMetadataStore
) -> None:
    client = make_client()
    _, secret = store.create_token("ops", "admin")
    for method, path in [*PREDICT_PATHS, *(("GET", p) for p in ADMIN_PATHS)]:
        r = client.request(method, path, headers=bearer(secret))
        assert r.status_code == 200, path
        assert r.json()["token"] == "ops"


def test_x_api_key_and_other_authorization_schemes(
    make_client: Callable[..., TestClient], store: SqlMetadataStore
) -> None:
    client = make_client()
    _, secret = store.create_token("ci", "predict")
    assert client.get("/v1/models", headers={"X-API-Key": secret}).status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": "mls_nope"}).status_code == 401
    assert (
        client.get("/v1/models", headers={"Authorization": f"bearer {secret}"}).status_code == 200
    )
    # Basic is not ours: it counts as no token, and X-API-Key still works beside it.
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert client.get("/v1/models", headers=basic).json()["error"].startswith("missing API token")
    assert client.get("/v1/models", headers=basic | {"X-API-Key": secret}).status_code == 200


def test_not_required_still_checks_a_token_that_is_sent(
    make_client: Callable[..., TestClient], store: SqlMetadataStore
) -> None:
    client = make_client(required=False)
    for path in ["/v1/models", "/metrics", "/healthz"]:
        r = client.get(path)
        assert r.status_code == 200 and r.json()["token"] is None
    assert client.get("/v1/models", headers=bearer("mls_nope")).status_code == 401
    _, secret = store.create_token("ci", "predict")
    assert client.get("/v1/models", headers=bearer(secret)).status_code == 200
    assert client.get("/metrics", headers=bearer(secret)).status_code == 403


def test_successful_verifications_are_cached_briefly(
    make_client: Callable[..., TestClient], store: SqlMetadataStore, calls: list[str]
) -> None:
    clock = Clock()
    client = make_client(clock=clock)
    _, secret = store.create_token("ci", "predict")
    for _ in range(5):
        assert client.get("/v1/models", headers=bearer(secret)).status_code == 200
    assert calls == [secret]

    store.revoke_token("ci")
    clock.now += 9.9  # still cached: revocation takes effect within the cache time
    assert client.get("/v1/models", headers=bearer(secret)).status_code == 200
    clock.now += 0.2
    assert client.get("/v1/models", headers=bearer(secret)).status_code == 401
    assert client.get("/v1/models", headers=bearer(secret)).status_code == 401
    assert calls == [secret] * 3  # failures are not cached


def test_a_failing_store_is_503(store: SqlMetadataStore) -> None:
    def broken(secret: str) -> TokenRecord | None:
        raise OSError("database is gone")

    client = TestClient(TokenAuth(app(), broken, required=True))
    r = client.get("/v1/models", headers=bearer("mls_x"))
    assert r.status_code == 503
    assert r.json() == {"error": "cannot verify the API token now; try again"}


def test_websockets_are_checked_too(
    make_client: Callable[..., TestClient], store: SqlMetadataStore
) -> None:
    client = make_client()
    with pytest.raises(WebSocketDisconnect) as exc, client.websocket_connect("/v1/stream"):
        pass
    assert exc.value.code == 1008
    _, secret = store.create_token("ci", "predict")
    with client.websocket_connect("/v1/stream", headers=bearer(secret)) as ws:
        assert ws.receive_text() == "hello"
