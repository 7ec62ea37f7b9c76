"""Batch scoring: a CSV or Parquet file in, the same rows with predictions out, in batches."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.data.pipeline import Pipeline
from mlscale.data.sources.duck import open_file
from mlscale.errors import DataError
from mlscale.models.predictor import Predictor


def prediction_columns(
    predictor: Predictor, table: pa.Table | pa.RecordBatch
) -> dict[str, pa.Array]:
    """``prediction`` and, for classifiers, ``proba_<class>`` columns for the rows of ``table``.

    Built from numpy arrays (no per-row Python objects); the values are those the server returns.
    """
    out = predictor.model.predict(predictor.encoder.encode_table(table))
    if predictor.signature.task == "regression":
        return {"prediction": pa.array(out)}
    columns = {"prediction": pa.array(predictor.class_values[np.argmax(out, axis=1)])}
    for j, label in enumerate(predictor.signature.classes):
        columns[f"proba_{label}"] = pa.array(out[:, j])
    return columns


def predict_file(
    predictor: Predictor,
    source_path: Path,
    output: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score ``source_path`` into ``output`` (Parquet): the input's columns plus predictions.

    The output appears only when complete (written to a temporary name, then renamed). Rows whose
    feature values cannot be read fail the run with the row and column named.
    """
    source = open_file(source_path)
    features = {f.name: f.type for f in predictor.signature.features}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        with Pipeline(source, types=features) as pipeline:
            for batch in pipeline.batches():
                if batch.rejected is not None and batch.rejected.num_rows:
                    first = batch.rejected.slice(0, 1).to_pylist()[0]
                    where = f"line {first['_line']}" if first["_line"] else f"row {first['_row']}"
                    raise DataError(
                        f"{source_path}: {where}: {first['_reason']} "
                        f"({batch.rejected.num_rows} bad row(s) in this batch); nothing was written"
                    )
                table = pa.Table.from_batches([batch.good])
                for name, values in prediction_columns(predictor, table).items():
                    table = table.append_column(name, values)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
                rows += table.num_rows
                if on_progress:
                    on_progress(rows)
        if writer is None:
            raise DataError(f"{source_path}: no rows to score")
        writer.close()
        writer = None
        os.replace(tmp, output)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return {"rows": rows, "output": str(output), "model": predictor.version.ref}
