"""DuckDBSource over Parquet files (in-memory database) and a .duckdb file opened read-only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlscale.data.sources.duckdb_query import DuckDBSource
from mlscale.errors import DataError, NotFoundError


def read(source: DuckDBSource) -> pa.Table:
    return pa.Table.from_batches(list(source.batches()))


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE orders AS SELECT range AS id, range * 1.5 AS total FROM range(5)")
    return path


def test_parquet_columns_are_cast_to_canonical_types(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    table = pa.table(
        {
            "small": pa.array([1, None], pa.int32()),
            "price": pa.array([Decimal("1.25"), Decimal("2.50")], pa.decimal128(6, 2)),
            "day": pa.array([date(2025, 1, 2), None], pa.date32()),
            "at": pa.array([datetime(2025, 1, 2, 3, 4, tzinfo=UTC)] * 2, pa.timestamp("ms", "UTC")),
            "ok": [True, False],
            "tags": [["a", "b"], []],
            "meta": [{"k": 1}, {"k": 2}],
            "raw": pa.array([b"\x00\xff", None], pa.binary()),
            "city": pa.array(["Oslo", "Oslo"]).dictionary_encode(),
        }
    )
    pq.write_table(table, path)

    result = read(DuckDBSource(f"SELECT * FROM '{path}'"))
    assert dict(zip(result.schema.names, result.schema.types, strict=True)) == {
        "small": pa.int64(),
        "price": pa.float64(),
        "day": pa.timestamp("us"),
        "at": pa.timestamp("us"),
        "ok": pa.bool_(),
        "tags": pa.string(),
        "meta": pa.string(),
        "raw": pa.string(),
        "city": pa.string(),
    }
    assert result.to_pylist()[0] == {
        "small": 1,
        "price": 1.25,
        "day": datetime(2025, 1, 2),
        "at": datetime(2025, 1, 2, 3, 4),
        "ok": True,
        "tags": '["a","b"]',
        "meta": '{"k":1}',
        "raw": "00FF",
        "city": "Oslo",
    }
    assert result.column("small").to_pylist() == [1, None]


def test_database_file_is_read(database: Path) -> None:
    source = DuckDBSource("SELECT * FROM orders ORDER BY id", database=database)
    result = read(source)
    assert result.column("id").to_pylist() == [0, 1, 2, 3, 4]
    assert result.schema.field("total").type == pa.float64()  # DECIMAL in DuckDB
    assert source.uri == f"duckdb:///{database.resolve()}#query=SELECT * FROM orders ORDER BY id"
    assert source.kind == "duckdb"


def test_database_file_is_opened_read_only(database: Path) -> None:
    with pytest.raises(DataError, match="read-only"):
        list(DuckDBSource("INSERT INTO orders VALUES (9, 9)", database=database).batches())
    assert read(DuckDBSource("SELECT * FROM orders", database=database)).num_rows == 5


def test_streams_in_batches_of_at_most_batch_rows() -> None:
    source = DuckDBSource("SELECT range AS i FROM range(200000)", batch_rows=50_000)
    sizes = [b.num_rows for b in source.batches()]
    assert len(sizes) >= 4
    assert max(sizes) <= 50_000
    assert sum(sizes) == 200_000


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELEC 1", 'syntax error at or near "SELEC"'),
        ("SELECT * FROM missing", "Table with name missing does not exist"),
        ("SELECT * FROM 'no/such/file.parquet'", "No files found"),
        ("SELECT 1 AS a, 2 AS a", "column 'a' more than once"),
        ("SELECT 18446744073709551615::UBIGINT AS big", "column 'big': cannot store uint64"),
    ],
)
def test_query_errors(query: str, expected: str) -> None:
    with pytest.raises(DataError) as err:
        list(DuckDBSource(query).batches())
    assert expected in str(err.value)
    assert str(err.value).startswith("duckdb:///:memory:#query=")


def test_missing_database_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such DuckDB database file"):
        list(DuckDBSource("SELECT 1", database=tmp_path / "missing.duckdb").batches())
    assert not (tmp_path / "missing.duckdb").exists()


def test_empty_result_yields_no_batches() -> None:
    assert list(DuckDBSource("SELECT 1 AS a WHERE false").batches()) == []


def test_reader_stops_early_without_leaking() -> None:
    reader = DuckDBSource("SELECT range AS i FROM range(100000)", batch_rows=1000).reader()
    assert reader.read_next_batch().num_rows == 1000
    reader.close()
