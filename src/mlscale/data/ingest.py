"""``ingest``: a file in, a versioned dataset out (zstd Parquet parts, profile, quarantine).

Nothing is recorded until the whole file has been read: parts are staged in the workspace's scratch
folder and committed to the artifact store at the end, so a failed ingest leaves no trace.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.data.profile import Profile, ProfileBuilder
from mlscale.data.sources import open_source
from mlscale.store.records import DatasetVersion

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

ROWS_PER_PART = 1_000_000
ROW_GROUP_SIZE = 128 * 1024
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3}


@dataclass(frozen=True)
class IngestResult:
    dataset: DatasetVersion
    created: bool  # False when identical content was already stored as this version
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    bytes_read: int
    bytes_stored: int
    profile: Profile


class _PartWriter:
    """Writes batches to numbered Parquet files of at most ``ROWS_PER_PART`` rows."""

    def __init__(self, folder: Path, prefix: str, schema: pa.Schema) -> None:
        self.folder, self.prefix, self.schema = folder, prefix, schema
        self.paths: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None or self._rows >= ROWS_PER_PART:
            self.close()
            path = self.folder / f"{self.prefix}-{len(self.paths):05d}.parquet"
            self._writer = pq.ParquetWriter(path, self.schema, **PARQUET_OPTIONS)
            self.paths.append(path)
            self._rows = 0
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self._writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self._rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def ingest(
    ws: Workspace,
    path: Path,
    *,
    name: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Read ``path`` into dataset ``name``; ``on_progress(rows_read, rows_quarantined)``."""
    source = open_source(path)
    staging = ws.scratch_dir() / f"ingest-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        good = _PartWriter(staging, "part", source.schema.to_arrow())
        bad = _PartWriter(staging, "quarantine", source.quarantine_schema())
        builder = ProfileBuilder(source.schema)
        accepted = quarantined = 0
        try:
            for chunk in source.chunks():
                good.write(chunk.good)
                builder.update(chunk.good)
                accepted += chunk.good.num_rows
                if chunk.rejected is not None:
                    bad.write(chunk.rejected)
                    quarantined += chunk.rejected.num_rows
                if on_progress:
                    on_progress(accepted + quarantined, quarantined)
        finally:
            good.close()
            bad.close()
        profile = builder.finish()
        return _commit(ws, name, source, good.paths, bad.paths, profile, accepted, quarantined)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _commit(
    ws: Workspace,
    name: str,
    source,
    parts: list[Path],
    quarantine: list[Path],
    profile: Profile,
    accepted: int,
    quarantined: int,
) -> IngestResult:
    schema = source.schema.to_dict()
    part_hashes = [_sha256_file(p) for p in parts]
    quarantine_hashes = [_sha256_file(p) for p in quarantine]
    # Same schema, same rows and same rejects: the same version.
    content = json.dumps([schema, part_hashes, quarantine_hashes], sort_keys=True).encode()
    content_hash = hashlib.sha256(content).hexdigest()
    for p in parts + quarantine:
        ws.artifacts.put_file(p)
    profile_sha = ws.artifacts.put_bytes(profile.to_json())
    version, created = ws.metadata.add_dataset_version(
        name,
        content_hash=content_hash,
        num_rows=accepted,
        num_quarantined=quarantined,
        schema=schema,
        parts=part_hashes,
        quarantine=quarantine_hashes,
        profile_sha=profile_sha,
        source={"uri": str(source.path.resolve()), "format": source.format, "bytes": source.bytes},
    )
    return IngestResult(
        dataset=version,
        created=created,
        rows_read=accepted + quarantined,
        rows_accepted=accepted,
        rows_quarantined=quarantined,
        bytes_read=source.bytes,
        bytes_stored=sum(p.stat().st_size for p in parts + quarantine),
        profile=profile,
    )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
