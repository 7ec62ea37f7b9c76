import gzip
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from mlscale import DataError, NotFoundError, SchemaError, UserError, Workspace
from mlscale.data.contract import ColumnRule, Contract, Evolution
from mlscale.data.datasets import read_quarantine, read_table
from mlscale.quickstart.loans import generate_loans


def blobs(ws: Workspace) -> list[Path]:
    return sorted(p for p in (ws.root / ".mlscale" / "artifacts").rglob("*") if p.is_file())


def test_ingest_accounts_for_every_row(ws: Workspace, loans_csv: Path) -> None:
    result = ws.ingest(loans_csv, name="loans")
    assert result.created and result.dataset.ref == "loans@1"
    assert result.rows_read == 3_000 == result.rows_accepted + result.rows_quarantined
    assert result.rows_quarantined == 5
    assert result.bytes_stored < result.bytes_read
    quarantine = read_quarantine(ws, result.dataset)
    assert quarantine is not None and quarantine.num_rows == 5
    assert all("expected" in r for r in quarantine.column("_reason").to_pylist())
    table = read_table(ws, result.dataset)
    assert table.num_rows == 2_995
    types = {c["name"]: c["type"] for c in result.dataset.schema["columns"]}
    assert types["age"] == "int64" and types["application_date"] == "timestamp[us]"
    assert result.profile.columns["annual_income"]["missing"] > 0


def test_same_content_same_version_changed_content_next(
    ws: Workspace, loans_csv: Path, tmp_path: Path
) -> None:
    first = ws.ingest(loans_csv, name="loans")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(loans_csv.read_bytes())
    again = ws.ingest(copy, name="loans")
    assert not again.created and again.dataset.version == 1
    other = tmp_path / "other.csv"
    pacsv.write_csv(generate_loans(500, seed=3), other)
    changed = ws.ingest(other, name="loans")
    assert changed.created and changed.dataset.version == 2
    assert [d.version for d in ws.metadata.list_dataset_versions("loans")] == [1, 2]
    assert first.dataset.content_hash != changed.dataset.content_hash


