"""File sources read by DuckDB, through the validating pipeline."""

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlscale.data.pipeline import Pipeline
from mlscale.data.sources import open_file
from mlscale.errors import DataError, NotFoundError


def read(path: Path | str, **options: object) -> tuple[pa.Table, pa.Table | None]:
    with Pipeline(open_file(path, **options)) as pipeline:
        good, bad = [], []
        for batch in pipeline.batches():
            good.append(batch.good)
            if batch.rejected is not None:
                bad.append(batch.rejected)
        schema = pipeline.contract.schema().to_arrow()
    return pa.Table.from_batches(good, schema=schema), (pa.concat_tables(bad) if bad else None)


def test_csv_types_and_nulls(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,x,c,t,f\n1,1.5,a,2025-01-01 00:00:00,true\n2,,b,,false\n")
    table, bad = read(path)
    assert table.schema.types == [
        pa.int64(),
        pa.float64(),
        pa.string(),
        pa.timestamp("us"),
        pa.bool_(),
    ]
    assert table.column("x").to_pylist() == [1.5, None]
    assert bad is None


def test_ragged_and_malformed_rows_are_quarantined(tmp_path: Path) -> None:
    lines = ["id,x"] + [f"{i},{i * 2}" for i in range(100)] + ["7", "8,9,10", "oops,3", "4.5,1"]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(lines) + "\n")
    table, quarantine = read(path)
    assert table.num_rows == 100
    rows = sorted(quarantine.to_pylist(), key=lambda r: (r["_line"] or 0, r["_row"] or 0))
    assert [(r["_row"], r["_line"], r["_reason"]) for r in rows] == [
        (101, None, "column 'id': expected int64, found 'oops'"),
        (102, None, "column 'id': expected int64, found '4.5'"),  # no silent rounding
        (None, 102, "Expected Number of Columns: 2 Found: 1"),
        (None, 103, "Expected Number of Columns: 2 Found: 3"),
    ]
    assert rows[0]["id"] == "oops" and rows[0]["x"] == "3"  # original values kept
    assert rows[3]["_text"] == "8,9,10"


def test_compressed_csv_and_options(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress(b"a;b\n1;'x;y'\n2;z\n"))
    table, _ = read(path, delimiter=";", quote="'")
    assert table.to_pylist() == [{"a": 1, "b": "x;y"}, {"a": 2, "b": "z"}]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name,n\ncafé,1\n".encode("latin-1"))
    table, _ = read(latin, encoding="latin-1")
    assert table.column("name").to_pylist() == ["café"]


def test_parquet_file_folder_and_hive_partitions(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"a": pa.array([1, 2], pa.int32()), "b": ["x", None]}), tmp_path / "f.parquet"
    )
    table, _ = read(tmp_path / "f.parquet")
    assert table.schema.types == [pa.int64(), pa.string()]
    for day in ("2025-01-01", "2025-01-02"):
        folder = tmp_path / "events" / f"day={day}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"v": [1.0, 2.0]}), folder / "part-0.parquet")
    table, _ = read(tmp_path / "events")
    assert table.column_names == ["v", "day"] and table.num_rows == 4
    days = sorted({d.isoformat() for d in table.column("day").to_pylist()})
    assert days == ["2025-01-01T00:00:00", "2025-01-02T00:00:00"]


def test_json_lines_keep_late_keys(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    rows = [f'{{"id": {i}, "name": "n{i}"}}' for i in range(30_000)] + [
        '{"id": 1, "late": {"x": 1}}'
    ]
    path.write_text("\n".join(rows) + "\n")
    table, bad = read(path)
    assert table.column_names == ["id", "name", "late"]
    assert table.column("late").to_pylist()[-1] == '{"x":1}'
    assert table.schema.field("id").type == pa.int64() and bad is None


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("header.csv", b"a,b\n", "no data rows"),
        ("bad.xlsx", b"x", "unsupported file type"),
        ("bad.parquet", b"not parquet", "cannot read as parquet"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        read(tmp_path / name)


def test_missing_file_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        open_file(tmp_path / "nope.csv")
    (tmp_path / "a.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match="unknown reader option"):
        open_file(tmp_path / "a.csv", sheet="x")
