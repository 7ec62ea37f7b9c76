"""Parquet parts written on a background thread, so encoding overlaps with reading."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROWS_PER_PART = 1_000_000
ROW_GROUP_SIZE = 128 * 1024
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 1}
_DONE = object()


def repeated_value_columns(table: pa.Table | pa.RecordBatch) -> list[str]:
    """The columns worth dictionary encoding: non-float columns whose values repeat (at most one
    distinct value per two rows in ``table``, a first batch standing for the rest).

    Dictionary encoding hashes every value, and for mostly distinct values (floats, ids) gives
    up once the dictionary page is full and writes them plain: wasted work and a larger file.
    """
    chosen = []
    for field in table.schema:
        if pa.types.is_floating(field.type) or pa.types.is_null(field.type):
            continue
        try:
            distinct = pc.count_distinct(table.column(field.name)).as_py()
        except pa.ArrowNotImplementedError:  # nested types: leave them to Arrow's default
            chosen.append(field.name)
            continue
        if distinct <= table.num_rows // 2:
            chosen.append(field.name)
    return chosen


class PartWriter:
    """Writes batches to ``<prefix>-NNNNN.parquet`` files of at most ``ROWS_PER_PART`` rows.

    ``write`` hands the batch to a writer thread (pyarrow releases the GIL while encoding) through
    a small bounded queue, so memory stays bounded when the disk is slower than the reader.
    """

    def __init__(self, folder: Path, prefix: str, schema: pa.Schema, *, background: bool = True):
        self.folder, self.prefix, self.schema = folder, prefix, schema
        self.paths: list[Path] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0
        self._dictionary: list[str] | None = None  # chosen from the first batch
        self._error: BaseException | None = None
        self._queue: queue.Queue[object] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._drain, name=f"write-{prefix}", daemon=True)
            self._thread.start()

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        self.rows += batch.num_rows
        if self._queue is None:
            self._write_now(batch)
            return
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def close(self) -> list[Path]:
        """Flush everything; re-raise a failure of the writer thread."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(_DONE)
            self._thread.join()
            self._queue = None
        self._close_part()
        if self._error is not None:
            raise self._error
        return self.paths

    def _drain(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not _DONE:
            if self._error is None:
                try:
                    self._write_now(item)  # type: ignore[arg-type]
                except BaseException as exc:
                    self._error = exc

    def _write_now(self, batch: pa.RecordBatch | pa.Table) -> None:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        if self._writer is None or self._part_rows >= ROWS_PER_PART:
            self._close_part()
            path = self.folder / f"{self.prefix}-{len(self.paths):05d}.parquet"
            if self._dictionary is None:
                self._dictionary = repeated_value_columns(table)
            self._writer = pq.ParquetWriter(
                path, self.schema, use_dictionary=self._dictionary, **PARQUET_OPTIONS
            )
            self.paths.append(path)
            self._part_rows = 0
        self._writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self._part_rows += table.num_rows

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class PartitionedWriter:
    """Parts per day of a timestamp column (``<prefix>-2025-01-31-NNNNN.parquet``).

    Appending a day later adds parts to it and rewrites nothing. ``partitions`` maps each part
    to its day (``none`` for rows with no timestamp).
    """

    def __init__(self, folder: Path, prefix: str, schema: pa.Schema, *, column: str) -> None:
        self.folder, self.prefix, self.schema, self.column = folder, prefix, schema, column
        self.rows = 0
        self._writers: dict[str, PartWriter] = {}
        self.partitions: dict[Path, str] = {}

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        self.rows += batch.num_rows
        days = pc.fill_null(pc.strftime(batch.column(self.column), format="%Y-%m-%d"), "none")
        for day in pc.unique(days).to_pylist():
            writer = self._writers.get(day)
            if writer is None:
                writer = PartWriter(
                    self.folder, f"{self.prefix}-{day}", self.schema, background=False
                )
                self._writers[day] = writer
            writer.write(batch.filter(pc.equal(days, day)))

    def close(self) -> list[Path]:
        paths = []
        for day in sorted(self._writers):
            for path in self._writers[day].close():
                self.partitions[path] = day
                paths.append(path)
        return paths
