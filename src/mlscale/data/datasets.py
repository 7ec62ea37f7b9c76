"""Reading stored dataset versions back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.data.profile import Profile
from mlscale.data.schema import Schema
from mlscale.store.records import DatasetVersion

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


def iter_batches(
    ws: Workspace, dataset: DatasetVersion, *, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream a dataset version's rows, each part verified by hash before it is read."""
    for sha in dataset.parts:
        with ws.artifacts.open_verified(sha) as path:
            yield from pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=columns)


def read_table(
    ws: Workspace, dataset: DatasetVersion, *, columns: list[str] | None = None
) -> pa.Table:
    """The whole dataset version in memory (small data: training in this release)."""
    schema = Schema.from_dict(dataset.schema).to_arrow()
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    with ExitStack() as stack:
        tables = [
            pq.read_table(stack.enter_context(ws.artifacts.open_verified(sha)), columns=columns)
            for sha in dataset.parts
        ]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_quarantine(ws: Workspace, dataset: DatasetVersion) -> pa.Table | None:
    tables = []
    for sha in dataset.quarantine:
        with ws.artifacts.open_verified(sha) as path:
            tables.append(pq.read_table(path))
    return pa.concat_tables(tables) if tables else None


def read_profile(ws: Workspace, sha: str) -> Profile:
    return Profile.from_json(ws.artifacts.get_bytes(sha))
