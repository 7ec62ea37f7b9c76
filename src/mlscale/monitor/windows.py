"""Live windows: fold new prediction-log rows into per-bucket summaries, and read any window back.

:func:`update_windows` reads only what it has not read before: the store keeps, per log
segment, how many rows were consumed (an open segment is re-read from there as it grows) and
whether the segment is finished. Each segment is summarised (one bucket per ``resolution``,
one minute by default, per model version) and committed with its cursor in one transaction, so
memory holds one segment at a time and a crash never counts a row twice. A corrupt segment is
reported, remembered and skipped; rows of a version that is not registered, or has no usable
reference, are skipped with a note; other segments and models go on.

:func:`load_window` merges the stored buckets of a time range (``window="1h"``, ``since`` and
``until``) or of the newest buckets that hold ``last_rows`` rows: O(buckets x bins).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.config import STATE_DIR
from mlscale.errors import ConfigError, MlscaleError, NotFoundError, UserError
from mlscale.monitor.reference import NumericReference, Reference, load_reference
from mlscale.monitor.store import WindowStore, open_store
from mlscale.monitor.summary import Summarizer, WindowSummary
from mlscale.refs import Ref
from mlscale.serve.predlog import OPEN
from mlscale.serve.predlog_reader import LogStats, read_segment, segment_paths

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion
    from mlscale.workspace import Workspace

log = logging.getLogger("mlscale.monitor")

DEFAULT_RESOLUTION_S = 60
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``15m``, ``1h``, ``7d`` or ``2w``.

    >>> parse_duration("1h"), parse_duration("90s"), parse_duration("2d")
    (3600, 90, 172800)
    """
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            f"invalid duration {text!r}: expected a number and a unit, e.g. 90s, 15m, 1h, 7d"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def log_folder(ws: Workspace) -> Path:
    """The prediction log the server writes."""
    return ws.root / STATE_DIR / "predictions"


def reference_id(reference: Reference) -> str:
    """A short fingerprint of a reference's bins: summaries counted on other bins do not merge.

    (The bins, not the whole JSON: two references with the same bins count alike.)
    """
    layout = [
        (role, name, ref.edges.tolist() if isinstance(ref, NumericReference) else ref.categories)
        for role, columns in (("f", reference.features), ("o", reference.outputs))
        for name, ref in columns.items()
    ]
    return hashlib.sha256(json.dumps(layout).encode()).hexdigest()[:16]


@dataclass
class UpdateResult:
    """What one :func:`update_windows` call did for one model."""

    model: str
    rows: int = 0  # new rows folded into summaries
    segments: int = 0  # segments with new rows
    buckets: int = 0  # bucket summaries written
    skipped_rows: int = 0  # rows not summarised: unknown version or no reference
    problems: list[str] = field(default_factory=list)


@dataclass
class _Version:
    reference: Reference
    ref_id: str
    summarizer: Summarizer


def update_windows(
    ws: Workspace,
    model: str | None = None,
    *,
    resolution: str | None = None,
    rebuild: bool = False,
) -> list[UpdateResult]:
    """Summarise the prediction-log rows of ``model`` (default: every model in the log) that no
    earlier call has summarised. ``resolution`` (default ``1m``) is the bucket width; changing it
    needs ``rebuild=True``, which starts again from the beginning of the log.
    """
    folder = log_folder(ws)
    if resolution is not None:
        parse_duration(resolution)  # a bad argument fails here, not once per model
    if model is not None:
        Ref.parse(model)  # a clear error for a bad name
        models = [model.partition("@")[0]]
    else:
        models = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    results = []
    with open_store(ws) as store:
        for name in models:
            result = UpdateResult(name)
            try:
                _update_model(ws, store, folder, name, resolution, rebuild, result)
            except MlscaleError as exc:  # one model's trouble does not stop the others
                result.problems.append(str(exc))
                log.warning("monitor update of %r: %s", name, exc)
            results.append(result)
    return results


