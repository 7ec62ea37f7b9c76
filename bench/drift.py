"""Drift benchmark (issue 6): mlscale's live drift report against Evidently's DataDriftPreset.

One run, same data both sides: a reference of ``--rows`` rows and a current window of ``--rows``
rows, 14 mixed features (10 numeric, 4 categorical, some with missing values); four are shifted
(``income``, ``rate``, ``accounts``, ``purpose``), the rest are drawn from the reference's
distribution with another seed.

- mlscale: the reference is built once (as training would) and attached to a registered version;
  the current rows are written to the real prediction log (Arrow IPC segments, 100k rows each,
  50k rows a minute). Timed in a fresh process: ``update_windows`` (read the log, per-minute
  summaries, SQLite) and ``drift_report`` (merge the minute summaries, every statistic, the
  calibrated verdicts). The same child, on a log ``--scale-rows`` long, shows memory stays flat.
- Evidently 0.7 ``Report([DataDriftPreset()])`` on the same rows as pandas frames (read from
  Parquet, not timed), in its own virtual environment (it needs pandas < 3):

      python3.11 -m venv bench/.venv-evidently
      bench/.venv-evidently/bin/pip install "evidently==0.7.23" "pandas<3" pyarrow

Usage: ``python bench/drift.py --rows 3000000 --scale-rows 30000000``. Ratios are what to read;
the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale import Workspace
from mlscale.data.profile import profile_table
from mlscale.models.signature import Feature, Signature
from mlscale.monitor import attach_reference, build_reference
from mlscale.monitor.windows import log_folder
from mlscale.serve.predlog import TS_TYPE, PredictionLog

EVIDENTLY_PYTHON = Path(__file__).parent / ".venv-evidently" / "bin" / "python"
NUMERIC = ["age", "income", "amount", "term", "rate", "credit", "employment", "accounts", "dti",
           "utilisation"]  # fmt: skip
CATEGORICAL = ["home", "purpose", "state", "channel"]
SHIFTED = {"income", "rate", "accounts", "purpose"}
ROWS_PER_MINUTE = 50_000
SEGMENT_ROWS = 100_000
HOME = ["rent", "mortgage", "own", "other"]
PURPOSES = ["debt", "card", "home", "car", "medical", "business", "education", "other"]
STATES = [f"S{i:02d}" for i in range(50)]
CHANNELS = ["web", "app", "branch"]


def draw(n: int, seed: int, shifted: bool) -> pa.Table:
    """``n`` rows of the 14 features; ``shifted`` moves the four SHIFTED ones."""
    rng = np.random.default_rng(seed)

    def missing(values: np.ndarray, share: float) -> pa.Array:
        return pa.array(values, mask=rng.uniform(0, 1, n) < share)

    purpose_p = np.array([30, 20, 12, 10, 8, 8, 6, 6], float)
    if shifted:
        purpose_p = np.array([15, 30, 12, 10, 8, 15, 4, 6], float)
    state_p = 1 / np.arange(1, 51)
    return pa.table(
        {
            "age": np.clip(np.rint(rng.normal(41, 12, n)), 18, 80),
            "income": missing(rng.lognormal(10.9, 0.5, n) * (0.75 if shifted else 1.0), 0.03),
            "amount": rng.lognormal(9.3, 0.55, n),
            "term": rng.choice([36.0, 60.0], n, p=[0.7, 0.3]),
            "rate": rng.normal(13 + (2.0 if shifted else 0.0), 4, n),
            "credit": np.rint(rng.normal(695, 65, n)),
            "employment": missing(rng.gamma(1.6, 4.0, n), 0.05),
            "accounts": rng.poisson(11 if shifted else 9, n).astype(np.float64),
            "dti": rng.beta(2, 6, n) * 80,
            "utilisation": missing(rng.beta(2, 5, n), 0.10),
            "home": pa.array(np.array(HOME)[rng.choice(4, n, p=[0.4, 0.35, 0.2, 0.05])]),
            "purpose": pa.array(
                np.array(PURPOSES)[rng.choice(8, n, p=purpose_p / purpose_p.sum())]
            ),
            "state": pa.array(np.array(STATES)[rng.choice(50, n, p=state_p / state_p.sum())]),
            "channel": pa.array(np.array(CHANNELS)[rng.choice(3, n, p=[0.5, 0.4, 0.1])]),
        }
    )


SIGNATURE = Signature(
    task="binary",
    target="default",
    classes=[0, 1],
    features=[Feature(n, "float64", "numeric") for n in NUMERIC]
    + [Feature(n, "string", "categorical") for n in CATEGORICAL],
)


def write_log(ws: Workspace, rows: int, *, seed: int, start: float) -> None:
    """``rows`` current rows into the prediction log of bench@1, as the server writes it."""
    with PredictionLog(log_folder(ws), segment_max_rows=SEGMENT_ROWS, background=False) as plog:
        for offset in range(0, rows, 1_000_000):  # generated a million rows at a time
            chunk = draw(min(1_000_000, rows - offset), seed + offset, shifted=True)
            n = chunk.num_rows
            ts = start + (offset + np.arange(n)) * 60.0 / ROWS_PER_MINUTE
            columns = {
                "ts": pa.array((ts * 1e6).astype(np.int64), pa.int64()).cast(TS_TYPE),
                "request_id": pa.array(np.char.add("r", (offset + np.arange(n)).astype(str))),
                "model": pa.array(["bench"] * n),
                "version": pa.array(np.ones(n, dtype=np.int64)),
                "latency_ms": pa.array(np.full(n, 1.0)),
            }
            for name in chunk.column_names:
                columns[f"f.{name}"] = chunk.column(name).combine_chunks()
            batch = pa.RecordBatch.from_pydict(columns)
            plog.write_batches([("bench", batch.slice(i, SEGMENT_ROWS), SEGMENT_ROWS)
                                for i in range(0, n, SEGMENT_ROWS)])  # fmt: skip


# VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child forked from this (large) process
# would report the parent's size.
PEAK_RSS = """
def peak_rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

