"""SqlSource against real databases: SQLite in a temporary file and PostgreSQL (``pg_url``)."""

from __future__ import annotations

import socket
import sys
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from mlscale.data.sources.sql import SqlSource
from mlscale.errors import DataError, MissingDependencyError, NotFoundError


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'test.db'}"


def run(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def read(source: SqlSource) -> pa.Table:
    batches = list(source.batches())
    return pa.Table.from_batches(batches)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streams_a_large_table_in_batches(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        fill = (
            "INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 200000) SELECT i, 'row ' || i FROM n"
        )
    else:
        fill = "INSERT INTO big SELECT i, 'row ' || i FROM generate_series(1, 200000) AS i"
    run(db_url, "CREATE TABLE big (id BIGINT, label VARCHAR(20))", fill)

    source = SqlSource(db_url, "SELECT id, label FROM big ORDER BY id", batch_rows=50_000)
    sizes, total = [], 0
    for batch in source.batches():
        assert batch.schema == pa.schema([("id", pa.int64()), ("label", pa.string())])
        sizes.append(batch.num_rows)
        total += sum(batch.column("id").to_pylist())
    assert sizes == [50_000] * 4
    assert total == 200_000 * 200_001 // 2


def test_common_types(db_url: str) -> None:
    run(
        db_url,
        "CREATE TABLE t (i INTEGER, x DOUBLE PRECISION, s VARCHAR(10), n INTEGER)",
        "INSERT INTO t VALUES (1, 1.5, 'a', NULL), (2, NULL, NULL, NULL)",
    )
    table = read(SqlSource(db_url, "SELECT * FROM t ORDER BY i"))
    assert table.column("i").to_pylist() == [1, 2]
    assert table.column("x").to_pylist() == [1.5, None]
    assert table.column("s").to_pylist() == ["a", None]
    assert table.schema.field("i").type == pa.int64()
    assert table.schema.field("x").type == pa.float64()


def test_sqlite_types_come_from_the_first_batch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run(
        url,
        "CREATE TABLE t (id INTEGER, amount NUMERIC, note TEXT, raw BLOB, later INTEGER)",
        "INSERT INTO t VALUES (1, 2, 'x', x'00ff', NULL), (2, 2.5, NULL, NULL, NULL)",
        "INSERT INTO t VALUES (3, 4, 'z', NULL, 7)",
    )
    batches = list(SqlSource(url, "SELECT * FROM t ORDER BY id", batch_rows=2).batches())
    assert [b.num_rows for b in batches] == [2, 1]
    assert batches[0].schema == batches[1].schema
    assert batches[0].schema.types == [pa.int64(), pa.float64()] + [pa.string()] * 3
    assert batches[0].column("raw").to_pylist() == ["00ff", None]
    # 'later' had no values in the first batch, so it is a string column; 7 still arrives.
    assert batches[1].column("later").to_pylist() == ["7"]
    assert batches[1].column("amount").to_pylist() == [4.0]


def test_a_value_that_does_not_fit_the_decided_type_is_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run(url, "CREATE TABLE t (id INTEGER, v)", "INSERT INTO t VALUES (1, 10), (2, 20), (3, 2.5)")
    with pytest.raises(DataError) as err:
        list(SqlSource(url, "SELECT * FROM t ORDER BY id", batch_rows=2).batches())
    message = str(err.value)
    assert "column 'v' row 3: expected int64 (decided from the first 2 rows), found 2.5" in message
    assert "CAST" in message


@pytest.mark.postgres
def test_postgres_types(pg_url: str) -> None:
    run(
        pg_url,
        "CREATE TABLE t (i INT4, b INT8, n NUMERIC(10, 2), f FLOAT8, ok BOOL, s TEXT, d DATE, "
        "ts TIMESTAMP, tz TIMESTAMPTZ, j JSONB, u UUID, raw BYTEA, arr INT4[], late INT4)",
        "INSERT INTO t VALUES (1, 9000000000, 12.34, 0.5, true, 'x', '2025-01-02', "
        "'2025-01-02 03:04:05.123456', '2025-01-02 03:04:05+02', '{\"a\": [1, 2]}', "
        "'00000000-0000-0000-0000-000000000001', '\\x00ff', '{1,2}', NULL)",
        "INSERT INTO t (i, late) VALUES (2, 42)",
    )
    batches = list(SqlSource(pg_url, "SELECT * FROM t ORDER BY i", batch_rows=1).batches())
    types = dict(zip(batches[0].schema.names, batches[0].schema.types, strict=True))
    assert types == {
        "i": pa.int64(),
        "b": pa.int64(),
        "n": pa.float64(),
        "f": pa.float64(),
        "ok": pa.bool_(),
        "s": pa.string(),
        "d": pa.timestamp("us"),
        "ts": pa.timestamp("us"),
        "tz": pa.timestamp("us"),
        "j": pa.string(),
        "u": pa.string(),
        "raw": pa.string(),
        "arr": pa.string(),
        "late": pa.int64(),  # declared by the server, though all null in the first batch
    }
    first = batches[0].to_pylist()[0]
    assert first["n"] == 12.34
    assert first["d"] == datetime(2025, 1, 2)
    assert first["ts"] == datetime(2025, 1, 2, 3, 4, 5, 123456)
    assert first["tz"] == datetime(2025, 1, 2, 1, 4, 5)  # UTC
    assert first["j"] == '{"a": [1, 2]}'
    assert first["u"] == "00000000-0000-0000-0000-000000000001"
    assert first["raw"] == "00ff"
    assert first["arr"] == "[1, 2]"
    assert batches[1].column("late").to_pylist() == [42]


@pytest.mark.postgres
def test_postgres_query_text_is_passed_verbatim(pg_url: str) -> None:
    query = """SELECT '100%' AS pct, '{"a":1}'::jsonb ->> 'a' AS a, '10:30' AS t"""
    assert read(SqlSource(pg_url, query)).to_pylist() == [{"pct": "100%", "a": "1", "t": "10:30"}]


@pytest.mark.postgres
def test_postgres_query_runs_read_only(pg_url: str) -> None:
    run(pg_url, "CREATE SEQUENCE s")
    with pytest.raises(DataError, match="read-only transaction"):
        list(SqlSource(pg_url, "SELECT nextval('s')").batches())


def test_sqlite_query_runs_read_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run(url, "CREATE TABLE t (a INTEGER)", "INSERT INTO t VALUES (1)")
    with pytest.raises(DataError, match="readonly"):
        list(SqlSource(url, "DELETE FROM t").batches())
    assert read(SqlSource(url, "SELECT a FROM t")).num_rows == 1


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELEC 1", 'syntax error at or near "SELEC"'),
        ("SELECT * FROM missing", 'relation "missing" does not exist'),
        ("SELECT 1 AS a, 2 AS a", "column 'a' more than once"),
    ],
)
def test_postgres_query_errors(pg_url: str, query: str, expected: str) -> None:
    with pytest.raises(DataError) as err:
        list(SqlSource(pg_url, query).batches())
    assert expected in str(err.value)
    assert sa.make_url(pg_url).render_as_string(hide_password=True) in str(err.value)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELEC 1", 'near "SELEC": syntax error'),
        ("SELECT * FROM missing", "no such table: missing"),
        ("CREATE TABLE x (a INTEGER)", "readonly"),
    ],
)
def test_sqlite_query_errors(tmp_path: Path, query: str, expected: str) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run(url, "CREATE TABLE t (a INTEGER)")
    with pytest.raises(DataError, match=expected):
        list(SqlSource(url, query).batches())