def test_undecodable_rows_are_quarantined(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "enc.csv"
    path.write_bytes(b"a,b\n1,2\n\xff\xfe\xfa,3\n4,5\n")
    result = ws.ingest(path, name="enc")
    assert (result.rows_accepted, result.rows_quarantined) == (2, 1)
    row = read_quarantine(ws, result.dataset).to_pylist()[0]
    assert row["_line"] == 3 and "not utf-8 encoded" in row["_reason"]


def test_too_many_bad_rows_writes_no_version(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "mostly_bad.csv"
    path.write_text("a,b\n" + "1,x\n" * 60 + "oops,y\n" * 40 + "2\n")
    contract = Contract([ColumnRule("a", "int64"), ColumnRule("b", "string")])
    with pytest.raises(DataError, match=r"41 of 101 rows \(40\.59%\) failed the contract"):
        ws.ingest(path, name="bad", contract=contract, max_bad_fraction=0.1)
    assert ws.datasets() == []
    result = ws.ingest(path, name="bad", contract=contract, max_bad_fraction=0.5)
    assert result.rows_quarantined == 41
    assert result.reasons == {
        "column 'a': expected int64, found 'oops'": 40,
        "Expected Number of Columns: 2 Found: 1": 1,
    }


def test_failed_ingest_leaves_nothing(ws: Workspace, tmp_path: Path) -> None:
    all_bad = tmp_path / "all_bad.csv"
    all_bad.write_bytes(b"a,b\n" + b"\xff\xfe\xfa,3\n" * 10)
    with pytest.raises(
        DataError, match=r"all_bad\.csv: no row could be read; line 2: Invalid unicode"
    ):
        ws.ingest(all_bad, name="bad")
    truncated = tmp_path / "late.csv.gz"
    data = gzip.compress(b"a,b\n" + b"1,2\n" * 300_000)
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"late\.csv\.gz: cannot read as csv.*GZIP"):
        ws.ingest(truncated, name="late")
    with pytest.raises(NotFoundError):
        ws.ingest(tmp_path / "missing.csv", name="bad")
    assert ws.datasets() == []
    assert blobs(ws) == []
    assert list((ws.root / ".mlscale" / "tmp").glob("*")) == []


def test_duplicate_keys_across_the_file_and_appends(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,v\n" + "".join(f"{i % 50},{i}\n" for i in range(120)))
    contract = Contract(
        [
            ColumnRule("id", "int64", nullable=False, unique=True),
            ColumnRule("v", "int64", nullable=False),
        ]
    )
    result = ws.ingest(path, name="ids", contract=contract)
    assert (result.rows_accepted, result.rows_quarantined) == (50, 70)
    assert result.reasons["duplicate value in id: 0"] == 2
    kept = read_table(ws, result.dataset)
    assert kept.column("v").to_pylist() == list(range(50))  # the first of each key wins
    assert not kept.schema.field("id").nullable
    more = tmp_path / "more.csv"
    more.write_text("id,v\n7,1000\n99,1001\n")
    appended = ws.ingest(more, name="ids", mode="append")
    assert (appended.rows_accepted, appended.rows_quarantined) == (1, 1)
    assert appended.dataset.num_rows == 51 and appended.dataset.parts[0] == result.dataset.parts[0]


def test_day_partitions_and_appends_rewrite_nothing(ws: Workspace, tmp_path: Path) -> None:
    first = tmp_path / "day1.csv"
    first.write_text("at,v\n2025-01-01 10:00:00,1\n2025-01-02 11:00:00,2\n2025-01-01 12:00:00,3\n")
    v1 = ws.ingest(first, name="events", partition_by="at").dataset
    assert sorted(v1.source["partitions"]) == ["2025-01-01", "2025-01-02"]
    assert v1.source["partition_by"] == "at" and len(v1.parts) == 2
    second = tmp_path / "day3.csv"
    second.write_text("at,v\n2025-01-03 09:00:00,4\n2025-01-02 23:00:00,5\n")
    v2 = ws.ingest(second, name="events", mode="append").dataset
    partitions = v2.source["partitions"]
    assert sorted(partitions) == ["2025-01-01", "2025-01-02", "2025-01-03"]
    assert partitions["2025-01-01"] == v1.source["partitions"]["2025-01-01"]  # untouched
    assert len(partitions["2025-01-02"]) == 2  # the old part plus a new one
    assert set(v1.parts) < set(v2.parts) and v2.num_rows == 5
    assert sorted(read_table(ws, v2).column("v").to_pylist()) == [1, 2, 3, 4, 5]
    with pytest.raises(UserError, match="cannot partition by 'v': it is int64"):
        ws.ingest(first, name="other", partition_by="v")


def test_schema_evolution_follows_the_contract_policy(ws: Workspace, tmp_path: Path) -> None:
    base = tmp_path / "v1.csv"
    base.write_text("id,amount\n1,10\n2,20\n")
    ws.ingest(base, name="pay")
    wider = tmp_path / "v2.csv"
    wider.write_text("id,amount,currency\n3,1.5,EUR\n")
    with pytest.raises(SchemaError, match="new column 'currency'"):
        ws.ingest(wider, name="pay")
    assert len(ws.metadata.list_dataset_versions("pay")) == 1
    relaxed = Contract(
        [ColumnRule("id", "int64"), ColumnRule("amount", "int64")],
        evolution=Evolution(new_columns="accept", widened_types="accept"),
    )
    result = ws.ingest(wider, name="pay", contract=relaxed)
    assert [c["name"] for c in result.dataset.schema["columns"]] == ["id", "amount", "currency"]
    assert result.contract.column("amount").type == "float64"
    assert any("currency" in line for line in result.report.evolution)


@pytest.mark.postgres
def test_ingest_from_postgresql(ws: Workspace, pg_url: str) -> None:
    import sqlalchemy as sa

    from mlscale.data.sources.sql import SqlSource

    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id int, amount numeric(10, 2), placed date)")
        conn.exec_driver_sql(
            "INSERT INTO orders SELECT i, i * 1.5, DATE '2025-01-01' + i FROM generate_series(1, 500) i"
        )
    engine.dispose()
    result = ws.ingest(SqlSource(pg_url, "SELECT * FROM orders ORDER BY id"), name="orders")
    assert result.rows_accepted == 500 and result.dataset.source["format"] == "sql"
    types = {c["name"]: c["type"] for c in result.dataset.schema["columns"]}
    assert types == {"id": "int64", "amount": "float64", "placed": "timestamp[us]"}
    assert "secret" not in result.dataset.source["uri"]
