"""Reading the prediction log that :mod:`mlscale.serve.predlog` writes.

A reader lists the sealed and open segments, keeps the good batches of a segment whose last batch
was cut short by a crash, skips segments it cannot read at all, and says so in :class:`LogStats`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mlscale.serve.predlog import BASE_SCHEMA, OPEN, SEALED, TS_TYPE, check_model_name

log = logging.getLogger("mlscale.serve.predlog")

_READ_ERRORS = (pa.ArrowException, OSError, ValueError)


@dataclass
class LogStats:
    """What a read found: ``torn`` segments kept their good batches, ``corrupt`` ones were skipped."""

    segments: int = 0
    rows: int = 0
    torn: int = 0
    corrupt: int = 0
    problems: list[str] = field(default_factory=list)


def iter_log(
    folder: str | os.PathLike[str],
    model: str | None = None,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    *,
    stats: LogStats | None = None,
) -> Iterator[pa.Table]:
    """One table per segment (oldest first) of ``model`` (default: every model).

    Keeps rows with ``since <= ts < until`` (epoch seconds or datetimes; naive ones are UTC).
    Pass a :class:`LogStats` to learn how many segments were torn or corrupt.
    """
    stats = LogStats() if stats is None else stats
    low, high = _as_ts(since), _as_ts(until)
    for path in segment_paths(Path(folder), model):
        table = read_segment(path, stats)
        if table is None:
            continue
        if low is not None:
            table = table.filter(pc.greater_equal(table["ts"], low))
        if high is not None:
            table = table.filter(pc.less(table["ts"], high))
        stats.rows += table.num_rows
        if table.num_rows:
            yield table


def read_log(
    folder: str | os.PathLike[str],
    model: str | None = None,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    *,
    stats: LogStats | None = None,
) -> pa.Table:
    """Every logged row of ``model`` (default: all models) as one table; see :func:`iter_log`.

    Segments with different columns are combined; a column missing from a segment reads as null.
    """
    tables = list(iter_log(folder, model, since, until, stats=stats))
    if not tables:
        return BASE_SCHEMA.empty_table()
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.concat_tables(_text_for_conflicts(tables), promote_options="permissive")


def _text_for_conflicts(tables: list[pa.Table]) -> list[pa.Table]:
    # A feature logged as numbers by one version and as strings by another reads as strings.
    kinds: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for f in table.schema:
            if not pa.types.is_null(f.type):
                kinds.setdefault(f.name, set()).add(f.type)
    conflicts = {name for name, types in kinds.items() if len(types) > 1}
    out = []
    for table in tables:
        for i, f in enumerate(table.schema):
            if f.name in conflicts:
                table = table.set_column(i, f.name, pc.cast(table.column(i), pa.string()))
        out.append(table)
    return out


def segment_paths(folder: Path, model: str | None) -> list[Path]:
    """The segment files of ``model`` (default: every model), sealed and open, oldest first."""
    if model is not None:
        check_model_name(model)
        folders = [folder / model]
    else:
        folders = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    paths = []
    for sub in folders:
        if sub.is_dir():
            paths += [
                p
                for p in sub.iterdir()
                if p.name.startswith("seg-") and p.name.endswith((SEALED, OPEN))
            ]
    return sorted(paths, key=lambda p: (p.parent.name, p.name.removesuffix(".open")))


def read_segment(path: Path, stats: LogStats) -> pa.Table | None:
    """A segment's good batches (a torn tail dropped, noted in ``stats``); None if unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # sealed (renamed) between listing and reading
        sealed = path.with_name(path.name.removesuffix(".open"))
        if sealed == path or not sealed.exists():
            return None
        path, data = sealed, sealed.read_bytes()
    if not data:  # created, then the process died before the first write
        return None
    is_open = path.name.endswith(OPEN)
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(data))
    except _READ_ERRORS as exc:
        if is_open:  # the crash cut the very first write short: nothing was flushed yet
            _note(stats, path, "torn", f"no complete batch ({exc})")
        else:
            _note(stats, path, "corrupt", f"unreadable, skipped ({exc})")
        return None
    batches = []
    try:
        while True:
            batches.append(reader.read_next_batch())
    except StopIteration:
        pass
    except _READ_ERRORS as exc:
        _note(stats, path, "torn", f"kept {len(batches)} good batches, dropped a torn tail ({exc})")
    stats.segments += 1
    return pa.Table.from_batches(batches, schema=reader.schema)


def _note(stats: LogStats, path: Path, kind: str, message: str) -> None:
    setattr(stats, kind, getattr(stats, kind) + 1)
    stats.problems.append(f"{path}: {message}")
    # An open segment may simply be mid-write by a live server; a sealed one should be whole.
    level = logging.INFO if path.name.endswith(OPEN) else logging.WARNING
    log.log(level, "prediction log %s: %s", path, message)


def _as_ts(value: float | datetime | None) -> pa.Scalar | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        moment = datetime.fromtimestamp(value, UTC)
    return pa.scalar(moment, TS_TYPE)
