import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlscale.data.sources import open_source
from mlscale.errors import DataError, NotFoundError


def rows(path: Path) -> tuple[pa.Table, list[pa.Table]]:
    source = open_source(path)
    good, bad = [], []
    for chunk in source.chunks():
        good.append(chunk.good)
        if chunk.rejected is not None:
            bad.append(chunk.rejected)
    return pa.Table.from_batches(good, schema=source.schema.to_arrow()), bad


def test_csv_round_trip_with_types(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,x,c,t\n1,1.5,a,2025-01-01 00:00:00\n2,,b,\n")
    table, bad = rows(path)
    assert table.schema.types == [pa.int64(), pa.float64(), pa.string(), pa.timestamp("us")]
    assert table.column("x").to_pylist() == [1.5, None]
    assert bad == []


def test_ragged_and_malformed_rows_are_quarantined(tmp_path: Path) -> None:
    lines = ["id,x"] + [f"{i},{i * 2}" for i in range(100)] + ["7", "8,9,10", "oops,3"]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(lines) + "\n")
    table, bad = rows(path)
    quarantine = pa.concat_tables(bad)
    assert table.num_rows == 100
    assert quarantine.num_rows == 3
    reasons = sorted(quarantine.column("_reason").to_pylist())
    assert reasons == [
        "column 'id': expected int64, found 'oops'",
        "expected 2 fields, found 1",
        "expected 2 fields, found 3",
    ]
    assert quarantine.column("_raw").to_pylist().count("8,9,10") == 1


def test_gzip_csv(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,x\n2,y\n"))
    table, _ = rows(path)
    assert table.column("a").to_pylist() == [1, 2]


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"a": pa.array([1, 2], pa.int32()), "b": ["x", None]}), path)
    table, _ = rows(path)
    assert table.schema.types == [pa.int64(), pa.string()]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"a,b\n", "no data rows"),
        (b"a,a\n1,2\n", "appears more than once"),
        (b"a,\n1,2\n", "column 2 has an empty name"),
        (b"a,b\n\xff\xfe,1\n", "cannot read as CSV"),
    ],
)
def test_unreadable_csv(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        rows(path)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        open_source(tmp_path / "nope.csv")
    (tmp_path / "a.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match="unsupported file type"):
        open_source(tmp_path / "a.xlsx")
    (tmp_path / "b.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        open_source(tmp_path / "b.parquet")
