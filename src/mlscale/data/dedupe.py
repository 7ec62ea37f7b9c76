"""Uniqueness across the whole dataset: ``unique`` columns and ``duplicates: {key: [...]}``.

A key can repeat anywhere in the stream, so this is a pass over the staged parts once they are all
written (and over the parent version's parts, for appends): the first row with a key is kept, later
ones go to the quarantine naming the key. The parts are rewritten only when duplicates exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from mlscale.data.contract import Contract
from mlscale.data.validate import ident, literal


@dataclass(frozen=True)
class Duplicates:
    """Rows of the new parts that repeat a key: how many, and the kept rows to write instead."""

    count: int
    kept: Iterator[pa.RecordBatch]
    rejected: pa.Table  # quarantine rows (contract columns as text, then _reason)


def unique_keys(contract: Contract) -> list[list[str]]:
    keys = [[c.name] for c in contract.columns if c.unique]
    if contract.cleaning.duplicates_key:
        keys.append(list(contract.cleaning.duplicates_key))
    return keys


def find_duplicates(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    new_parts: list[Path],
    earlier_parts: list[Path],
    *,
    batch_rows: int = 131_072,
) -> Duplicates | None:
    """None when every key is unique; otherwise the rows to keep and the rows to quarantine."""
    keys = unique_keys(contract)
    if not keys or not new_parts:
        return None
    files = [str(p) for p in [*earlier_parts, *new_parts]]
    first_new = len(earlier_parts)
    order = (
        "CASE filename "
        + " ".join(f"WHEN {literal(f)} THEN {i}" for i, f in enumerate(files))
        + " END"
    )
    source = (
        f"(SELECT *, {order} AS _file, file_row_number AS _pos FROM read_parquet("
        f"[{', '.join(literal(f) for f in files)}], filename = true, file_row_number = true))"
    )
    # Cheap check first: a hash count per key, one pass; the ranking pass only if it finds repeats.
    checks = ", ".join(
        f"count(*) FILTER (WHERE {_not_null(key)}) - count(DISTINCT ({', '.join(ident(k) for k in key)}))"
        f" FILTER (WHERE {_not_null(key)})"
        for key in keys
    )
    if not any(con.sql(f"SELECT {checks} FROM {source}").fetchall()[0]):
        return None
    ranks, reasons = [], []
    for i, key in enumerate(keys):
        cols = ", ".join(ident(k) for k in key)
        not_null = _not_null(key)
        ranks.append(
            f"CASE WHEN {not_null} THEN row_number() OVER (PARTITION BY {cols} ORDER BY _file, _pos) "
            f"END AS _rank{i}"
        )
        shown = " || ', ' || ".join(f"CAST({ident(k)} AS VARCHAR)" for k in key)
        label = ", ".join(key)
        reasons.append(
            f"CASE WHEN _rank{i} > 1 THEN 'duplicate {'key' if len(key) > 1 else 'value'} in "
            f"{literal(label)[1:-1]}: ' || {shown} END"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _ranked AS SELECT *, {', '.join(ranks)} FROM {source}"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _flagged AS SELECT *, "
        f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '') AS _reason FROM _ranked "
        f"WHERE _file >= {first_new}"
    )
    count = con.sql("SELECT count(*) FROM _flagged WHERE _reason IS NOT NULL").fetchall()[0][0]
    if not count:
        return None
    names = ", ".join(ident(c.name) for c in contract.columns)
    as_text = ", ".join(
        f"CAST({ident(c.name)} AS VARCHAR) AS {ident(c.name)}" for c in contract.columns
    )
    rejected = con.sql(
        f"SELECT {as_text}, _reason FROM _flagged WHERE _reason IS NOT NULL ORDER BY _file, _pos"
    ).to_arrow_table()
    kept = con.sql(
        f"SELECT {names} FROM _flagged WHERE _reason IS NULL ORDER BY _file, _pos"
    ).to_arrow_reader(batch_rows)
    return Duplicates(count=count, kept=iter(kept), rejected=rejected)


def _not_null(key: list[str]) -> str:
    return " AND ".join(f"{ident(k)} IS NOT NULL" for k in key)
