"""Stream the rows of a SQL query from any database SQLAlchemy can reach, as typed Arrow batches.

Column types are decided once, before the first batch, because every batch must share one schema:
from the column type the database reports where we know it (PostgreSQL type OIDs), otherwise from
the Python values of the first batch (SQLite and most drivers report no types). A later value
that does not fit the decided type is a DataError naming the column and row, never a silent change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from mlscale._lazy import require
from mlscale.data.schema import BOOL, FLOAT, INT, STRING, TIMESTAMP
from mlscale.data.sources.base import BaseArrowSource
from mlscale.errors import ConfigError, DataError, MissingDependencyError, NotFoundError

_CONNECT_TIMEOUT_S = 5
# PostgreSQL type OIDs (pg_type.oid; fixed for built-in types) of the types we map exactly.
# Anything else (json, uuid, arrays, domains, ...) is decided from its values.
_PG_TYPES = {
    16: BOOL,
    20: INT,  # int8
    21: INT,  # int2
    23: INT,  # int4
    26: INT,  # oid
    700: FLOAT,  # float4
    701: FLOAT,  # float8
    1700: FLOAT,  # numeric: decimals are stored as float64
    18: STRING,  # "char"
    19: STRING,  # name
    25: STRING,  # text
    1042: STRING,  # bpchar
    1043: STRING,  # varchar
    1082: TIMESTAMP,  # date
    1114: TIMESTAMP,  # timestamp
    1184: TIMESTAMP,  # timestamptz, stored as UTC
}


class SqlSource(BaseArrowSource):
    """The rows of ``query`` run against the database at ``url`` (any SQLAlchemy URL).

    The query runs in a read-only transaction where the database offers one (PostgreSQL, SQLite)
    and is streamed with a server-side cursor, ``batch_rows`` rows at a time. Columns come as
    int64, float64 (also decimals), bool, string or timestamp[us] (dates too; time zones
    converted to UTC); anything else as string: JSON text for JSON values and arrays, hex for
    bytes. PostgreSQL URLs use psycopg (``pip install "mlscale[postgres]"``).

    >>> source = SqlSource("sqlite://", "SELECT 1 AS id, 2.5 AS x, 'a' AS name")
    >>> next(source.batches()).to_pylist()
    [{'id': 1, 'x': 2.5, 'name': 'a'}]
    """

    kind = "sql"

    def __init__(self, url: str, query: str, *, batch_rows: int = 65_536) -> None:
        self.url = url
        self.query = query
        self.batch_rows = batch_rows

    @property
    def uri(self) -> str:
        return f"{_masked(self.url)}#query={self.query.strip()}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self.batch_rows < 1:
            raise ConfigError(f"batch_rows must be at least 1, found {self.batch_rows}")
        engine = self._engine()
        where = _masked(self.url)
        try:
            try:
                conn = engine.connect()
            except sa.exc.DBAPIError as exc:
                raise DataError(f"cannot connect to {where}: {self._reason(exc)}") from exc
            with conn:
                yield from self._stream(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"{where}: the query failed: {self._reason(exc)}") from exc
        finally:
            engine.dispose()

    def _engine(self) -> sa.Engine:
        try:
            url = sa.make_url(self.url)
        except (sa.exc.ArgumentError, ValueError) as exc:
            # Leave the URL out: unparsed, its password cannot be masked.
            raise DataError(
                f"invalid database URL ({exc}); expected dialect+driver://user:password@host/"
                "database, e.g. postgresql://analyst@db.example.com/sales or sqlite:///data.db"
            ) from exc
        backend = url.get_backend_name()
        if url.drivername in ("postgresql", "postgresql+psycopg"):
            require("psycopg", extra="postgres")
            url = url.set(drivername="postgresql+psycopg")
        if backend == "sqlite" and url.database not in (None, "", ":memory:"):
            path = Path(url.database)
            # SQLite would create a missing file and then report "no such table".
            if not url.database.startswith("file:") and not path.exists():
                raise NotFoundError(f"no such SQLite database file: {path}")
        connect_args: dict[str, Any] = {}
        if backend in ("postgresql", "mysql") and "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
        try:
            return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
        except sa.exc.NoSuchModuleError as exc:
            raise DataError(
                f"{_masked(self.url)}: SQLAlchemy has no dialect {url.drivername!r}; "
                "check the URL's scheme or install the dialect's package"
            ) from exc
        except ImportError as exc:
            raise MissingDependencyError(
                f"the database driver for {url.drivername!r} URLs is not installed ({exc}); "
                f"install it, e.g. pip install {exc.name or 'the driver'}"
            ) from exc

    def _stream(self, conn: sa.Connection) -> Iterator[pa.RecordBatch]:
        options: dict[str, Any] = {"stream_results": True, "yield_per": self.batch_rows}
        if conn.dialect.name == "postgresql" and conn.dialect.driver in ("psycopg", "psycopg2"):
            options["postgresql_readonly"] = True
        conn = conn.execution_options(**options)
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
        query = self.query
        if conn.dialect.paramstyle in ("format", "pyformat"):
            query = query.replace("%", "%%")  # no parameters: a '%' in the query is literal
        result = conn.exec_driver_sql(query)
        where = _masked(self.url)
        if not result.returns_rows:
            raise DataError(f"{where}: the query returns no rows; expected a SELECT")
        names = list(result.keys())
        _check_names(where, names)
        declared = _declared_types(result, len(names))
        schema: pa.Schema | None = None
        origins: list[str] = []
        first_row = 1
        for rows in result.partitions(self.batch_rows):
            columns = list(zip(*rows, strict=True))
            if schema is None:
                types = [
                    d if d is not None else _infer(col)
                    for d, col in zip(declared, columns, strict=True)
                ]
                schema = pa.schema([pa.field(n, t) for n, t in zip(names, types, strict=True)])
                origins = [
                    "declared by the database"
                    if d is not None
                    else f"decided from the first {len(rows)} rows"
                    for d in declared
                ]
            arrays = [
                _array(where, field, values, first_row, origin)
                for field, values, origin in zip(schema, columns, origins, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            first_row += len(rows)

    def _reason(self, exc: sa.exc.SQLAlchemyError) -> str:
        """The database's own message, first line only, with the password masked."""
        orig = getattr(exc, "orig", None)
        text = str(orig if orig is not None else exc).strip()
        reason = text.splitlines()[0] if text else type(orig or exc).__name__
        try:
            password = sa.make_url(self.url).password
        except (sa.exc.ArgumentError, ValueError):
            password = None
        return reason.replace(password, "***") if password else reason