CHILD = (
    PEAK_RSS
    + r"""
import json, sys, time
from mlscale import Workspace
from mlscale.monitor import drift_report, update_windows
ws = Workspace.open(sys.argv[1])
t = time.perf_counter()
[update] = update_windows(ws, "bench")
summaries = time.perf_counter() - t
t = time.perf_counter()
report = drift_report(ws, "bench@1", update=False)
report_s = time.perf_counter() - t
same_statistics = drift_report(ws, "bench@1", update=False, numeric_method="wasserstein")
print(json.dumps({
    "rows": report.rows, "buckets": report.window["buckets"], "summaries_s": summaries,
    "report_s": report_s, "problems": update.problems,
    "peak_rss_mib": peak_rss_mib(),
    "features": {f.feature: {"verdict": f.verdict, "psi": f.psi, "js": f.js,
                             "wasserstein": f.wasserstein, "ks": f.ks, "ks_exact": f.ks_exact,
                             "ks_pvalue": f.ks_pvalue, "chi2_p": f.chi_square_pvalue}
                 for f in report.features},
    "wasserstein_verdicts": {f.feature: f.verdict for f in same_statistics.features},
}))
"""
)

EVIDENTLY = (
    PEAK_RSS
    + r"""
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
numeric, categorical = json.loads(sys.argv[3]), json.loads(sys.argv[4])
t = time.perf_counter()
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
result = Report([DataDriftPreset()]).run(
    Dataset.from_pandas(cur, data_definition=definition),
    Dataset.from_pandas(ref, data_definition=definition),
).dict()
seconds = time.perf_counter() - t
columns = {}
for metric in result["metrics"]:
    config = metric["config"]
    if config["type"].endswith("ValueDrift"):
        columns[config["column"]] = {"method": config["method"], "value": metric["value"],
                                     "drift": bool(metric["value"] >= config["threshold"])}
print(json.dumps({"seconds": seconds, "columns": columns, "peak_rss_mib": peak_rss_mib()}))
"""
)


def child(args: list[str], python: str = sys.executable, code: str = CHILD) -> dict:
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def workspace(root: Path, reference_table: pa.Table) -> tuple[Workspace, float]:
    """A workspace with bench@1 registered and its reference attached; returns the build time."""
    shutil.rmtree(root, ignore_errors=True)
    ws = Workspace.init(root)
    t = time.perf_counter()
    reference = build_reference(reference_table, SIGNATURE)
    build_s = time.perf_counter() - t
    version = ws.metadata.add_model_version(
        "bench",
        flavor="lightgbm",
        # The monitor never loads the model: placeholder bytes stand in for its file.
        artifact_sha=ws.artifacts.put_bytes(b"bench: the drift monitor does not load models"),
        signature=SIGNATURE.to_dict(),
        metrics={},
        profile_sha=ws.artifacts.put_bytes(
            profile_table(reference_table, SIGNATURE.input_schema()).to_json()
        ),
        run_id=None,
        dataset=None,
    )
    attach_reference(ws, version, reference)
    return ws, build_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--scale-rows", type=int, default=30_000_000, help="0 to skip")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "mlscale-drift")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)

    reference = draw(args.rows, seed=1, shifted=False)
    current = draw(args.rows, seed=2, shifted=True)
    print(f"{args.rows:,} reference rows and {args.rows:,} current rows x {reference.num_columns} "
          f"features; shifted: {', '.join(sorted(SHIFTED))}", flush=True)  # fmt: skip

    ws, build_s = workspace(args.data / "ws", reference)
    print(f"reference built in {build_s:.2f} s (once per model version, at training)", flush=True)
    write_log(ws, args.rows, seed=2, start=1_800_000_000.0)
    mlscale = child([str(ws.root)])
    print(f"mlscale: {json.dumps({k: v for k, v in mlscale.items() if k != 'features'})}")

    evidently: dict = {}
    if not args.skip_evidently:
        if not EVIDENTLY_PYTHON.exists():
            sys.exit(f"no {EVIDENTLY_PYTHON}: create it as the module docstring says")
        ref_path, cur_path = args.data / "reference.parquet", args.data / "current.parquet"
        pq.write_table(reference, ref_path)
        pq.write_table(current, cur_path)
        print("running Evidently DataDriftPreset ...", flush=True)
        evidently = child(
            [str(ref_path), str(cur_path), json.dumps(NUMERIC), json.dumps(CATEGORICAL)],
            python=str(EVIDENTLY_PYTHON),
            code=EVIDENTLY,
        )
        print(f"evidently: seconds {evidently.get('seconds')}, error {evidently.get('error')}")
    del reference, current

    scale: dict = {}
    if args.scale_rows:
        ws_scale, _ = workspace(args.data / "ws-scale", draw(args.rows, seed=1, shifted=False))
        write_log(ws_scale, args.scale_rows, seed=2, start=1_800_000_000.0)
        scale = child([str(ws_scale.root)])
        shutil.rmtree(args.data / "ws-scale", ignore_errors=True)

    report(args, mlscale, evidently, scale, build_s)


