"""``ingest``: a source in, a versioned dataset out (zstd Parquet parts, profile, quarantine).

Nothing is recorded until the whole source has been read and checked: parts are staged in the
workspace's scratch folder and committed to the artifact store at the end, so a failed ingest
(a read error, too many bad rows, a refused schema change) leaves no version behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.data.contract import Contract
from mlscale.data.dedupe import Duplicates, find_duplicates
from mlscale.data.pipeline import Pipeline, RunReport, conform, quarantine_schema
from mlscale.data.profile import Profile, ProfileBuilder
from mlscale.data.schema import TIMESTAMP
from mlscale.data.sources.base import BaseArrowSource
from mlscale.data.sources.duck import FileSource, open_file
from mlscale.data.writer import PartitionedWriter, PartWriter
from mlscale.errors import DataError, UserError
from mlscale.store.records import DatasetVersion

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

MODES = ("new", "append")


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
    contract: Contract
    report: RunReport = field(default_factory=RunReport)
    reasons: dict[str, int] = field(default_factory=dict)  # most common quarantine reasons


@dataclass
class _Tally:
    """What the stream produced, accumulated batch by batch."""

    read: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    # Rejected rows count towards the content, wherever they were read from.
    rejects: Any = field(default_factory=hashlib.sha256)

    def reject(self, rows: pa.Table) -> None:
        self.quarantined += rows.num_rows
        self.reasons.update(rows.column("_reason").to_pylist())
        self.rejects.update(_ipc_bytes(rows.drop_columns(["_source"])))


def ingest(
    ws: Workspace,
    source: str | Path | BaseArrowSource,
    *,
    name: str,
    contract: Contract | str | Path | None = None,
    mode: str = "new",
    partition_by: str | None = None,
    max_bad_fraction: float | None = None,
    reader_options: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Read ``source`` into dataset ``name``; ``on_progress(rows_read, rows_quarantined)``.

    ``mode="append"`` adds the rows to the latest version's parts (nothing is rewritten);
    ``partition_by`` (a timestamp column) writes parts per day, and appends inherit it;
    ``contract`` defaults to the latest version's contract, or one inferred from the data.
    """
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if max_bad_fraction is not None and not 0.0 <= max_bad_fraction <= 1.0:
        raise UserError(f"--max-bad-fraction must be between 0 and 1, got {max_bad_fraction}")
    src = (
        source
        if isinstance(source, BaseArrowSource)
        else open_file(source, **(reader_options or {}))
    )
    parent = _latest(ws, name)
    if mode == "append" and parent is None:
        raise UserError(f"cannot append to {name!r}: it has no version yet (ingest it first)")
    if mode == "append" and parent is not None:
        inherited = parent.source.get("partition_by")
        if partition_by not in (None, inherited):
            raise UserError(f"{parent.ref} is partitioned by {inherited!r}, not {partition_by!r}")
        partition_by = inherited
    contract = _resolve_contract(ws, contract, parent)
    staging = ws.scratch_dir() / f"ingest-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        with Pipeline(src, contract, temp_dir=staging) as pipeline:
            contract = pipeline.contract
            _check_partition_column(contract, partition_by)
            good = _part_writer(staging, contract, partition_by)
            bad = PartWriter(staging, "quarantine", quarantine_schema(contract), background=False)
            builder = ProfileBuilder(contract.schema())
            tally = _Tally()
            try:
                for batch in pipeline.batches():
                    good.write(batch.good)
                    builder.update(batch.good)
                    tally.read += batch.rows_read
                    if batch.rejected is not None:
                        bad.write(batch.rejected)
                        tally.reject(batch.rejected)
                    if on_progress:
                        on_progress(tally.read, tally.quarantined)
            finally:
                parts, quarantine = good.close(), bad.close()
            partitions = getattr(good, "partitions", {})
            report = pipeline.report
            with ExitStack() as stack:
                earlier = [
                    stack.enter_context(ws.artifacts.open_verified(sha))
                    for sha in (parent.parts if mode == "append" and parent else [])
                ]
                dups = find_duplicates(pipeline.con, contract, parts, earlier)
            if dups is not None:
                rewritten = _part_writer(staging / "deduplicated", contract, partition_by)
                builder = _rewrite(rewritten, contract, dups)
                parts, partitions = rewritten.close(), getattr(rewritten, "partitions", {})
                rejected = _as_quarantine(dups.rejected, contract, src.uri)
                quarantine.append(staging / "quarantine-duplicates.parquet")
                pq.write_table(rejected, quarantine[-1])
                tally.reject(rejected)
                report.steps["removed duplicates"] = dups.count
        read, quarantined, reasons = tally.read, tally.quarantined, tally.reasons
        if read and quarantined == read:
            raise DataError(
                f"{src.uri}: none of the {read:,} rows passed the contract; no version was "
                f"written. Most common: {_top(reasons)}"
            )
        if max_bad_fraction is not None and read and quarantined / read > max_bad_fraction:
            raise DataError(
                f"{src.uri}: {quarantined:,} of {read:,} rows ({quarantined / read:.2%}) failed the "
                f"contract, more than --max-bad-fraction {max_bad_fraction:.2%}; no version was "
                f"written. Most common: {_top(reasons)}"
            )
        layout = _Layout(parts, quarantine, partition_by, partitions)
        return _commit(
            ws, name, src, contract, parent, mode, layout, builder.finish(), tally, report
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class _Layout:
    parts: list[Path]
    quarantine: list[Path]
    partition_by: str | None = None
    partitions: dict[Path, str] = field(default_factory=dict)


def _check_partition_column(contract: Contract, column: str | None) -> None:
    if column is None:
        return
    if column not in contract.names:
        raise UserError(
            f"cannot partition by {column!r}: no such column; columns are: "
            f"{', '.join(contract.names)}"
        )
    if contract.column(column).type != TIMESTAMP:
        raise UserError(
            f"cannot partition by {column!r}: it is {contract.column(column).type}; "
            "partitions are days of a timestamp column"
        )


def _part_writer(folder: Path, contract: Contract, partition_by: str | None) -> Any:
    folder.mkdir(exist_ok=True)
    schema = contract.schema().to_arrow()
    if partition_by is None:
        return PartWriter(folder, "part", schema)
    return PartitionedWriter(folder, "part", schema, column=partition_by)


def _rewrite(writer: Any, contract: Contract, dups: Duplicates) -> ProfileBuilder:
    """Write the rows that survived de-duplication, and profile them."""
    schema = contract.schema().to_arrow()
    builder = ProfileBuilder(contract.schema())
    for batch in dups.kept:
        batch = conform(batch, schema)
        writer.write(batch)
        builder.update(batch)
    return builder


def _as_quarantine(rows: pa.Table, contract: Contract, uri: str) -> pa.Table:
    k = rows.num_rows
    extra = {
        "_source": pa.array([uri] * k, pa.string()),
        "_row": pa.nulls(k, pa.int64()),
        "_line": pa.nulls(k, pa.int64()),
        "_reason": rows.column("_reason"),
        "_text": pa.nulls(k, pa.string()),
    }
    data = {c.name: rows.column(c.name) for c in contract.columns} | extra
    return pa.table(data, schema=quarantine_schema(contract))


def _latest(ws: Workspace, name: str) -> DatasetVersion | None:
    versions = ws.metadata.list_dataset_versions(name)
    return versions[-1] if versions else None


def _resolve_contract(
    ws: Workspace, contract: Contract | str | Path | None, parent: DatasetVersion | None
) -> Contract | None:
    if isinstance(contract, str | Path):
        from mlscale.data.contract_io import load_contract

        return load_contract(contract)
    if contract is None and parent is not None and parent.source.get("contract_sha"):
        from mlscale.data.contract_io import loads_contract

        text = ws.artifacts.get_bytes(parent.source["contract_sha"]).decode()
        return loads_contract(text, path=f"contract of {parent.ref}")
    return contract


def _commit(
    ws: Workspace,
    name: str,
    src: FileSource | BaseArrowSource,
    contract: Contract,
    parent: DatasetVersion | None,
    mode: str,
    layout: _Layout,
    profile: Profile,
    tally: _Tally,
    report: RunReport,
) -> IngestResult:
    schema = contract.schema().to_dict()
    read, quarantined = tally.read, tally.quarantined
    bytes_stored = sum(p.stat().st_size for p in layout.parts + layout.quarantine)
    # Content-addressed: a blob that is already stored is left as it is, so this is idempotent.
    part_hashes = [ws.artifacts.put_file(p, move=True) for p in layout.parts]
    quarantine_hashes = [ws.artifacts.put_file(p, move=True) for p in layout.quarantine]
    partitions: dict[str, list[str]] = {}
    for path, sha in zip(layout.parts, part_hashes, strict=True):
        if path in layout.partitions:
            partitions.setdefault(layout.partitions[path], []).append(sha)
    num_rows, num_bad = read - quarantined, quarantined
    rejects_hash = tally.rejects.hexdigest()
    if mode == "append" and parent is not None:
        if parent.schema != schema:
            raise DataError(
                f"cannot append to {parent.ref}: the schema differs; ingest a new version instead"
            )
        part_hashes = parent.parts + part_hashes
        quarantine_hashes = parent.quarantine + quarantine_hashes
        num_rows += parent.num_rows
        num_bad += parent.num_quarantined
        profile = _read_profile(ws, parent.profile_sha).merge(profile)
        rejects_hash = hashlib.sha256(
            f"{parent.source.get('rejects_hash', '')}{rejects_hash}".encode()
        ).hexdigest()
        for day, shas in parent.source.get("partitions", {}).items():
            partitions[day] = shas + partitions.get(day, [])
    # Same schema, same rows and same rejects: the same version.
    content = json.dumps([schema, part_hashes, rejects_hash], sort_keys=True).encode()
    content_hash = hashlib.sha256(content).hexdigest()
    contract_sha, contract_hash = _store_contract(ws, contract)
    lineage = {
        "uri": src.uri,
        "format": src.kind,
        "bytes": src.bytes_read,
        "contract_sha": contract_sha,
        "contract_hash": contract_hash,
        "parent": parent.ref if parent is not None else None,
        "mode": mode,
        "rows_read": read,
        "rejects_hash": rejects_hash,
        "cleaning": report.steps,
        "evolution": report.evolution,
    }
    if layout.partition_by is not None:
        lineage |= {
            "partition_by": layout.partition_by,
            "partitions": dict(sorted(partitions.items())),
        }
    version, created = ws.metadata.add_dataset_version(
        name,
        content_hash=content_hash,
        num_rows=num_rows,
        num_quarantined=num_bad,
        schema=schema,
        parts=part_hashes,
        quarantine=quarantine_hashes,
        profile_sha=ws.artifacts.put_bytes(profile.to_json()),
        source=lineage,
    )
    return IngestResult(
        dataset=version,
        created=created,
        rows_read=read,
        rows_accepted=read - quarantined,
        rows_quarantined=quarantined,
        bytes_read=src.bytes_read,
        bytes_stored=bytes_stored,
        profile=profile,
        contract=contract,
        report=report,
        reasons=dict(tally.reasons.most_common(10)),
    )


def _store_contract(ws: Workspace, contract: Contract) -> tuple[str | None, str | None]:
    try:
        from mlscale.data.contract_io import contract_hash, dump_contract
    except ImportError:  # pragma: no cover - until contract_io lands
        return None, None
    return ws.artifacts.put_bytes(dump_contract(contract).encode()), contract_hash(contract)


def _read_profile(ws: Workspace, sha: str) -> Profile:
    return Profile.from_json(ws.artifacts.get_bytes(sha))


def _top(reasons: Counter[str]) -> str:
    return "; ".join(f"{r} ({n:,})" for r, n in reasons.most_common(3))


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
