"""The dashboard as a person sees it: ``mlscale dashboard`` running, the model server's traffic
and counters arriving, and the page rendered by a real headless Chromium (Debian's package)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.app import create_app
from mlscale.serve.metrics import ServerMetrics
from mlscale.serve.models import ServedModels

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2000


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium: skipped where it is missing, but a failure where CI requires it."""
    if not CHROMIUM.exists():
        reason = f"needs {CHROMIUM} (Debian's chromium package) to render the page"
        if os.environ.get("MLSCALE_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"MLSCALE_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)
    return CHROMIUM


def png_rows(data: bytes) -> tuple[int, int, dict[int, np.ndarray]]:
    """(width, height, {row: pixels}) of an 8-bit RGB or RGBA PNG, for the rows that decode
    without their predecessors: those filtered None or Sub, and Up rows that follow one."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    stride = width * channels + 1
    rows: dict[int, np.ndarray] = {}
    previous = None
    for y in range(height):
        line = raw[y * stride : (y + 1) * stride]
        kind, values = line[0], line[1:].reshape(width, channels).astype(np.int64)
        if kind == 0:
            pixels = values % 256
        elif kind == 1:  # Sub: each byte adds the one a pixel to its left
            pixels = np.cumsum(values, axis=0) % 256
        elif kind == 2 and previous is not None:  # Up: adds the row above
            pixels = (values + previous) % 256
        else:
            previous = None
            continue
        rows[y] = previous = pixels
    return width, height, rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlscale dashboard exited: {process.communicate()[1]}")
        try:
            if httpx.get(url, timeout=60).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"mlscale dashboard did not answer at {url}")


def test_the_dashboard_in_headless_chromium(
    chromium: Path, traffic_ws: Workspace, tmp_path: Path
) -> None:
    ws = traffic_ws
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSCALE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlscale", "-w", str(ws.root), "dashboard", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/dashboard", process)
        # A multi-worker model server's worker answers traffic (some of it refused) and shares
        # its counters in .mlscale/run, where the dashboard reads them.
        metrics = ServerMetrics(ws.root / ".mlscale" / "run" / "metrics-8000")
        names = [f["name"] for f in ws.model("loans@1").signature["features"]]
        rows = generate_loans(200, seed=5, shift=True, label=False).select(names).to_pylist()
        with TestClient(create_app(ServedModels(ws), metrics=metrics)) as server:
            for i in range(0, 200, 20):
                answer = server.post(
                    "/v1/models/loans@production/predict", json={"rows": rows[i : i + 20]}
                )
                assert answer.status_code == 200
            for _ in range(3):
                assert (
                    server.post(
                        "/v1/models/loans@production/predict", json={"rows": []}
                    ).status_code
                    == 422
                )
        # Closing the server flushed its prediction log and wrote its counters.
        url = f"{base}/dashboard/models/loans?window=6h&refresh=0"
        page = httpx.get(url, timeout=120)
        assert page.status_code == 200
        assert "<tr><td>422</td>" in page.text and 'aria-label="error rate"' in page.text
        overview = httpx.get(f"{base}/dashboard?refresh=0", timeout=120).text
        assert '<a href="/dashboard/models/loans?window=24h"><b>loans</b></a>' in overview

        shot = tmp_path / "dashboard.png"
        subprocess.run(
            [str(chromium), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium'}",
             f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=30)
    data = shot.read_bytes()
    width, height, decoded = png_rows(data)
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(data) > 60_000  # a blank page of this size compresses to a few kilobytes
    assert len(decoded) > 50
    colours = {tuple(p) for pixels in decoded.values() for p in pixels[:, :3]}
    assert len(colours) > 40  # charts, badges and text, not a single background colour
    # Content all the way down: rows near the top, the middle and the bottom differ from the
    # page background.
    background = np.array([0xF5, 0xF7, 0xFA])
    busy = [
        y for y, pixels in decoded.items() if (pixels[:, :3] != background).any(axis=1).sum() > 50
    ]
    assert min(busy) < HEIGHT // 4 and max(busy) > HEIGHT * 3 // 4
