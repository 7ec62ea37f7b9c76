"""Batch scoring: batches in order, in one process or several, and nothing left on failure."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlscale import DataError, Workspace
from mlscale.models import batch
from mlscale.quickstart.loans import generate_loans


def _expected(ws: Workspace, table: pa.Table) -> np.ndarray:
    predictor = ws.predictor("loans@production")
    return predictor.model.predict(predictor.encoder.encode_table(table))


def test_many_batches_keep_their_order_in_one_process_and_in_workers(
    trained_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "SCORE_BATCH_ROWS", 700)  # 5,000 rows: 8 batches
    table = generate_loans(5_000, seed=11, label=False)
    pq.write_table(table, tmp_path / "in.parquet")
    expected = _expected(trained_ws, table)
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"out-{workers}.parquet"
        result = trained_ws.predict(
            "loans@production", tmp_path / "in.parquet", out, workers=workers
        )
        assert result["rows"] == 5_000
        outputs[workers] = pq.read_table(out)
        assert outputs[workers]["loan_id"].to_pylist() == table["loan_id"].to_pylist()
        np.testing.assert_allclose(outputs[workers]["proba_1"].to_numpy(), expected[:, 1])
    assert outputs[1].equals(outputs[2])  # the same file, whatever the number of processes


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_row_in_a_late_batch_leaves_no_output(
    trained_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(batch, "SCORE_BATCH_ROWS", 500)
    folder = tmp_path / "files"
    folder.mkdir()
    table = generate_loans(3_000, seed=12, label=False)
    pacsv.write_csv(table, folder / "in.csv")
    lines = (folder / "in.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2_500].split(",")
    cells[header.index('"age"')] = "old"
    lines[2_500] = ",".join(cells)
    (folder / "in.csv").write_text("\n".join(lines) + "\n")
    out = folder / "out.parquet"
    with pytest.raises(DataError, match=r"row 2500: column 'age'"):
        trained_ws.predict("loans@production", folder / "in.csv", out, workers=workers)
    assert list(folder.iterdir()) == [folder / "in.csv"]  # no output, no temporary file


def test_workers_must_be_positive(trained_ws: Workspace, tmp_path: Path) -> None:
    pq.write_table(generate_loans(10, seed=1, label=False), tmp_path / "in.parquet")
    with pytest.raises(Exception, match="workers must be at least 1"):
        trained_ws.predict("loans@production", tmp_path / "in.parquet", tmp_path / "o", workers=0)


def test_the_output_codec_is_snappy_unless_asked(trained_ws: Workspace, tmp_path: Path) -> None:
    from mlscale.cli.commands import COMPRESSIONS

    assert COMPRESSIONS == batch.COMPRESSIONS  # the CLI's literal copy
    table = generate_loans(300, seed=2, label=False)
    pq.write_table(table, tmp_path / "in.parquet")
    codecs = {}
    for asked in (None, "zstd"):
        out = tmp_path / f"out-{asked}.parquet"
        options = {} if asked is None else {"compression": asked}
        trained_ws.predict("loans@production", tmp_path / "in.parquet", out, **options)
        codecs[asked] = pq.ParquetFile(out).metadata.row_group(0).column(0).compression
    assert codecs == {None: "SNAPPY", "zstd": "ZSTD"}
    with pytest.raises(Exception, match="unknown compression 'gzipp'; expected one of snappy"):
        trained_ws.predict(
            "loans@production", tmp_path / "in.parquet", tmp_path / "o", compression="gzipp"
        )
    assert not (tmp_path / "o").exists()