def _update_model(
    ws: Workspace,
    store: WindowStore,
    folder: Path,
    model: str,
    resolution: str | None,
    rebuild: bool,
    result: UpdateResult,
) -> None:
    wanted = parse_duration(resolution) if resolution else None
    with store.transaction():
        if rebuild:
            store.drop(model)
        stored = store.resolution(model)
        if stored is None:
            store.set_resolution(model, wanted or DEFAULT_RESOLUTION_S)
        elif wanted is not None and wanted != stored:
            raise ConfigError(
                f"the summaries of {model!r} are per {stored} s, not {wanted} s; to change that, "
                f"rebuild them: mlscale monitor update {model} --resolution {resolution} --rebuild"
            )
    width = store.resolution(model) or DEFAULT_RESOLUTION_S
    versions: dict[int, _Version | str] = {}
    paths = segment_paths(folder, model)
    for path in paths:
        segment = path.name.removesuffix(".open")
        with store.transaction():  # the cursor is read under the write lock: no double counting
            position = store.position(model, segment)
            if position.done:
                continue
            sealed = not path.name.endswith(OPEN)
            stats = LogStats()
            table = read_segment(path, stats)
            if table is None:
                if stats.corrupt:  # a sealed segment that cannot be read: remember, skip it
                    note = f"corrupt log segment skipped: {stats.problems[-1]}"
                    store.set_position(model, segment, position.rows, True, note)
                    result.problems.append(note)
                continue
            if stats.torn and sealed:
                result.problems.append(stats.problems[-1])
            new = table.slice(position.rows)
            if new.num_rows:
                result.segments += 1
                skipped = _summarise(ws, store, model, new, width, segment, position.rows,
                                     versions, result)  # fmt: skip
                note = f"{skipped} rows skipped" if skipped else None
            else:
                note = None
            store.set_position(model, segment, max(table.num_rows, position.rows), sealed, note)
    with store.transaction():
        store.forget_segments(model, {p.name.removesuffix(".open") for p in paths})


def _summarise(
    ws: Workspace,
    store: WindowStore,
    model: str,
    table: pa.Table,
    width: int,
    segment: str,
    offset: int,
    versions: dict[int, _Version | str],
    result: UpdateResult,
) -> int:
    """Fold ``table`` (new rows of one segment) into the stored buckets; returns rows skipped."""
    skipped = 0
    ts = np.asarray(pc.cast(table.column("ts"), pa.int64()), dtype=np.int64)
    version_ids = np.asarray(table.column("version").fill_null(0), dtype=np.int64)
    for v in np.unique(version_ids).tolist():
        rows = version_ids == v
        entry = versions.get(v)
        if entry is None:
            entry = versions[v] = _prepare(ws, model, v)
        if isinstance(entry, str):
            skipped += int(rows.sum())
            if entry not in result.problems:
                result.problems.append(entry)
            continue
        part = table if rows.all() else table.filter(pa.array(rows))
        buckets = ts[rows] // (width * 1_000_000)
        seed = zlib.crc32(f"{segment}:{offset}:{v}".encode())
        for bucket, summary in entry.summarizer.summarize(part, buckets, seed=seed).items():
            start = bucket * width
            summary.start, summary.end = float(start), float(start + width)
            stored = store.get_bucket(model, v, start)
            if stored is not None:
                if stored.ref != entry.ref_id:
                    raise UserError(
                        f"the stored summaries of {model}@{v} were counted on another reference; "
                        f"rebuild them: mlscale monitor update {model} --rebuild"
                    )
                summary = WindowSummary.from_bytes(stored.summary, entry.reference).merge(summary)
            store.put_bucket(model, v, start, entry.ref_id, summary.rows, summary.to_bytes())
            result.buckets += 1
        result.rows += int(rows.sum())
    result.skipped_rows += skipped
    return skipped


def _prepare(ws: Workspace, model: str, version: int) -> _Version | str:
    """The reference of ``model@version`` ready to count on, or why there is none."""
    try:
        mv = ws.model(f"{model}@{version}")
        reference = load_reference(ws, mv)
    except NotFoundError as exc:
        return f"rows of {model}@{version} skipped: {exc}"
    return _Version(reference, reference_id(reference), Summarizer(reference))


