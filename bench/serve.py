"""Serving benchmark (issue 5): mlscale serve against a bare ASGI app on the same LightGBM model.

Same model (LightGBM, 100 trees, loans data), same single-row JSON payload, wrk as the load
generator in its own process; concurrency 1 and 16, two server workers each; and
``mlflow models serve`` of the same booster when bench/.venv-mlflow exists. Then batch scoring
against the model's raw in-process predict. Usage: python bench/serve.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow.csv as pacsv

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans
from mlscale.quickstart.walkthrough import free_port

WRK_LUA = """
wrk.method = "POST"
wrk.body   = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(url: str, body: str, concurrency: int, seconds: int, folder: Path) -> dict:
    script = folder / "post.lua"
    script.write_text(WRK_LUA.format(body=body))
    threads = 1 if concurrency == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50": _ms(lat["50"]),
        "p99": _ms(lat["99"]),
        "errors": int(errors.group(1)) if errors else 0,
    }


def sequential(host: str, port: int, path: str, body: str, seconds: int) -> dict:
    """Exact per-request latency at concurrency 1 (one keep-alive connection, one at a time)."""
    import http.client

    conn = http.client.HTTPConnection(host, port)
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        conn.request("POST", path, body.encode(), {"Content-Type": "application/json"})
        conn.getresponse().read()
        latencies.append((time.perf_counter() - start) * 1e3)
    conn.close()
    latencies.sort()
    n = len(latencies)
    return {"p50": latencies[n // 2], "p99": latencies[int(n * 0.99)], "max": latencies[-1], "n": n}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wait_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


MLFLOW_VENV = Path(__file__).resolve().parent / ".venv-mlflow"
SAVE_MLFLOW = """
import sys, lightgbm, mlflow.lightgbm
mlflow.lightgbm.save_model(lightgbm.Booster(model_file=sys.argv[1]), sys.argv[2])
"""


def mlflow_contender(
    folder: Path, model_file: Path, predictor: object, row: dict
) -> tuple[list[str], str] | None:
    """``mlflow models serve`` of the same booster (MLflow's lightgbm flavor), and its payload.

    MLflow is a benchmark-only dependency in its own venv (it pins pandas < 3):
    ``python3 -m venv bench/.venv-mlflow && bench/.venv-mlflow/bin/pip install mlflow lightgbm``.
    MLflow has no feature encoder, so it gets the row already encoded (less work than ours).
    """
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        return None
    saved = folder / "mlflow-model"
    subprocess.run([str(python), "-c", SAVE_MLFLOW, str(model_file), str(saved)], check=True)
    encoded = predictor.encoder.encode_records([row])[0]  # type: ignore[attr-defined]
    names = [f"Column_{i}" for i in range(len(encoded))]
    values = [float(v) for v in encoded]
    payload = json.dumps({"dataframe_split": {"columns": names, "data": [values]}})
    path = f"{MLFLOW_VENV / 'bin'}:{os.environ.get('PATH', '')}"  # its uvicorn, not ours
    command = ["env", f"PATH={path}", str(MLFLOW_VENV / "bin" / "mlflow"), "models", "serve",
               "-m", str(saved),
               "--env-manager", "local", "-h", "127.0.0.1", "--workers", "2"]  # fmt: skip
    return command, payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--batch-repeats", type=int, default=3)
    parser.add_argument("--skip-servers", action="store_true", help="Batch scoring only.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mlscale-bench-serve-"))
    try:
        run(folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(folder: Path, args: argparse.Namespace) -> None:
    ws = Workspace.init(folder / "ws")
    pacsv.write_csv(generate_loans(50_000, seed=7), folder / "loans.csv")
    ws.ingest(folder / "loans.csv", name="loans")
    trained = ws.train(
        "loans@1", target="default", exclude=["loan_id"], params={"num_boost_round": 100}
    )
    ws.promote("loans", trained.model.version, alias="production")
    predictor = ws.predictor("loans@production")
    model_file = folder / "model.txt"
    model_file.write_bytes(predictor.model.save())
    # A row with every feature present: MLflow's pandas path cannot take a JSON null as a number.
    row = next(
        {k: v for k, v in r.items() if k in predictor.signature.feature_names}
        for r in generate_loans(50, seed=8, label=False).to_pylist()
        if all(v is not None for v in r.values())
    )
    body = json.dumps({"rows": [row]})
    plan = [[f.name, {c: k for k, c in enumerate(f.categories)} if f.kind == "categorical" else None]
            for f in predictor.signature.features]  # fmt: skip

    if not args.skip_servers:
        serve_contenders(folder, args, ws, predictor, model_file, row, body, plan)
    batch_scoring(folder, args, ws, predictor)


def serve_contenders(folder: Path, args: argparse.Namespace, ws: Workspace, predictor: object,
                     model_file: Path, row: dict, body: str, plan: list) -> None:  # fmt: skip
    mlflow = mlflow_contender(folder, model_file, predictor, row)
    env = os.environ | {"BARE_MODEL_FILE": str(model_file), "BARE_PLAN": json.dumps(plan),
                        "PYTHONPATH": str(Path(__file__).parent)}  # fmt: skip
    servers = {
        "bare ASGI (floor)": [sys.executable, "-m", "uvicorn", "bare_asgi:app", "--workers", "2",
                              "--log-level", "warning", "--no-access-log"],
        "mlscale serve": [sys.executable, "-m", "mlscale", "--workspace", str(ws.root), "serve",
                          "--workers", "2"],
    }  # fmt: skip
    paths = {name: ("/healthz", "/v1/models/loans@production/predict", body) for name in servers}
    if mlflow is not None:
        servers["mlflow models serve"] = mlflow[0]
        paths["mlflow models serve"] = ("/ping", "/invocations", mlflow[1])
    results: dict[str, dict[int, dict]] = {}
    for name, cmd in servers.items():
        port = free_port()
        proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=folder)  # fmt: skip
        health, path, payload = paths[name]
        url = f"http://127.0.0.1:{port}{path}"
        try:
            wait_up(f"http://127.0.0.1:{port}{health}", proc)
            httpx.post(
                url, content=payload, headers={"content-type": "application/json"}
            ).raise_for_status()
            results[name] = {}
            for concurrency in (1, 16):
                wrk(url, payload, concurrency, 2, folder)  # warm-up
                results[name][concurrency] = wrk(url, payload, concurrency, args.seconds, folder)
                print(
                    f"{name}, concurrency {concurrency}: {results[name][concurrency]}", flush=True
                )
            exact = sequential("127.0.0.1", port, path, payload, 5)
            results[name]["exact"] = exact
            print(f"{name}, one request at a time (exact percentiles): {exact}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    print("\n| server | concurrency | req/s | p50 | p99 | errors |\n|---|---|---|---|---|---|")
    for name, by_c in results.items():
        for c in (1, 16):
            r = by_c[c]
            print(
                f"| {name} | {c} | {r['rps']:,.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['errors']} |"
            )
    print("\nOne request at a time, every latency recorded (wrk's percentiles include its stalls):")
    for name, by_c in results.items():
        e = by_c["exact"]
        print(f"  {name}: p50 {e['p50']:.2f} ms, p99 {e['p99']:.2f} ms, max {e['max']:.1f} ms")
    m, b = results["mlscale serve"], results["bare ASGI (floor)"]
    print(
        f"\nmlscale / bare ASGI at concurrency 16: {m[16]['rps'] / b[16]['rps']:.2f} (target >= 0.7)"
    )
    print(
        f"mlscale single-row latency, one at a time: p50 {m['exact']['p50']:.2f} ms (target <= 0.5), "
        f"p99 {m['exact']['p99']:.2f} ms (target <= 2)"
    )
    if "mlflow models serve" in results:
        f = results["mlflow models serve"]
        print(
            f"mlscale / mlflow models serve at concurrency 16: {m[16]['rps'] / f[16]['rps']:.1f}x "
            "(target >= 10x)"
        )
    else:
        print(f"MLflow: not measured ({MLFLOW_VENV} missing; see mlflow_contender)")


def batch_scoring(folder: Path, args: argparse.Namespace, ws: Workspace, predictor: object) -> None:
    # Batch scoring against the raw in-process predict of the same model.
    data = folder / "batch.parquet"
    import pyarrow.parquet as pq

    table = generate_loans(args.batch_rows, seed=9, label=False)
    pq.write_table(table, data)
    X = predictor.encoder.encode_table(table)
    n = args.batch_rows
    contenders = {
        "raw in-process predict (encoded matrix in memory)": lambda: predictor.model.predict(X),
        "mlscale predict": lambda: ws.predict("loans@production", data, folder / "s1.parquet"),
        "mlscale predict --workers 2": lambda: ws.predict(
            "loans@production", data, folder / "s2.parquet", workers=2
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.batch_repeats):  # interleaved, so a noisy moment hits every contender
        for name, score in contenders.items():
            start = time.perf_counter()
            score()
            times[name].append(time.perf_counter() - start)
    raw = min(times["raw in-process predict (encoded matrix in memory)"])
    print(f"\nbatch scoring {n:,} rows (Parquet in, Parquet out with every input column; "
          f"best of {args.batch_repeats}):")  # fmt: skip
    for name, seconds in times.items():
        best = min(seconds)
        print(f"  {name}: {n / best:,.0f} rows/s ({best:.2f} s) = {raw / best:.2f} of raw")
    print("  target: mlscale predict >= 0.8 of raw")


if __name__ == "__main__":
    main()