def _masked(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<invalid database URL>"


def _check_names(where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"{where}: the query returns column {name!r} more than once; give each column "
                "its own name with AS"
            )
        seen.add(name)


def _declared_types(result: sa.CursorResult[Any], n: int) -> list[pa.DataType | None]:
    """Types the database reports for the columns (None: decide from the values)."""
    if result.dialect.name != "postgresql":
        return [None] * n
    codes = [getattr(d, "type_code", None) for d in result.cursor.description]
    return [pa.type_for_alias(_PG_TYPES[c]) if c in _PG_TYPES else None for c in codes]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float | Decimal):
        return FLOAT
    if isinstance(value, date):  # datetime too
        return TIMESTAMP
    return STRING


def _infer(values: Sequence[Any]) -> pa.DataType:
    kinds = {_kind(v) for v in values if v is not None}
    if len(kinds) == 1:
        return pa.type_for_alias(kinds.pop())
    if kinds == {INT, FLOAT}:
        return pa.float64()
    return pa.string()  # no values to go by, or a mix: string holds anything


class _Misfit(Exception):
    def __init__(self, index: int, value: Any) -> None:
        self.index, self.value = index, value


def _array(
    where: str, field: pa.Field, values: Sequence[Any], first_row: int, origin: str
) -> pa.Array:
    key = str(field.type)
    native = _NATIVE[key]
    try:
        # pa.array alone would be lenient in the wrong places (it truncates 2.5 to an int64 2),
        # so it gets only values of exactly the expected Python types.
        if all(v is None or type(v) in native for v in values):
            return pa.array(values, field.type)
        return pa.array(_convert_all(_CONVERTERS[key], values), field.type)
    except _Misfit as misfit:
        row: int | None = first_row + misfit.index
        found = f"{misfit.value!r} ({type(misfit.value).__name__})"
    except (pa.ArrowInvalid, OverflowError) as exc:
        row, found = None, f"a value out of range ({exc})"
    at = f" row {row}" if row is not None else ""
    raise DataError(
        f"{where}: column {field.name!r}{at}: expected {field.type} ({origin}), found {found}; "
        "CAST the column in the query to the type it should have"
    )


def _convert_all(convert: Any, values: Sequence[Any]) -> list[Any]:
    out = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(convert(v))
        except (TypeError, ValueError, OverflowError) as exc:
            raise _Misfit(i, v) from exc
    return out


def _to_int(v: Any) -> int:
    if isinstance(v, int) or (isinstance(v, float | Decimal) and v == int(v)):
        return int(v)
    raise TypeError


def _to_float(v: Any) -> float:
    if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        return float(v)
    raise TypeError


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise TypeError


def _to_timestamp(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, date):
        return datetime.combine(v, time())
    raise TypeError


def _to_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


_NATIVE: dict[str, tuple[type, ...]] = {
    "int64": (int,),
    "double": (int, float),
    "bool": (bool,),
    "timestamp[us]": (datetime,),
    "string": (str,),
}
_CONVERTERS = {
    "int64": _to_int,
    "double": _to_float,
    "bool": _to_bool,
    "timestamp[us]": _to_timestamp,
    "string": _to_text,
}
