"""The dashboard's routes: in the model server (behind its tokens) and on their own."""

from __future__ import annotations

import asyncio
import threading

import pytest
from starlette.testclient import TestClient
from tests.e2e.conftest import run_cli

from mlscale import Workspace
from mlscale.dashboard import Dashboard, create_dashboard_app
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.app import create_app
from mlscale.serve.metrics import ServerMetrics
from mlscale.serve.models import ServedModels


def feature_rows(ws: Workspace, n: int) -> list[dict]:
    names = [f["name"] for f in ws.model("loans@production").signature["features"]]
    return [{k: r[k] for k in names} for r in generate_loans(n, seed=3, label=False).to_pylist()]


def test_served_dashboard_pages_json_and_error_counts(traffic_ws: Workspace) -> None:
    ws = traffic_ws
    app = create_app(ServedModels(ws), metrics=ServerMetrics())
    with TestClient(app) as client:
        ok = client.post("/v1/models/loans@production/predict", json={"rows": feature_rows(ws, 5)})
        assert ok.status_code == 200
        bad = client.post("/v1/models/loans@production/predict", json={"rows": []})
        assert bad.status_code == 422
        page = client.get("/dashboard/models/loans", params={"window": "6h"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<h2>Drift over time" in page.text
        assert "<tr><td>200</td>" in page.text and "<tr><td>422</td>" in page.text
        data = client.get("/dashboard/api/models/loans", params={"window": "6h"}).json()
        assert data["version"]["version"] == 1 and data["error_totals"] == {"200": 1, "422": 1}
        assert "interest_rate" in data["latest"]["report"]["drifted"]
        assert data["drift"]["step"] == 600 and data["performance"]["metric"] == "auc"
        overview = client.get("/dashboard")
        assert overview.status_code == 200 and "/dashboard/models/loans" in overview.text
        assert client.get("/dashboard/api/overview").json()["models"][0]["name"] == "loans"
        assert client.get("/dashboard/", follow_redirects=False).headers["location"] == (
            "/dashboard"
        )
        missing = client.get("/dashboard/models/nope")
        assert missing.status_code == 404 and "no model named &#x27;nope&#x27;" in missing.text
        assert client.get("/dashboard", params={"window": "2h"}).status_code == 400
        assert client.get("/dashboard/models/loans", params={"version": "x"}).status_code == 400
        assert client.get("/dashboard/api/models/nope").json()["error"].startswith("no model")


def test_served_dashboard_needs_an_admin_token_when_tokens_are_required(
    quiet_ws: Workspace,
) -> None:
    ws = quiet_ws
    _, predict = ws.metadata.create_token("client", "predict")
    _, admin = ws.metadata.create_token("ops", "admin")
    client = TestClient(create_app(ServedModels(ws), require_token=True))
    assert client.get("/dashboard").status_code == 401
    denied = client.get("/dashboard/models/loans", headers={"authorization": f"Bearer {predict}"})
    assert denied.status_code == 403 and "needs 'admin'" in denied.json()["error"]
    assert client.get("/dashboard", headers={"x-api-key": admin}).status_code == 200
    # Without required tokens (a loopback server) the page is open.
    assert TestClient(create_app(ServedModels(ws))).get("/dashboard").status_code == 200


def test_stand_alone_app(quiet_ws: Workspace) -> None:
    ws = quiet_ws
    _, admin = ws.metadata.create_token("ops", "admin")
    client = TestClient(create_dashboard_app(ws, require_token=True))
    assert client.get("/dashboard").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 401
    headers = {"authorization": f"Bearer {admin}"}
    root = client.get("/", headers=headers, follow_redirects=False)
    assert root.headers["location"] == "/dashboard"
    page = client.get("/dashboard/models/loans", headers=headers)
    assert page.status_code == 200 and "no predictions of loans are logged" in page.text
    assert "error counts come from a running server" in page.text
    missing = client.get("/dashboard/api/models/nope", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"].startswith("no model named")


def test_pages_are_computed_once_off_the_event_loop_and_cached(quiet_ws: Workspace) -> None:
    dashboard = Dashboard(quiet_ws, cache_seconds=60, sample_counts=False)
    calls: list[str] = []
    release = threading.Event()

    def compute() -> str:
        calls.append(threading.current_thread().name)
        release.wait(10)  # both requests arrive while this runs
        return "page"

    async def main() -> list[str]:
        loop_thread = threading.current_thread().name
        first = asyncio.ensure_future(dashboard.get(("k",), compute))
        second = asyncio.ensure_future(dashboard.get(("k",), compute))
        await asyncio.sleep(0)
        while not calls:
            await asyncio.sleep(0.01)
        release.set()
        results = await asyncio.gather(first, second)
        results.append(await dashboard.get(("k",), compute))  # cached
        assert calls[0] != loop_thread
        return results

    assert asyncio.run(main()) == ["page", "page", "page"]
    assert len(calls) == 1


def test_a_failed_computation_reaches_every_waiter_and_is_not_cached(quiet_ws: Workspace) -> None:
    dashboard = Dashboard(quiet_ws, sample_counts=False)

    def broken() -> str:
        raise ValueError("boom")

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(ValueError, match="boom"):
                await dashboard.get(("k",), broken)

    asyncio.run(main())


def test_dashboard_command_refuses_a_public_address_without_an_admin_token(
    quiet_ws: Workspace,
) -> None:
    quiet_ws.metadata.create_token("client", "predict")
    result = run_cli(quiet_ws.root, "dashboard", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("error: serving the dashboard on 0.0.0.0 requires an admin")