def report(args: argparse.Namespace, m: dict, e: dict, s: dict, build_s: float) -> None:
    if "error" in m:
        sys.exit(f"mlscale failed: {m['error']}")
    total = m["summaries_s"] + m["report_s"]
    print("\n| contender | what it does | wall | peak RSS |\n|---|---|---|---|")
    print(f"| mlscale summaries | read {m['rows']:,} logged rows, {m['buckets']} minute "
          f"summaries into SQLite | {m['summaries_s']:.2f} s | |")  # fmt: skip
    print(f"| mlscale report | merge {m['buckets']} summaries, all statistics, calibrated "
          f"verdicts | {m['report_s']:.3f} s | |")  # fmt: skip
    print(f"| mlscale total | both | {total:.2f} s | {m['peak_rss_mib']:,.0f} MiB |")
    if e and "error" not in e:
        print(f"| Evidently DataDriftPreset | raw frames in memory | {e['seconds']:.1f} s | "
              f"{e['peak_rss_mib']:,.0f} MiB |")  # fmt: skip
    print(f"\nreference build (once, at training): {build_s:.2f} s")
    if e and "error" not in e:
        print(f"speed-up, summaries + report: {e['seconds'] / total:.0f}x; report alone "
              f"(summaries kept up to date as the log grows): {e['seconds'] / m['report_s']:.0f}x")  # fmt: skip
    elif e:
        print(f"Evidently failed: {e['error']}")
    if s and "error" not in s:
        print(f"peak RSS {m['peak_rss_mib']:,.0f} MiB at {m['rows']:,} rows, "
              f"{s['peak_rss_mib']:,.0f} MiB at {s['rows']:,} rows "
              f"(x{s['peak_rss_mib'] / m['peak_rss_mib']:.2f}); at {s['rows']:,}: summaries "
              f"{s['summaries_s']:.1f} s, report over {s['buckets']} minutes "
              f"{s['report_s']:.3f} s")  # fmt: skip
    elif s:
        print(f"scale run failed: {s['error']}")

    print("\n| feature | shifted | mlscale PSI | mlscale W/std | mlscale JS | mlscale (PSI/JS) "
          "| mlscale (W/JS) | Evidently | Evidently flags | agree |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    agree = agree_w = 0
    for name in NUMERIC + CATEGORICAL:
        f = m["features"][name]
        ours = f["verdict"] == "drift"
        ours_w = m["wasserstein_verdicts"][name] == "drift"
        col = e.get("columns", {}).get(name) if e and "error" not in e else None
        theirs = col["drift"] if col else None
        agree += theirs == ours
        agree_w += theirs == ours_w
        w = "" if f["wasserstein"] is None else f"{f['wasserstein']:.3f}"
        theirs_value = "" if col is None else f"{col['method']} {col['value']:.4f}"
        print(f"| {name} | {'yes' if name in SHIFTED else 'no'} | {f['psi']:.4f} | {w} | "
              f"{f['js']:.4f} | {f['verdict']} | {m['wasserstein_verdicts'][name]} | "
              f"{theirs_value} | "
              f"{'' if theirs is None else ('drift' if theirs else 'no')} | "
              f"{'' if theirs is None else ('yes' if theirs == ours else 'NO')} |")  # fmt: skip
    n = len(NUMERIC) + len(CATEGORICAL)
    if e and "error" not in e:
        print(f"\nagreement with Evidently: {agree}/{n} features (default PSI/JS verdicts), "
              f"{agree_w}/{n} (Wasserstein/JS, Evidently's statistics)")  # fmt: skip
    pvalues = sum(1 for name in NUMERIC if (m["features"][name]["ks_pvalue"] or 1) < 0.05)
    print(f"raw p-values: exact KS p < 0.05 (on the 500/5,000-value samples) for {pvalues} of "
          f"{len(NUMERIC)} numeric features")  # fmt: skip


if __name__ == "__main__":
    main()
