"""Files read by DuckDB: CSV (plain, gzip, zstd), JSON Lines, Parquet (files, folders, hive).

Text formats are read as text (every column VARCHAR) so that type conversion, and the reasons a
value does not convert, are the contract's business, not the reader's. Rows that cannot be split
into the header's columns are kept by DuckDB's reject tables, with their line and text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from mlscale.data.validate import literal
from mlscale.errors import DataError, NotFoundError

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.zst", ".csv.zstd")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_OPTIONS = ("delimiter", "quote", "escape", "encoding", "header", "compression")


@dataclass
class FileSource:
    """A file, folder or glob that DuckDB reads; ``options`` are reader options (CSV only)."""

    path: str
    format: str  # "csv" | "jsonl" | "parquet"
    options: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return str(Path(self.path).resolve()) if "*" not in self.path else self.path

    @property
    def kind(self) -> str:
        return self.format

    @property
    def bytes_read(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def relation_sql(self, con: duckdb.DuckDBPyConnection) -> str:
        """A ``FROM`` clause reading every row."""
        path = literal(self.path)
        if self.format == "parquet":
            return f"read_parquet({path}, hive_partitioning = true, union_by_name = true)"
        if self.format == "jsonl":
            keys = self._json_keys(con)
            columns = "{" + ", ".join(f"{literal(k)}: 'VARCHAR'" for k in keys) + "}"
            return f"read_json({path}, format = 'newline_delimited', columns = {columns})"
        opts = {"header": True} | {k: v for k, v in self.options.items() if v is not None}
        if "delimiter" in opts:
            opts["delim"] = opts.pop("delimiter")
        args = ", ".join(f"{k} = {literal(v)}" for k, v in opts.items())
        return (
            f"read_csv({path}, all_varchar = true, store_rejects = true, "
            f"null_padding = false, {args})"
        )

    def _json_keys(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        # Every key of every object: DuckDB's reader samples, so a key that shows up only late in
        # the file would be dropped silently. Sampled keys keep their order; late ones follow.
        path = literal(self.path)
        sampled = con.sql(f"SELECT * FROM read_json({path}, format = 'newline_delimited') LIMIT 0")
        every = con.sql(
            "SELECT DISTINCT unnest(json_keys(j)) "
            f"FROM read_json_objects({path}, format = 'newline_delimited') t(j)"
        ).fetchall()
        late = sorted({k for (k,) in every} - set(sampled.columns))
        return list(sampled.columns) + late

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
        """(line, reason, text) of rows the CSV reader could not split into columns."""
        if self.format != "csv":
            return []
        # Every scan (the sample too) appends to the reject tables: keep the last, full one.
        rows = con.sql(
            "SELECT line, error_message, csv_line FROM reject_errors "
            "WHERE scan_id = (SELECT max(scan_id) FROM reject_errors) ORDER BY line"
        ).fetchall()
        return [(int(line), str(msg), str(text)) for line, msg, text in rows]


def open_file(path: str | Path, **options: Any) -> FileSource:
    """A file source for ``path`` (a file, a folder of Parquet files, or a glob)."""
    text = str(path)
    p = Path(text)
    unknown = set(options) - set(CSV_OPTIONS)
    if unknown:
        raise DataError(f"unknown reader option(s): {', '.join(sorted(unknown))}")
    if p.is_dir():
        files = sorted(
            f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(PARQUET_SUFFIXES)
        )
        if not files:
            raise DataError(f"{p}: a folder with no Parquet files (*.parquet)")
        return FileSource(str(p / "**" / "*.parquet"), "parquet", files=files)
    if any(ch in text for ch in "*?["):
        files = (
            sorted(Path().glob(text)) if not p.is_absolute() else sorted(Path("/").glob(text[1:]))
        )
        if not files:
            raise NotFoundError(f"no files match {text}")
        fmt = _format(files[0])
        return FileSource(text, fmt, options if fmt == "csv" else {}, files)
    if not p.exists():
        raise NotFoundError(f"no such file: {p}")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty; expected a header row and data rows")
    fmt = _format(p)
    if fmt != "csv" and options:
        raise DataError(f"{p}: reader options ({', '.join(options)}) apply to CSV files only")
    if fmt == "csv" and ".tsv" in p.name.lower():
        options.setdefault("delimiter", "\t")
    return FileSource(str(p), fmt, options, [p])


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataError(
        f"{path}: unsupported file type; expected one of "
        f"{', '.join(CSV_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES)}"
    )
