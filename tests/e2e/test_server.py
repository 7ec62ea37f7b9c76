"""The real server in its own process, over HTTP on loopback."""

import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlscale.quickstart.loans import generate_loans
from mlscale.quickstart.walkthrough import background_server, free_port


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[str]:
    with background_server(project, free_port()) as url:
        yield url


def wait_healthy(client: httpx.Client, url: str, timeout_s: float = 60) -> None:
    """Wait until a server started in a test answers /healthz with 200 (or fail)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if client.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def rows(n: int) -> list[dict]:
    table = generate_loans(n, seed=8, label=False).drop_columns(["loan_id", "application_date"])
    return table.to_pylist()


def test_predict_over_http(server: str) -> None:
    r = httpx.post(f"{server}/v1/models/loans@production/predict", json={"rows": rows(5)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "loans" and body["version"] == 1 and len(body["request_id"]) == 32
    assert len(body["predictions"]) == 5 and len(body["probabilities"]) == 5
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"


def test_bad_requests_over_http(server: str) -> None:
    url = f"{server}/v1/models/loans@production/predict"
    r = httpx.post(url, content=b'{"rows": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("request body is not valid JSON")
    row = rows(1)[0]
    del row["credit_score"]
    r = httpx.post(url, json={"rows": [row]})
    assert r.status_code == 422 and "missing feature(s) 'credit_score'" in r.json()["error"]
    r = httpx.post(f"{server}/v1/models/ghost@production/predict", json={"rows": [row]})
    assert r.status_code == 404 and "model 'ghost' is not served here" in r.json()["error"]
    assert httpx.post(url, json={"rows": rows(1)}).status_code == 200  # still serving


def test_serve_stops_cleanly_on_sigterm(project: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlscale", "serve", "--port", str(port)],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_healthy(httpx.Client(), f"http://127.0.0.1:{port}")
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
        assert "Traceback" not in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_background_server_is_stopped_on_ctrl_c(project: Path) -> None:
    port = free_port()
    with pytest.raises(KeyboardInterrupt), background_server(project, port) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        raise KeyboardInterrupt
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_metrics_add_up_across_worker_processes(project: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlscale", "serve", "--port", str(port), "--workers", "2"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(httpx.Client(), url)
        # New connections are spread over the workers by the kernel.
        for _ in range(20):
            with httpx.Client() as client:
                r = client.post(f"{url}/v1/models/loans@production/predict", json={"rows": rows(1)})
                assert r.status_code == 200
        time.sleep(1.5)  # each worker shares its numbers every second
        text = httpx.get(f"{url}/metrics").text
        assert 'mlscale_requests_total{code="200",model="loans",version="1"} 20.0' in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_no_request_fails_while_an_alias_moves_under_load(project: Path) -> None:
    import threading

    from mlscale import Workspace

    ws = Workspace.open(project)
    candidate = ws.train("loans@1", target="default", model="logistic", exclude=["loan_id"])
    port = free_port()
    # Two workers, each following the alias on its own. A worker switches once it has loaded
    # and warmed up the new version: on a loaded 2-core machine, importing scikit-learn for the
    # first logistic model can take seconds, so the test waits for the switch (up to 30 s)
    # instead of assuming a fixed delay, with the load running all along.
    with background_server(project, port, extra_args=("--workers", "2")) as url:
        predict = f"{url}/v1/models/loans@production/predict"
        body = {"rows": rows(3)}
        statuses: list[int] = []
        versions: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    r = client.post(predict, json=body)
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        versions.append(r.json()["version"])

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        ws.promote("loans", candidate.model.version, alias="production")
        deadline = time.monotonic() + 30.0
        new = candidate.model.version
        while time.monotonic() < deadline and not (
            len(versions) > 50 and set(versions[-50:]) == {new}
        ):
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
        ws.promote("loans", 1, alias="production")  # leave the shared workspace as it was
    assert len(statuses) > 100 and set(statuses) == {200}, sorted(set(statuses))
    assert versions[0] == 1, versions[:5]
    assert versions[-1] == candidate.model.version, (versions[-5:], candidate.model.version)


def test_tokens_are_required_off_loopback_and_tls_works(project: Path, tmp_path: Path) -> None:
    import shutil

    from tests.e2e.conftest import run_cli

    refused = run_cli(project, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    # No token exists yet in this workspace: a server reachable from elsewhere refuses to start.
    assert refused.returncode == 2 and "requires API tokens" in refused.stderr
    assert "mlscale tokens create" in refused.stderr
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    predict_token = run_cli(
        project, "tokens", "create", "tls-client", "--role", "predict"
    ).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlscale", "serve", "--port", str(port), "--workers", "1",
         "--require-token", "--certfile", str(cert), "--keyfile", str(key)],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=5) as client:
            wait_healthy(client, url)  # /healthz is public: no token needed
            predict = f"{url}/v1/models/loans@production/predict"
            assert client.post(predict, json={"rows": rows(1)}).status_code == 401
            auth = {"Authorization": f"Bearer {predict_token}"}
            assert client.post(predict, json={"rows": rows(1)}, headers=auth).status_code == 200
            assert client.get(f"{url}/metrics", headers=auth).status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        run_cli(project, "tokens", "revoke", "tls-client")
