"""Generate a wide, messy CSV for the ingest benchmark: ~20 mixed columns, 1% bad rows.

Written in chunks of a million rows, so a 30M-row file needs no more memory than a 1M-row one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mlscale.quickstart.loans import generate_loans

CHUNK = 1_000_000
BAD_VALUES = ["n/a?", "forty", "12.5k", "$52 000", "??", "7OO"]  # no commas: written unquoted
CORRUPTIBLE = ["age", "annual_income", "loan_amount", "credit_score", "visits", "score_b"]


def chunk(n: int, seed: int, bad_share: float) -> tuple[pa.Table, int]:
    rng = np.random.default_rng(seed)
    table = generate_loans(n, seed=seed)
    # Ids unique across chunks: the chunk's seed in front of the per-chunk number.
    ids = pc.binary_join_element_wise(f"C{seed:04d}", table.column("loan_id"), "-")
    table = table.set_column(0, "loan_id", ids)
    extra = {
        "channel": pa.array(rng.choice(["web", "branch", "phone", "partner"], n)),
        "is_repeat": pa.array(rng.random(n) < 0.3),
        "score_b": pa.array(np.round(rng.normal(0.5, 0.2, n), 4)),
        "visits": pa.array(rng.poisson(3, n)),
        "last_login": pc.add(table.column("application_date"), pa.scalar(86_400, pa.duration("s"))),
    }
    for name, values in extra.items():
        table = table.append_column(name, values)
    bad = rng.random(n) < bad_share
    target = rng.integers(0, len(CORRUPTIBLE), n)
    for column in CORRUPTIBLE:
        hit = bad & (target == CORRUPTIBLE.index(column))
        if not hit.any():
            continue
        text = (
            pc.cast(table.column(column), pa.string()).to_numpy(zero_copy_only=False).astype(object)
        )
        text[hit] = rng.choice(BAD_VALUES, int(hit.sum()))
        table = table.set_column(
            table.schema.get_field_index(column), column, pa.array(text, pa.string())
        )
    return table, int(bad.sum())


def write(path: Path, rows: int, *, bad_share: float = 0.01, seed: int = 1) -> tuple[Path, int]:
    """Write ``rows`` rows to ``path`` (CSV) unless it already exists; returns the bad-row count."""
    marker = path.with_suffix(".rows")
    if path.exists() and marker.exists() and marker.read_text().split()[0] == str(rows):
        return path, int(marker.read_text().split()[1])
    tmp = path.with_suffix(".tmp")
    writer = None
    done = bad_rows = 0
    started = time.perf_counter()
    with tmp.open("wb") as fh:
        while done < rows:
            n = min(CHUNK, rows - done)
            table, bad = chunk(n, seed + done // CHUNK, bad_share)
            bad_rows += bad
            # Every chunk is written with all-string columns so the schemas always agree.
            table = pa.table({c: pc.cast(table.column(c), pa.string()) for c in table.column_names})
            if writer is None:
                options = pacsv.WriteOptions(quoting_style="none")
                writer = pacsv.CSVWriter(fh, table.schema, write_options=options)
            writer.write_table(table)
            done += n
            print(
                f"  generated {done:,} / {rows:,} rows ({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
        if writer is not None:
            writer.close()
    tmp.replace(path)
    marker.write_text(f"{rows} {bad_rows}")
    return path, bad_rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    write(args.path, args.rows)
