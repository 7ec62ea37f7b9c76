from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from mlscale import DataError, NotFoundError, Workspace
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


def test_failed_ingest_leaves_nothing(ws: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n" + b"\xff\xfe\xfa,3\n" * 10)
    with pytest.raises(DataError, match=r"bad\.csv"):
        ws.ingest(bad, name="bad")
    # Broken only after the sample used for the schema: fails mid-stream, after parts were staged.
    late = tmp_path / "late.csv"
    late.write_bytes(b"a,b\n" + b"1,2\n" * 1_500_000 + b"\xff\xfe\xfa,3\n")
    with pytest.raises(DataError, match=r"late\.csv: cannot read as CSV near row"):
        ws.ingest(late, name="late")
    with pytest.raises(NotFoundError):
        ws.ingest(tmp_path / "missing.csv", name="bad")
    assert ws.datasets() == []
    assert blobs(ws) == []
    assert list((ws.root / ".mlscale" / "tmp").glob("*")) == []