# --- reading windows back ---


@dataclass
class Window:
    """A merged window of one model version, with its reference."""

    version: ModelVersion
    reference: Reference
    summary: WindowSummary
    buckets: int
    description: str  # "last 1h", "last 10,000 rows", "all logged rows"

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.summary.start, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.summary.end, UTC)


def resolve_version(ws: Workspace, ref: str) -> ModelVersion:
    """``name@version`` or ``name@alias``; a bare name is its ``production`` version if it has
    one, else its latest."""
    if "@" in ref:
        return ws.model(ref)
    try:
        return ws.model(f"{ref}@production")
    except NotFoundError:
        return ws.model(f"{ref}@latest")


def load_window(
    ws: Workspace,
    ref: str,
    *,
    window: str | None = None,
    last_rows: int | None = None,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    now: float | None = None,
    update: bool = True,
) -> Window:
    """The merged summary of model ``ref``'s window: ``window`` (a duration back from ``now``),
    or ``since``/``until``, or the newest buckets that hold ``last_rows`` rows; default: all.

    ``update`` first folds in what the log gained since the last update. Raises a
    :class:`UserError` naming what is logged when the window is empty.
    """
    if window is not None and last_rows is not None:
        raise UserError("give a time window or a number of rows, not both")
    if last_rows is not None and last_rows < 1:
        raise UserError(f"last_rows must be at least 1, found {last_rows}")
    version = resolve_version(ws, ref)
    reference = load_reference(ws, version)
    if update:
        for result in update_windows(ws, version.name):
            for problem in result.problems:
                log.warning("monitor update of %r: %s", version.name, problem)
    now = time.time() if now is None else now
    low, high = _epoch(since), _epoch(until)
    if window is not None:
        low, high = now - parse_duration(window), now if high is None else high
        description = f"last {window}"
    elif last_rows is not None:
        description = f"last {last_rows:,} rows"
    else:
        description = "all logged rows" if low is None and high is None else "the given range"
    ref_id = reference_id(reference)
    merged = WindowSummary.empty(reference)
    count = 0
    with open_store(ws) as store:
        width = store.resolution(version.name) or DEFAULT_RESOLUTION_S
        since_start = None if low is None else int(low // width * width)
        until_start = None if high is None else int(high)
        for bucket in store.buckets(
            version.name, version.version, since_start, until_start,
            newest_first=last_rows is not None,
        ):  # fmt: skip
            if bucket.ref != ref_id:
                raise UserError(
                    f"the stored summaries of {version.ref} were counted on another reference; "
                    f"rebuild them: mlscale monitor update {version.name} --rebuild"
                )
            merged.merge(WindowSummary.from_bytes(bucket.summary, reference))
            count += 1
            if last_rows is not None and merged.rows >= last_rows:
                break
        if not merged.rows:
            raise UserError(_empty_message(store, version, description))
    return Window(version, reference, merged, count, description)


def _empty_message(store: WindowStore, version: ModelVersion, description: str) -> str:
    span = store.span(version.name, version.version)
    if span is None:
        others = [v for v in store.versions(version.name) if v != version.version]
        hint = (
            f"; the log has rows of version(s) {', '.join(map(str, others))}"
            if others
            else "; serve it (mlscale serve) and send requests, then: "
            f"mlscale monitor update {version.name}"
        )
        return f"no predictions of {version.ref} are logged{hint}"
    first, last, rows = span
    fmt = "%Y-%m-%d %H:%M"
    return (
        f"no predictions of {version.ref} in the {description}; the log holds {rows:,} rows "
        f"from {datetime.fromtimestamp(first, UTC).strftime(fmt)} "
        f"to {datetime.fromtimestamp(last, UTC).strftime(fmt)} UTC"
    )


def _epoch(value: float | datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.timestamp()