def test_unreachable_server_fails_fast_with_the_password_masked() -> None:
    url = f"postgresql://analyst:s3cret@127.0.0.1:{closed_port()}/sales"
    source = SqlSource(url, "SELECT 1")
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        list(source.batches())
    assert time.monotonic() - start < 6
    message = str(err.value)
    assert message.startswith("cannot connect to postgresql://analyst:***@127.0.0.1:")
    assert "s3cret" not in message
    assert "s3cret" not in source.uri


def test_uri_masks_the_password_and_names_the_query() -> None:
    source = SqlSource("postgresql://analyst:s3cret@db/sales", " SELECT * FROM orders ")
    assert source.uri == "postgresql://analyst:***@db/sales#query=SELECT * FROM orders"
    assert source.kind == "sql"


@pytest.mark.parametrize(
    ("url", "error", "expected"),
    [
        ("not a url", DataError, "invalid database URL"),
        ("postgresql://u:pw@host:port/db", DataError, "invalid database URL"),
        ("nosuchdb://u:pw@host/db", DataError, "no dialect 'nosuchdb'"),
        ("sqlite:///no/such/file.db", NotFoundError, "no such SQLite database file"),
    ],
)
def test_bad_urls(url: str, error: type[Exception], expected: str) -> None:
    with pytest.raises(error, match=expected) as err:
        list(SqlSource(url, "SELECT 1").batches())
    assert "pw" not in str(err.value)


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "mlscale\[postgres\]"'):
        list(SqlSource("postgresql://db/sales", "SELECT 1").batches())


def test_an_empty_result_yields_no_batches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run(url, "CREATE TABLE t (a INTEGER)")
    assert list(SqlSource(url, "SELECT a FROM t").batches()) == []


def test_reader_streams_lazily(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run(url, "CREATE TABLE t (a INTEGER)", "INSERT INTO t VALUES (1), (2), (3)")
    reader = SqlSource(url, "SELECT a FROM t ORDER BY a", batch_rows=2).reader()
    assert reader.read_all().column("a").to_pylist() == [1, 2, 3]
