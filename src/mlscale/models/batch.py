"""Batch scoring: a CSV or Parquet file in, the same rows with predictions out, in batches."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.data.overlap import WriteBehind, read_ahead
from mlscale.data.pipeline import Pipeline, ValidatedBatch
from mlscale.data.schema import BOOL, FLOAT, INT, STRING
from mlscale.data.sources.duck import FileSource, open_file
from mlscale.data.writer import repeated_value_columns
from mlscale.errors import DataError, UserError
from mlscale.models.batch_workers import VersionRef, in_order, scored_in_workers
from mlscale.models.predictor import Predictor

#: Rows per scored batch: small enough that reading, predicting and writing overlap well.
SCORE_BATCH_ROWS = 65_536
#: Codecs a scored file can be written with. Snappy by default, as pyarrow and Spark write
#: Parquet: scoring a file is write-once, read-soon work, and zstd's ~30% smaller output cost
#: ~4% of the scoring throughput (the writer re-encodes every input column).
COMPRESSIONS = ("snappy", "zstd", "lz4", "none")
DEFAULT_COMPRESSION = COMPRESSIONS[0]


def check_compression(name: str) -> str:
    if name not in COMPRESSIONS:
        raise UserError(f"unknown compression {name!r}; expected one of {', '.join(COMPRESSIONS)}")
    return name


def prediction_columns(
    predictor: Predictor, table: pa.Table | pa.RecordBatch, *, one_thread: bool = False
) -> dict[str, pa.Array]:
    """``prediction`` and, for classifiers, ``proba_<class>`` columns for the rows of ``table``.

    Built from numpy arrays (no per-row Python objects); the values are those the server returns.
    """
    X = predictor.encoder.encode_table(table)
    out = predictor.model.predict_one_thread(X) if one_thread else predictor.model.predict(X)
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
    workers: int = 1,
    version: VersionRef | None = None,
    compression: str = DEFAULT_COMPRESSION,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score ``source_path`` into ``output`` (Parquet): the input's columns plus predictions.

    Reading, predicting and writing overlap: the next batch is read and the previous one
    compressed and written while a batch is predicted. ``workers`` > 1 predicts in that many
    processes, each loading ``version`` (the same model version as ``predictor``);
    ``compression`` is the output's Parquet codec (:data:`COMPRESSIONS`). The output
    appears only when complete (written to a temporary name, then renamed). Rows whose feature
    values cannot be read fail the run with the row and column named.
    """
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    check_compression(compression)
    if workers > 1 and version is None:
        raise UserError("scoring in worker processes needs the model version to load")
    source = open_file(source_path)
    features = {f.name: f.type for f in predictor.signature.features}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
    sink = _ParquetSink(tmp, compression)
    rows = 0
    try:
        with contextlib.ExitStack() as stack:
            writer = stack.enter_context(WriteBehind(sink.write))
            typed = _typed_parquet(source, features)
            if typed is None:  # text, or types to check row by row: the validating pipeline
                pipeline = stack.enter_context(Pipeline(source, types=features))
                batches = _valid_tables(pipeline.batches(SCORE_BATCH_ROWS), source_path)
            else:
                batches = typed
            tables = read_ahead(batches)
            stack.callback(tables.close)  # stop reading before the pipeline closes
            if workers > 1:
                assert version is not None
                scored = scored_in_workers(version, list(features), tables, workers)
                stack.callback(scored.close)  # and the workers before that
            elif predictor.model.concurrent_predict and (os.cpu_count() or 1) > 1:
                scored = _scored_in_threads(predictor, tables, os.cpu_count() or 1)
                stack.callback(scored.close)
            else:
                scored = ((t, prediction_columns(predictor, t)) for t in tables)
            for table, columns in scored:
                for name, values in columns.items():
                    table = table.append_column(name, values)
                writer.put(table)
                rows += table.num_rows
                if on_progress:
                    on_progress(rows)
        if sink.writer is None:
            raise DataError(f"{source_path}: no rows to score")
        sink.close()
        os.replace(tmp, output)
    finally:
        sink.close()
        tmp.unlink(missing_ok=True)
    return {"rows": rows, "output": str(output), "model": predictor.version.ref}


def _scored_in_threads(
    predictor: Predictor, tables: Iterable[pa.Table], threads: int
) -> Iterator[tuple[pa.Table, dict[str, pa.Array]]]:
    """Batches predicted side by side, one thread each, handed back in input order.

    A multi-threaded predict splits each batch across the cores and waits for the slowest part,
    so any reading or writing beside it stalls the whole batch; one thread per batch lets the
    cores stay busy with whatever work is ready.
    """
    with ThreadPoolExecutor(threads, thread_name_prefix="mlscale-score") as pool:
        yield from in_order(
            lambda t: pool.submit(prediction_columns, predictor, t, one_thread=True),
            tables,
            threads + 1,
        )


def reads_as_is(source: FileSource, features: dict[str, str]) -> bool:
    """True for Parquet files whose feature columns already have a type the model takes, so
    their batches need no conversion or row-by-row check (the Ray scorer decides the same way).

    Hive-partitioned folders are left to the pipeline, which adds the partition columns.
    """
    if source.format != "parquet" or any("=" in f.parent.name for f in source.files):
        return False
    for path in source.files:
        schema = pq.read_schema(path)
        for name, type_ in features.items():
            index = schema.get_field_index(name)
            if index < 0 or not _takes(type_, schema.field(index).type):
                return False
    return True


def _typed_parquet(source: FileSource, features: dict[str, str]) -> Iterator[pa.Table] | None:
    """The batches of Parquet files straight from Arrow when :func:`reads_as_is`, else None."""
    if not reads_as_is(source, features):
        return None
    return (
        pa.Table.from_batches([batch])
        for path in source.files
        for batch in pq.ParquetFile(path).iter_batches(SCORE_BATCH_ROWS)
        if batch.num_rows
    )


def _takes(expected: str, found: pa.DataType) -> bool:
    """Whether a column of Arrow type ``found`` can feed a feature of type ``expected`` as is."""
    if expected == INT:
        return pa.types.is_integer(found)
    if expected == FLOAT:
        return pa.types.is_integer(found) or pa.types.is_floating(found)
    if expected == BOOL:
        return pa.types.is_boolean(found)
    if expected == STRING:
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    return False


def _valid_tables(batches: Iterable[ValidatedBatch], source_path: Path) -> Iterator[pa.Table]:
    """The good rows of each batch; the first bad row stops the run with where and why."""
    for batch in batches:
        if batch.rejected is not None and batch.rejected.num_rows:
            first = batch.rejected.slice(0, 1).to_pylist()[0]
            where = f"line {first['_line']}" if first["_line"] else f"row {first['_row']}"
            raise DataError(
                f"{source_path}: {where}: {first['_reason']} "
                f"({batch.rejected.num_rows} bad row(s) in this batch); nothing was written"
            )
        yield pa.Table.from_batches([batch.good])


class _ParquetSink:
    """A Parquet file opened with the first table's schema."""

    def __init__(self, path: Path, compression: str) -> None:
        self.path, self.compression = path, compression
        self.writer: pq.ParquetWriter | None = None
        self._closed = False

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                self.path,
                table.schema,
                compression=self.compression,
                use_dictionary=repeated_value_columns(table),
            )
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None and not self._closed:
            self._closed = True
            self.writer.close()
