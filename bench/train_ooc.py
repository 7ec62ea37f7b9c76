"""Out-of-core training in bounded memory (issue 4): peak RSS at 3M and 30M rows.

Generates the loans data as Parquet in 1M-row chunks (no file is ever held whole), ingests it
into a fresh workspace, then runs ``mlscale train --out-of-core`` in a child process at each size
and reads the child's peak RSS. For comparison it prints what loading the same rows would take:
pandas (measured on 1M rows, scaled) and the in-memory trainer's float64 feature matrix.

    python bench/train_ooc.py --rows 30000000 --small-rows 3000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans

CHUNK = 1_000_000
HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024


def write_parquet(folder: Path, rows: int) -> Path:
    """The loans data, ``rows`` rows, as Parquet files of 1M rows each (kept between runs)."""
    marker = folder / f"rows-{rows}"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    for i, done in enumerate(range(0, rows, CHUNK)):
        table = generate_loans(min(CHUNK, rows - done), seed=100 + i)
        table = table.set_column(0, "loan_id", pa.array([f"{i}-{j}" for j in range(len(table))]))
        pq.write_table(table, folder / f"part-{i:04d}.parquet", compression="zstd")
        print(
            f"  generated {done + len(table):,} / {rows:,} rows "
            f"({time.perf_counter() - started:.0f}s)",
            flush=True,
        )
    marker.touch()
    return folder


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; its wall time, its peak RSS (MiB) and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: run the small size first.
    return wall, max(peak, before) / 1024, done.stdout


def pandas_estimate(folder: Path, rows: int) -> float:
    """MiB pandas needs for ``rows`` rows: measured on one 1M-row part, scaled."""
    import pandas as pd

    part = sorted(folder.glob("part-*.parquet"))[0]
    frame: pd.DataFrame = pq.read_table(part).to_pandas()
    return float(frame.memory_usage(deep=True).sum()) / len(frame) * rows / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=30_000_000)
    parser.add_argument("--small-rows", type=int, default=3_000_000)
    parser.add_argument("--model", default="lightgbm")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    args = parser.parse_args()

    results = []
    for rows in (args.small_rows, args.rows):
        folder = write_parquet(args.data / f"loans-parquet-{rows}", rows)
        root = args.data / f"ooc-ws-{rows}"
        shutil.rmtree(root, ignore_errors=True)
        ws = Workspace.init(root)
        started = time.perf_counter()
        dataset = ws.ingest(folder, name="loans").dataset
        ingest_s = time.perf_counter() - started
        env = os.environ | {"MLSCALE_WORKSPACE": str(root)}
        command = [
            sys.executable, "-m", "mlscale", "train", f"loans@{dataset.version}",
            "--target", "default", "--model", args.model, "--out-of-core",
            "--param", f"num_boost_round={args.rounds}", "--json",
        ]  # fmt: skip
        print(f"training out of core on {rows:,} rows ...", flush=True)
        wall, rss, out = run_child(command, env)
        result = json.loads(out)
        features = len(ws.model(result["model"]).signature["features"])
        results.append(
            {
                "rows": rows,
                "ingest_s": ingest_s,
                "train_s": wall,
                "peak_rss_mib": rss,
                "auc": result["metrics"]["auc"],
                "pandas_mib": pandas_estimate(folder, rows),
                "matrix_mib": rows * features * 8 / MIB,
            }
        )
        print(json.dumps(results[-1]), flush=True)

    print(f"\nOut-of-core training, {args.model}, {args.rounds} rounds")
    print(f"{'rows':>12} {'train':>8} {'peak RSS':>10} {'AUC':>6} {'pandas would need':>18} "
          f"{'float64 matrix':>15}")  # fmt: skip
    for r in results:
        print(
            f"{r['rows']:>12,} {r['train_s']:>7.0f}s {r['peak_rss_mib']:>7,.0f} MiB "
            f"{r['auc']:>6.3f} {r['pandas_mib']:>14,.0f} MiB {r['matrix_mib']:>11,.0f} MiB"
        )
    small, large = results
    print(
        f"peak RSS x{large['peak_rss_mib'] / small['peak_rss_mib']:.2f} for "
        f"x{large['rows'] / small['rows']:.0f} the rows; target <= 4 GB at {large['rows']:,}: "
        f"{'met' if large['peak_rss_mib'] <= 4096 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
