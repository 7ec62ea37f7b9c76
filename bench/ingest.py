"""Ingest benchmark (issue 3): mlscale ingest against pandas.read_csv and DuckDB's CSV -> Parquet.

Also the fastest parses alone (pyarrow's multi-threaded CSV reader, DuckDB's reader into Arrow),
as the ceiling of what any ingest that reads the file can do.

One run, same file, each contender in its own fresh process (wall time and peak RSS of that
process). mlscale does more than either: type validation with reasons, quarantine, profile,
zstd Parquet, a versioned commit. Usage:

    python bench/ingest.py --rows 10000000 --scale-rows 30000000

Ratios are what to read; the machine is shared and noisy (``--repeats 3`` takes each
contender's best of three interleaved rounds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_data import write

CHILD = r"""
import json, resource, sys, time
kind, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
result = {}
if kind == "pandas":
    import pandas as pd
    result["rows"] = len(pd.read_csv(path))
elif kind == "pyarrow":  # the fastest CSV parse Python has: multi-threaded, into memory
    import pyarrow.csv as pacsv
    result["rows"] = pacsv.read_csv(path).num_rows
elif kind == "duckdb-read":  # DuckDB's parse alone, into an Arrow table in memory
    import duckdb
    duckdb.sql("SET enable_progress_bar = false")
    result["rows"] = duckdb.sql(f"SELECT * FROM read_csv('{path}')").fetch_arrow_table().num_rows
elif kind == "duckdb":
    import duckdb
    duckdb.sql("SET enable_progress_bar = false")
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{path}')) TO '{out}/duck.parquet' "
               "(FORMAT parquet, COMPRESSION zstd)")
    result["rows"] = duckdb.sql(f"SELECT count(*) FROM '{out}/duck.parquet'").fetchall()[0][0]
else:
    from mlscale import Workspace
    ws = Workspace.init(out + "/ws")
    r = ws.ingest(path, name="bench")
    result.update(rows=r.rows_read, accepted=r.rows_accepted, quarantined=r.rows_quarantined,
                  stored=r.bytes_stored, reasons=len(r.reasons))
result["seconds"] = time.perf_counter() - t
result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def run(kind: str, path: Path) -> dict:
    with tempfile.TemporaryDirectory(dir=path.parent) as out:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(path), out],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--scale-rows", type=int, default=30_000_000, help="0 to skip")
    parser.add_argument("--repeats", type=int, default=1, help="rounds; each contender's best")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "mlscale-bench")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)

    path, bad = write(args.data / f"wide_{args.rows}.csv", args.rows)
    size = path.stat().st_size
    print(
        f"file: {path.name}, {args.rows:,} rows x 20 columns, {size / 2**20:,.0f} MiB, {bad:,} bad rows"
    )
    results: dict[str, dict] = {}
    for round_ in range(args.repeats):  # interleaved, so that each sees the same machine load
        for kind in ("pandas", "pyarrow", "duckdb-read", "duckdb", "mlscale"):
            print(f"running {kind} (round {round_ + 1} of {args.repeats}) ...", flush=True)
            r = run(kind, path)
            print(f"  {r}", flush=True)
            best = results.get(kind)
            if best is None or "error" in best or r.get("seconds", 1e9) < best["seconds"]:
                results[kind] = r
    m, p, d = results["mlscale"], results["pandas"], results["duckdb"]
    print()
    print("| contender | wall | rows/s | peak RSS |")
    print("|---|---|---|---|")
    for kind, r in results.items():
        if "error" in r:
            print(f"| {kind} | failed: {r['error']} | | |")
            continue
        print(
            f"| {kind} | {r['seconds']:.1f} s | {args.rows / r['seconds'] / 1e6:.2f} M "
            f"| {r['peak_rss_mib']:,.0f} MiB |"
        )
    if "error" not in m:
        print()
        if "error" not in d:
            print(
                f"mlscale throughput / DuckDB COPY: {d['seconds'] / m['seconds']:.2f} (target >= 0.5)"
            )
        if "error" not in p:
            print(
                f"mlscale speed-up over pandas.read_csv: {p['seconds'] / m['seconds']:.2f}x (target >= 2)"
            )
            # The ceiling: no ingest that parses the file can beat the fastest parse alone.
            for kind in ("pyarrow", "duckdb-read"):
                if "error" not in results[kind]:
                    print(
                        f"  ceiling: {kind} parse alone over pandas.read_csv: "
                        f"{p['seconds'] / results[kind]['seconds']:.2f}x"
                    )
        print(
            f"bad rows quarantined: {m['quarantined']:,} of {bad:,} generated "
            f"({'all' if m['quarantined'] == bad else 'MISMATCH'}); "
            f"rows read = accepted + quarantined: {m['rows'] == m['accepted'] + m['quarantined']}"
        )
        print(
            f"stored {m['stored'] / 2**20:,.0f} MiB of Parquet ({size / m['stored']:.1f}x smaller than the CSV)"
        )
    if args.scale_rows:
        big, big_bad = write(args.data / f"wide_{args.scale_rows}.csv", args.scale_rows)
        print(f"running mlscale on {args.scale_rows:,} rows ...", flush=True)
        r = run("mlscale", big)
        print(f"  {r}")
        if "error" not in r and "error" not in m:
            print(
                f"peak RSS {m['peak_rss_mib']:,.0f} MiB at {args.rows:,} rows -> "
                f"{r['peak_rss_mib']:,.0f} MiB at {args.scale_rows:,} rows "
                f"(x{r['peak_rss_mib'] / m['peak_rss_mib']:.2f}; target <= 1536 MiB and flat)"
            )
            print(f"bad rows quarantined: {r['quarantined']:,} of {big_bad:,}")


if __name__ == "__main__":
    main()
