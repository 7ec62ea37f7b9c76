"""Read CSV and Parquet files as a stream of typed Arrow record batches, with bad rows set aside.

A CSV is read twice: a sample (as strings) to infer the schema, then the whole file as strings,
converted batch by batch, so a malformed value costs one quarantined row instead of the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlscale.data.schema import Column as SchemaColumn
from mlscale.data.schema import Schema, canonical_type, coerce_strings, conform, infer_from_strings
from mlscale.errors import DataError, NotFoundError

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
QUARANTINE_EXTRA = [("_source_row", pa.int64()), ("_reason", pa.string()), ("_raw", pa.string())]
_BLOCK_SIZE = 4 << 20
_SAMPLE_ROWS = 100_000


@dataclass
class Chunk:
    """One step of the stream: typed good rows, and the rejected rows with their reasons."""

    good: pa.RecordBatch
    rejected: pa.Table | None = None


@dataclass
class Source:
    """A file opened for streaming; ``schema`` is known before the first batch is read."""

    path: Path
    format: str
    schema: Schema
    options: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size

    def quarantine_schema(self) -> pa.Schema:
        fields = [pa.field(c.name, pa.string()) for c in self.schema.columns]
        return pa.schema(fields + [pa.field(n, t) for n, t in QUARANTINE_EXTRA])

    def chunks(self, *, columns: Schema | None = None) -> Iterator[Chunk]:
        """Stream the file; ``columns`` overrides the inferred schema (e.g. a model's signature)."""
        schema = columns or self.schema
        if self.format == "parquet":
            yield from self._parquet_chunks(schema)
        else:
            yield from self._csv_chunks(schema)

    # -- CSV --------------------------------------------------------------------------------
    def _csv_chunks(self, schema: Schema) -> Iterator[Chunk]:
        ragged: list[pa.csv.InvalidRow] = []

        def on_invalid_row(row: pa.csv.InvalidRow) -> str:
            ragged.append(row)
            return "skip"

        names = _csv_header(self.path, self.options)
        missing = [n for n in schema.names if n not in names]
        if missing:
            raise DataError(
                f"{self.path}: missing column(s) {', '.join(map(repr, missing))}; "
                f"the file has: {', '.join(names)}"
            )
        reader = _open_csv(self.path, self.options, names, on_invalid_row)
        row_offset = 0
        try:
            for batch in reader:
                batch = batch.select(schema.names)
                typed, bad, reasons = coerce_strings(batch, schema)
                rejected = None
                if pc.any(bad).as_py():
                    rejected = self._rejected_rows(batch, bad, reasons, row_offset)
                    typed = typed.filter(pc.invert(bad))
                row_offset += batch.num_rows
                if ragged:
                    rejected = _concat(rejected, self._ragged_rows(ragged, len(names)))
                    ragged.clear()
                yield Chunk(typed, rejected)
        except (pa.ArrowInvalid, UnicodeDecodeError, OSError, EOFError) as exc:
            raise DataError(
                f"{self.path}: cannot read as CSV near row {row_offset + 1}: {exc}"
            ) from exc
        if ragged:
            empty = pa.RecordBatch.from_pylist([], schema=schema.to_arrow())
            yield Chunk(empty, self._ragged_rows(ragged, len(names)))

    def _rejected_rows(
        self, batch: pa.RecordBatch, bad: pa.Array, reasons: list[str | None], row_offset: int
    ) -> pa.Table:
        indices = pc.indices_nonzero(bad)
        rows = batch.take(indices)
        columns = {n: rows.column(n) for n in rows.schema.names}
        for col in self.schema.columns:  # columns not selected by an override still get a slot
            columns.setdefault(col.name, pa.nulls(len(indices), pa.string()))
        table = pa.table({c.name: columns[c.name] for c in self.schema.columns})
        table = table.append_column(
            "_source_row", pc.add(pc.cast(indices, pa.int64()), row_offset + 1)
        )
        table = table.append_column("_reason", pa.array([reasons[i] for i in indices.to_pylist()]))
        table = table.append_column("_raw", pa.nulls(len(indices), pa.string()))
        return table.cast(self.quarantine_schema())

    def _ragged_rows(self, rows: list[pa.csv.InvalidRow], expected: int) -> pa.Table:
        data: dict[str, pa.Array] = {
            c.name: pa.nulls(len(rows), pa.string()) for c in self.schema.columns
        }
        data["_source_row"] = pa.array([r.number for r in rows], pa.int64())
        data["_reason"] = pa.array(
            [f"expected {expected} fields, found {r.actual_columns}" for r in rows]
        )
        data["_raw"] = pa.array([r.text for r in rows])
        return pa.table(data, schema=self.quarantine_schema())

    # -- Parquet ----------------------------------------------------------------------------
    def _parquet_chunks(self, schema: Schema) -> Iterator[Chunk]:
        try:
            file = pq.ParquetFile(self.path)
            missing = [n for n in schema.names if n not in file.schema_arrow.names]
            if missing:
                raise DataError(
                    f"{self.path}: missing column(s) {', '.join(map(repr, missing))}; "
                    f"the file has: {', '.join(file.schema_arrow.names)}"
                )
            for batch in file.iter_batches(batch_size=65_536, columns=schema.names):
                yield Chunk(conform(batch, schema))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise DataError(f"{self.path}: cannot read as Parquet: {exc}") from exc


def open_source(path: str | Path) -> Source:
    """Open a CSV (optionally gzipped) or Parquet file and infer its schema.

    Raises NotFoundError for a missing file and DataError for one that cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; expected a CSV or Parquet file")
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        try:
            arrow_schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: cannot read as Parquet: {exc}") from exc
        schema = Schema([SchemaColumn(f.name, canonical_type(f.type)) for f in arrow_schema])
        _check_names(path, schema.names)
        return Source(path, "parquet", schema)
    if name.endswith(CSV_SUFFIXES):
        options = {"delimiter": "\t" if ".tsv" in name else ","}
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty; expected a header row and data rows")
        names = _csv_header(path, options)
        _check_names(path, names)
        sample = _csv_sample(path, options, names)
        if sample.num_rows == 0:
            raise DataError(f"{path}: has a header but no data rows")
        return Source(path, "csv", infer_from_strings(sample), options)
    raise DataError(
        f"{path}: unsupported file type; expected one of "
        f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
    )


def _check_names(path: Path, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name.strip():
            raise DataError(f"{path}: column {i} has an empty name")
        if name in seen:
            raise DataError(f"{path}: column name {name!r} appears more than once")
        seen.add(name)


def _csv_header(path: Path, options: dict[str, str]) -> list[str]:
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=1 << 16),
                parse_options=pacsv.ParseOptions(
                    delimiter=options["delimiter"], invalid_row_handler=lambda _row: "skip"
                ),
            )
            return list(reader.schema.names)
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from exc


def _open_csv(path: Path, options: dict[str, str], names: list[str], on_invalid_row=None):
    stream = pa.input_stream(str(path), compression="detect")
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=_BLOCK_SIZE, use_threads=True),
        parse_options=pacsv.ParseOptions(
            delimiter=options["delimiter"], invalid_row_handler=on_invalid_row
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True
        ),
    )


def _csv_sample(path: Path, options: dict[str, str], names: list[str]) -> pa.Table:
    batches = []
    rows = 0
    try:
        for batch in _open_csv(path, options, names, lambda _row: "skip"):
            batches.append(batch)
            rows += batch.num_rows
            if rows >= _SAMPLE_ROWS:
                break
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from exc
    schema = pa.schema([pa.field(n, pa.string()) for n in names])
    return pa.Table.from_batches(batches, schema=schema)


def _concat(a: pa.Table | None, b: pa.Table) -> pa.Table:
    return b if a is None else pa.concat_tables([a, b])
