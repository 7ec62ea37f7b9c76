"""``mlscale quickstart``: the whole loop on generated loan data, in about a minute.

Generate -> ingest -> train -> promote -> serve (in the background) -> send requests -> batch
score -> drift check on a shifted batch. The server it starts is stopped on the way out, Ctrl-C
included.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow.parquet as pq
from rich.console import Console

from mlscale.errors import MlscaleError
from mlscale.quickstart.loans import LABEL, generate_loans, write_loans_csv
from mlscale.workspace import Workspace

STEPS = 8
console = Console(highlight=False, soft_wrap=True)


def _step(n: int, text: str) -> float:
    console.print(f"[bold cyan][{n}/{STEPS}][/] {text}")
    return time.perf_counter()


def _done(started: float, text: str) -> None:
    console.print(f"      {text} [dim]({time.perf_counter() - started:.1f}s)[/]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def background_server(
    root: Path, port: int, timeout_s: float = 60.0, *, extra_args: tuple[str, ...] = ()
) -> Iterator[str]:
    """Run ``mlscale serve`` in a child process until the block exits (however it exits)."""
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlscale",
            "--workspace",
            str(root),
            "serve",
            "--port",
            str(port),
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise MlscaleError(f"the server exited early; see {root / 'server.log'}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise MlscaleError(f"the server did not start in {timeout_s:.0f}s; see server.log")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run(root: Path, *, rows: int = 20_000, port: int = 0) -> None:
    total = time.perf_counter()
    root = root.resolve()
    t = _step(1, f"workspace and data in {root}")
    ws = Workspace.init(root)
    data = root / "data"
    data.mkdir(exist_ok=True)
    train_csv = write_loans_csv(data / "loans.csv", rows, seed=7, malformed=max(rows // 1000, 1))
    fresh_csv = write_loans_csv(data / "loans_fresh.csv", rows // 4, seed=8, label=False)
    shifted_csv = write_loans_csv(
        data / "loans_shifted.csv", rows // 4, seed=9, shift=True, label=False
    )
    _done(
        t,
        f"{train_csv.name}: {rows:,} loans with missing values and a few malformed rows; "
        f"{fresh_csv.name} (same population), {shifted_csv.name} (the market changed)",
    )

    t = _step(2, "ingest: mlscale ingest data/loans.csv --name loans")
    result = ws.ingest(train_csv, name="loans")
    _done(
        t,
        f"{result.dataset.ref}: {result.rows_read:,} rows read = {result.rows_accepted:,} "
        f"accepted + {result.rows_quarantined:,} quarantined (bad values, kept with reasons); "
        f"{result.bytes_read / 1e6:.1f} MB CSV -> {result.bytes_stored / 1e6:.1f} MB Parquet",
    )

    from mlscale.data.datasets import read_profile
    from mlscale.data.report import write_html

    page = root / "loans_profile.html"
    write_html(read_profile(ws, result.dataset.profile_sha), page, title=result.dataset.ref)
    console.print(f"      profile with a plot per column: {page}")

    t = _step(3, f"train: mlscale train loans@latest --target {LABEL}")
    trained = ws.train("loans@latest", target=LABEL, exclude=["loan_id"])
    m = trained.metrics
    _done(
        t,
        f"{trained.model.ref}: AUC {m['auc']:.3f}, accuracy {m['accuracy']:.3f}, "
        f"log loss {m['log_loss']:.3f} on {trained.rows_test:,} holdout rows",
    )

    t = _step(
        4, f"promote: mlscale models promote loans {trained.model.version} --alias production"
    )
    ws.promote("loans", trained.model.version, alias="production")
    _done(t, f"loans@production now points at version {trained.model.version}")

    t = _step(5, "serve: mlscale serve (in the background)")
    port = port or free_port()
    sample = generate_loans(rows // 4, seed=8, label=False).slice(0, 200)
    features = trained.model.signature["features"]
    rows_json = [{f["name"]: r[f["name"]] for f in features} for r in sample.to_pylist()]
    with background_server(root, port) as url:
        _done(t, f"listening on {url}")
        t = _step(6, "predict over HTTP: POST /v1/models/loans@production/predict")
        client = httpx.Client(base_url=url, timeout=10.0)
        latencies = []
        online = []
        for row in rows_json[:100]:
            start = time.perf_counter()
            response = client.post("/v1/models/loans@production/predict", json={"rows": [row]})
            latencies.append((time.perf_counter() - start) * 1e3)
            response.raise_for_status()
            online.append(response.json()["probabilities"][0][1])
        client.close()
        latencies.sort()
        body = response.json()
        _done(
            t,
            f"100 single-row requests: p50 {latencies[49]:.1f} ms, p99 {latencies[98]:.1f} ms; "
            f"last answer: {body['predictions'][0]!r} with P(default)={online[-1]:.3f} "
            f"from loans@{body['version']}",
        )

    t = _step(
        7, "batch score: mlscale predict loans@production data/loans_fresh.csv -o scored.parquet"
    )
    out = root / "scored.parquet"
    scored = ws.predict("loans@production", fresh_csv, out)
    batch = pq.read_table(out, columns=["proba_1"]).column("proba_1").to_pylist()[:100]
    same = all(abs(a - b) < 1e-12 for a, b in zip(online, batch, strict=True))
    _done(t, f"{scored['rows']:,} rows -> {out.name}; first 100 identical to the server's: {same}")

    t = _step(8, "drift: mlscale drift loans@production data/loans_shifted.csv")
    calm = ws.drift("loans@production", fresh_csv)
    shifted = ws.drift("loans@production", shifted_csv)
    _done(
        t,
        f"same population: {len(calm.drifted)} of {len(calm.features)} features drifted; "
        f"shifted batch: {len(shifted.drifted)} drifted: {', '.join(shifted.drifted)}",
    )

    console.print(f"\n[bold green]done in {time.perf_counter() - total:.0f}s.[/] Try next:")
    for line in (
        f"cd {os.path.relpath(root)}",
        "mlscale data quarantine loans@1        # the malformed rows and why",
        "mlscale models list",
        "mlscale models show loans@production",
        "mlscale drift loans@production data/loans_shifted.csv",
        "mlscale serve    # then: curl -X POST localhost:8000/v1/models/loans@production/predict "
        "-d '{\"rows\": [...]}'",
    ):
        console.print(f"  {line}")
