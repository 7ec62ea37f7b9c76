"""Stream any source through its contract: typed good rows out, bad rows out with reasons.

One DuckDB connection per run, with bounded memory and threads; file sources are scanned by
DuckDB's own readers, Python sources (SQL, HTTP) are handed to it as an Arrow stream.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.contract import ColumnRule, Contract
from mlscale.data.schema import FLOAT, INT, canonical_type, infer_from_strings
from mlscale.data.sources.base import BaseArrowSource
from mlscale.data.sources.duck import FileSource
from mlscale.data.validate import compile_contract, ident
from mlscale.errors import DataError, SchemaError

SAMPLE_ROWS = 100_000
BATCH_ROWS = 131_072
META_COLUMNS = [
    ("_source", pa.string()),
    ("_row", pa.int64()),
    ("_line", pa.int64()),
    ("_reason", pa.string()),
    ("_text", pa.string()),
]


@dataclass
class ValidatedBatch:
    good: pa.RecordBatch
    rejected: pa.Table | None = None
    rows_read: int = 0  # good + rejected


@dataclass
class RunReport:
    """What cleaning changed, and what the contract had to accept from the source."""

    steps: dict[str, int] = field(default_factory=dict)
    evolution: list[str] = field(default_factory=list)
    fills: dict[str, Any] = field(default_factory=dict)


def quarantine_schema(contract: Contract) -> pa.Schema:
    return pa.schema([pa.field(c.name, pa.string()) for c in contract.columns] + META_COLUMNS)


def draft_contract(sample: pa.Table) -> Contract:
    """Column types from a sample: inferred for text columns, kept for typed ones."""
    try:
        from mlscale.data.infer import infer_contract
    except ImportError:  # pragma: no cover - the simple fallback until inference lands
        infer_contract = None
    if infer_contract is not None:
        return infer_contract(sample)
    text = [n for n in sample.column_names if sample.schema.field(n).type == pa.string()]
    inferred = {c.name: c.type for c in infer_from_strings(sample.select(text)).columns}
    return Contract(
        [
            ColumnRule(n, inferred.get(n) or canonical_type(sample.schema.field(n).type))
            for n in sample.column_names
        ]
    )


class Pipeline:
    """``Pipeline(source, contract).batches()``: validated batches, then ``close()``.

    Without a contract, one is drafted from a sample; ``types`` then fixes the type of named
    columns (a model's features), which must be present.
    """

    def __init__(
        self,
        source: FileSource | BaseArrowSource,
        contract: Contract | None = None,
        *,
        temp_dir: Path | None = None,
        memory_limit: str = "1GB",
        threads: int | None = None,
        types: dict[str, str] | None = None,
    ) -> None:
        self.source = source
        config = {
            "threads": threads or os.cpu_count() or 1,
            "memory_limit": memory_limit,
            "preserve_insertion_order": True,
        }
        if temp_dir is not None:
            config["temp_directory"] = str(temp_dir)
        self.con = duckdb.connect(config=config)
        self.con.execute("SET enable_progress_bar = false")
        # DuckDB turns a long IN list (allowed values) into a hash join, which gives the rows
        # back out of input order when it runs on several threads; kept as an expression, the
        # rows come out in order, so row numbers and scored outputs line up with the input.
        self.con.execute("SET disabled_optimizers = 'in_clause'")
        self.report = RunReport()
        try:
            self._prepare(contract, types or {})
        except BaseException:
            self.close()
            raise

    def _prepare(self, contract: Contract | None, types: dict[str, str]) -> None:
        source = self.source
        try:
            self._from, sample = self._open()
        except duckdb.Error as exc:
            raise DataError(
                f"{source.uri}: cannot read as {source.kind}: {_first_line(exc)}"
            ) from exc
        if sample.num_rows == 0:
            ragged = source.rejects(self.con) if isinstance(source, FileSource) else []
            if ragged:
                line, reason, _ = ragged[0]
                raise DataError(f"{source.uri}: no row could be read; line {line}: {reason}")
            raise DataError(f"{source.uri}: no data rows")
        self.sample = sample
        if contract is None:
            self.contract = _with_types(draft_contract(sample), types, source.uri)
        else:
            self.contract = self._evolve(contract, sample)
        fills = self._compute_fills(sample)
        self.report.fills = dict(fills)
        self.plan = compile_contract(
            self.contract, source=self._from, present=set(sample.column_names), fills=fills
        )

    # -- opening ----------------------------------------------------------------------------
    def _open(self) -> tuple[str, pa.Table]:
        if isinstance(self.source, FileSource):
            from_sql = self.source.relation_sql(self.con)
            sample = self.con.sql(f"SELECT * FROM {from_sql} LIMIT {SAMPLE_ROWS}").to_arrow_table()
            return from_sql, sample
        batches, rows = [], 0
        stream = self.source.batches()
        for batch in stream:
            batches.append(batch)
            rows += batch.num_rows
            if rows >= SAMPLE_ROWS:
                break
        if not batches:
            return "(SELECT 1 WHERE FALSE)", pa.table({})
        reader = pa.RecordBatchReader.from_batches(batches[0].schema, _chain(batches, stream))
        self.con.register("_source_rows", reader)
        return "_source_rows", pa.Table.from_batches(batches)

    def _evolve(self, contract: Contract, sample: pa.Table) -> Contract:
        found = draft_contract(sample)
        try:
            from mlscale.data.evolution import compare_schemas
        except ImportError:  # pragma: no cover - until evolution lands: exact columns only
            missing = [n for n in contract.names if n not in sample.column_names]
            if missing:
                raise SchemaError(f"{self.source.uri}: missing column(s) {missing}") from None
            return contract
        declared = {c.name: c.type for c in contract.columns}
        found_types = []
        for col in found.columns:
            type_ = col.type
            # A text column's type is only a guess from the sample: the contract's type stands
            # (values that do not convert are quarantined), unless the guess widens it.
            is_text = sample.schema.field(col.name).type == pa.string()
            if is_text and col.name in declared and (declared[col.name], type_) != (INT, FLOAT):
                type_ = declared[col.name]
            found_types.append((col.name, type_))
        changes = compare_schemas(contract, found_types)
        refusals = changes.refusals(contract.evolution)
        if refusals:
            where = f" (contract {contract.path})" if contract.path else ""
            raise SchemaError(f"{self.source.uri}: " + "; ".join(refusals) + where)
        self.report.evolution = changes.describe()
        return changes.apply(contract)

    def _compute_fills(self, sample: pa.Table) -> dict[str, Any]:
        """Median and mode imputation values, from the typed sample."""
        wanted = {
            n: f.strategy
            for n, f in self.contract.cleaning.missing.items()
            if f.strategy in ("median", "mode")
        }
        if not wanted:
            return {}
        plan = compile_contract(
            self.contract, source="_sample", present=set(sample.column_names), bounds={}
        )
        self.con.register("_sample", sample)
        typed = f"SELECT * FROM ({plan.sql}) WHERE _reason IS NULL"
        parts = [
            f"{'median' if how == 'median' else 'mode'}({ident(n)}) AS {ident(n)}"
            for n, how in wanted.items()
        ]
        row = self.con.sql(f"SELECT {', '.join(parts)} FROM ({typed})").fetchall()[0]
        self.con.unregister("_sample")
        return {n: _plain(v) for n, v in zip(wanted, row, strict=True) if v is not None}

    # -- reading ----------------------------------------------------------------------------
    def batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[ValidatedBatch]:
        columns = self.plan.columns
        out_schema = self.contract.schema().to_arrow()
        qschema = quarantine_schema(self.contract)
        offset = 0
        try:
            reader = self.con.sql(self.plan.sql).to_arrow_reader(batch_rows)
            for batch in reader:
                n = batch.num_rows
                bad = pc.is_valid(batch.column("_reason"))
                n_bad = pc.sum(bad).as_py() or 0
                good = (
                    batch.select(columns)
                    if n_bad == 0
                    else batch.filter(pc.invert(bad)).select(columns)
                )
                for key, label in self.plan.counters.items():  # changes kept, on accepted rows
                    changed = batch.column(key)
                    if n_bad:
                        changed = pc.and_(changed, pc.invert(bad))
                    self.report.steps[label] = self.report.steps.get(label, 0) + (
                        pc.sum(pc.cast(changed, pa.int64())).as_py() or 0
                    )
                rejected = self._rejected(batch, bad, offset, qschema) if n_bad else None
                offset += n
                yield ValidatedBatch(conform(good, out_schema), rejected, n)
        except duckdb.Error as exc:
            raise DataError(
                f"{self.source.uri}: cannot read as {self.source.kind} near row {offset + 1}: "
                f"{_first_line(exc)}"
            ) from exc
        if isinstance(self.source, FileSource):
            ragged = self.source.rejects(self.con)
            if ragged:
                empty = pa.RecordBatch.from_pylist([], schema=out_schema)
                yield ValidatedBatch(empty, self._ragged(ragged, qschema), len(ragged))

    def _rejected(
        self, batch: pa.RecordBatch, bad: pa.Array, offset: int, schema: pa.Schema
    ) -> pa.Table:
        idx = pc.indices_nonzero(bad)
        rows = batch.take(idx)
        raw = [orjson.loads(text) for text in rows.column("_raw").to_pylist()]
        data = {
            c.name: pa.array([r.get(c.name) for r in raw], pa.string())
            for c in self.contract.columns
        }
        k = len(idx)
        data["_source"] = pa.array([self.source.uri] * k, pa.string())
        data["_row"] = pc.add(pc.cast(idx, pa.int64()), offset + 1)
        data["_line"] = pa.nulls(k, pa.int64())
        data["_reason"] = rows.column("_reason")
        data["_text"] = pa.nulls(k, pa.string())
        return pa.table(data, schema=schema)

    def _ragged(self, rows: list[tuple[int, str, str]], schema: pa.Schema) -> pa.Table:
        k = len(rows)
        data: dict[str, pa.Array] = {
            c.name: pa.nulls(k, pa.string()) for c in self.contract.columns
        }
        data["_source"] = pa.array([self.source.uri] * k, pa.string())
        data["_row"] = pa.nulls(k, pa.int64())
        data["_line"] = pa.array([r[0] for r in rows], pa.int64())
        data["_reason"] = pa.array([r[1] for r in rows], pa.string())
        data["_text"] = pa.array([r[2] for r in rows], pa.string())
        return pa.table(data, schema=schema)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_types(contract: Contract, types: dict[str, str], uri: str) -> Contract:
    missing = [n for n in types if n not in contract.names]
    if missing:
        raise DataError(
            f"{uri}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the source has: {', '.join(contract.names)}"
        )
    columns = [replace(c, type=types.get(c.name, c.type)) for c in contract.columns]
    return replace(contract, columns=columns)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema.equals(schema):
        return batch
    return pa.RecordBatch.from_arrays(
        [pc.cast(batch.column(i), f.type) for i, f in enumerate(schema)], schema=schema
    )


def _chain(first: list[pa.RecordBatch], rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield from first
    yield from rest


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
