"""Stream the result of a DuckDB query as Arrow batches of canonical types.

DuckDB knows its column types before the first row, so the schema is exact: numbers, booleans,
dates and timestamps are cast to the canonical types in Arrow; values Arrow cannot turn into text
(lists, structs, maps, blobs, intervals) are converted by DuckDB itself, nested ones to JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.schema import canonical_type
from mlscale.data.sources.base import BaseArrowSource
from mlscale.errors import ConfigError, DataError, NotFoundError

# DuckDB type ids (DuckDBPyType.id) that Arrow casts to a canonical type; any other column is
# turned into text by DuckDB: nested values as JSON, blobs as hex, the rest as DuckDB spells them.
_ARROW_CASTS = {
    *("tinyint", "smallint", "integer", "bigint", "hugeint"),
    *("utinyint", "usmallint", "uinteger", "ubigint", "uhugeint"),
    *("float", "double", "decimal", "boolean", "varchar", "enum", "null"),
    *("date", "timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns"),
    "timestamp with time zone",
}
_AS_TEXT = {
    "list": "to_json({})::VARCHAR",
    "array": "to_json({})::VARCHAR",
    "struct": "to_json({})::VARCHAR",
    "map": "to_json({})::VARCHAR",
    "union": "to_json({})::VARCHAR",
    "blob": "hex({})",
}


class DuckDBSource(BaseArrowSource):
    """The rows of a DuckDB ``query``, streamed ``batch_rows`` at a time.

    With ``database`` (a ``.duckdb`` file) the query runs against it, opened read-only; without,
    in an in-memory database where the query can read files, e.g.
    ``SELECT * FROM 'events/*.parquet' WHERE day >= '2025-01-01'``. Columns come as int64,
    float64 (also decimals), bool, string or timestamp[us] (dates too; time zones converted to
    UTC); lists, structs and maps as JSON text, blobs as hex, anything else as its text.

    >>> source = DuckDBSource("SELECT 42::INTEGER AS answer, DATE '2025-01-02' AS day")
    >>> next(source.batches()).to_pylist()
    [{'answer': 42, 'day': datetime.datetime(2025, 1, 2, 0, 0)}]
    """

    kind = "duckdb"

    def __init__(
        self, query: str, *, database: str | Path | None = None, batch_rows: int = 65_536
    ) -> None:
        self.query = query
        self.database = database
        self.batch_rows = batch_rows

    @property
    def uri(self) -> str:
        where = Path(self.database).resolve() if self.database is not None else ":memory:"
        return f"duckdb:///{where}#query={self.query.strip()}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self.batch_rows < 1:
            raise ConfigError(f"batch_rows must be at least 1, found {self.batch_rows}")
        con = self._connect()
        try:
            reader = self._reader(con)
            schema = pa.schema(
                [pa.field(f.name, pa.type_for_alias(canonical_type(f.type))) for f in reader.schema]
            )
            with reader:
                for batch in reader:
                    if batch.num_rows:
                        yield self._conform(batch, schema)
        except (duckdb.Error, pa.ArrowException) as exc:
            raise DataError(f"{self.uri}: {_first_line(exc)}") from exc
        finally:
            con.close()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self.database is None:
            return duckdb.connect()
        path = Path(self.database)
        if not path.is_file():
            raise NotFoundError(f"no such DuckDB database file: {path}")
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise DataError(
                f"{path}: cannot open as a DuckDB database: {_first_line(exc)}"
            ) from exc

    def _reader(self, con: duckdb.DuckDBPyConnection) -> pa.RecordBatchReader:
        rel = con.sql(self.query)
        if rel is None:
            raise DataError(f"{self.uri}: the query returns no rows; expected a SELECT")
        seen: set[str] = set()
        for name in rel.columns:
            if name in seen:
                raise DataError(
                    f"{self.uri}: the query returns column {name!r} more than once; give each "
                    "column its own name with AS"
                )
            seen.add(name)
        if any(t.id not in _ARROW_CASTS for t in rel.types):
            columns = []
            for name, type_ in zip(rel.columns, rel.types, strict=True):
                quoted = '"' + name.replace('"', '""') + '"'
                expr = "{}" if type_.id in _ARROW_CASTS else _AS_TEXT.get(type_.id, "{}::VARCHAR")
                columns.append(f"{expr.format(quoted)} AS {quoted}")
            rel = rel.project(", ".join(columns))
        return rel.to_arrow_reader(self.batch_rows)

    def _conform(self, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
        arrays = []
        for field, values in zip(schema, batch.columns, strict=True):
            if pa.types.is_dictionary(values.type):
                values = values.dictionary_decode()
            if values.type != field.type:
                try:
                    # Unsafe for timestamps only: nanoseconds are truncated to microseconds.
                    values = pc.cast(
                        values, field.type, safe=not pa.types.is_timestamp(values.type)
                    )
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise DataError(
                        f"{self.uri}: column {field.name!r}: cannot store {values.type} as "
                        f"{field.type} ({_first_line(exc)}); CAST it in the query"
                    ) from exc
            arrays.append(values)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
