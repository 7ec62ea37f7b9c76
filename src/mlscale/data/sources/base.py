"""The source contract for sources that produce rows in Python (SQL, HTTP APIs, DuckDB queries).

Such a source yields Arrow record batches with bounded memory; the ingest engine validates them,
so a source only reads: it never drops, fixes or reorders rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

import pyarrow as pa


class BaseArrowSource(ABC):
    """Rows as a stream of Arrow record batches, each at most ``batch_rows`` rows.

    Column types: sources that know them (SQL, DuckDB) give typed columns (int64, float64,
    bool, string, timestamp[us]; decimals as float64; anything else as string); sources that do
    not (JSON from HTTP APIs) give every column as string, with JSON numbers in their JSON
    spelling, booleans as ``true``/``false``, and objects or arrays as JSON text, so that the
    ingest engine infers and checks types the same way as for CSV. Every batch has the same schema.
    """

    kind: ClassVar[str]

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the rows came from, for lineage; never contains a secret (passwords masked)."""

    @abstractmethod
    def batches(self) -> Iterator[pa.RecordBatch]:
        """Read the rows. Errors are ``mlscale.errors.DataError`` naming the source and cause."""

    def reader(self) -> pa.RecordBatchReader:
        """The rows as a reader (what DuckDB and pyarrow consume), read lazily."""
        it = self.batches()
        first = next(it, None)
        if first is None:
            raise ValueError("empty source")  # the engine checks emptiness before this
        return pa.RecordBatchReader.from_batches(first.schema, _chain(first, it))

    @property
    def bytes_read(self) -> int:
        """Bytes received so far (0 where unknown)."""
        return 0


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest
