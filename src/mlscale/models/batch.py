"""Batch scoring: a CSV or Parquet file in, the same rows with predictions out, in batches."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.data.sources import open_source
from mlscale.errors import DataError
from mlscale.models.predictor import Predictor


def prediction_columns(
    predictor: Predictor, table: pa.Table | pa.RecordBatch
) -> dict[str, pa.Array]:
    result = predictor.predict_table(table)
    columns: dict[str, pa.Array] = {"prediction": pa.array(result.predictions)}
    if result.probabilities is not None:
        for j, label in enumerate(result.classes):
            columns[f"proba_{label}"] = pa.array(result.probabilities[:, j])
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
    source = open_source(source_path)
    features = predictor.signature.input_schema()
    missing = [n for n in features.names if n not in source.schema.names]
    if missing:
        raise DataError(
            f"{source_path}: missing feature column(s) {', '.join(map(repr, missing))} "
            f"needed by {predictor.version.ref}"
        )
    # Read the features with the model's types; other columns pass through as inferred.
    by_name = {c.name: c for c in features.columns}
    schema = type(source.schema)([by_name.get(c.name, c) for c in source.schema.columns])
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for chunk in source.chunks(columns=schema):
            if chunk.rejected is not None and chunk.rejected.num_rows:
                first = chunk.rejected.slice(0, 1).to_pylist()[0]
                raise DataError(
                    f"{source_path}: row {first['_source_row']}: {first['_reason']} "
                    f"({chunk.rejected.num_rows} bad row(s) in this batch); nothing was written"
                )
            table = pa.Table.from_batches([chunk.good])
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
