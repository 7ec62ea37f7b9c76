"""Fold new prediction-log rows into the label store's index, so labels can join them by id.

The id of a logged row (what a label names): the request id when the request had one row, else
``<request id>:<row>`` with rows numbered from 0 in the order the request sent them. Rows are
numbered per model version, so a shadow or canary version answering the same request gets the
same ids and a label joins every version's answer. A request the log cut across two segments
keeps one numbering. A request id used again for a later request names the later prediction.

Like :func:`mlscale.monitor.windows.update_windows`, this reads only what it has not read: a
cursor per segment (an open one is re-read from there as it grows) committed with the rows in
one transaction. A corrupt segment is reported, remembered and skipped; the others go on.
Segments deleted from the log take their indexed rows with them, not their labels.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.errors import MlscaleError, UserError
from mlscale.monitor.label_store import LabelStore, Segment, open_label_store
from mlscale.monitor.windows import log_folder
from mlscale.refs import Ref
from mlscale.serve.predlog import OPEN
from mlscale.serve.predlog_reader import LogStats, read_segment, segment_paths

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

log = logging.getLogger("mlscale.monitor")


@dataclass
class IndexResult:
    """What one :func:`update_index` call did for one model."""

    model: str
    rows: int = 0  # new rows indexed
    segments: int = 0  # segments with new rows
    removed: int = 0  # rows of segments no longer in the log
    problems: list[str] = field(default_factory=list)


def row_key(request_id: str, row: int, rows: int) -> str:
    """The id of row ``row`` (from 0) of a request of ``rows`` rows.

    >>> row_key("req-1", 0, 1), row_key("req-2", 0, 3), row_key("req-2", 2, 3)
    ('req-1', 'req-2:0', 'req-2:2')
    """
    return request_id if rows == 1 else f"{request_id}:{row}"


def update_index(ws: Workspace, model: str | None = None) -> list[IndexResult]:
    """Index the prediction-log rows of ``model`` (a name; default every model in the log) that
    no earlier call has indexed. One model's trouble is reported in its result; others go on."""
    folder = log_folder(ws)
    if model is not None:
        models = [Ref.parse(model).name]
    else:
        models = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    results = []
    with open_label_store(ws) as store:
        for name in models:
            result = IndexResult(name)
            try:
                _update_model(ws, store, name, result)
            except MlscaleError as exc:
                result.problems.append(str(exc))
                log.warning("label index update of %r: %s", name, exc)
            results.append(result)
    return results


def _update_model(ws: Workspace, store: LabelStore, model: str, result: IndexResult) -> None:
    paths = segment_paths(log_folder(ws), model)
    columns: dict[int, list[str] | None] = {}  # version -> its probability columns
    for path in paths:
        name = path.name.removesuffix(".open")
        with store.transaction():  # the cursor is read under the write lock: no double indexing
            segment = store.segment(model, name)
            if segment.done:
                continue
            sealed = not path.name.endswith(OPEN)
            stats = LogStats()
            table = read_segment(path, stats)
            if table is None:
                if stats.corrupt:  # a sealed segment that cannot be read: remember, skip it
                    note = f"corrupt log segment skipped: {stats.problems[-1]}"
                    store.advance(segment.id, segment.rows, True, note)
                    result.problems.append(note)
                continue
            if stats.torn and sealed:
                result.problems.append(stats.problems[-1])
            new = table.slice(segment.rows)
            tail = None
            if new.num_rows:
                tail = _index(ws, store, model, new, segment, columns, result)
                result.segments += 1
                result.rows += new.num_rows
            store.advance(segment.id, max(table.num_rows, segment.rows), sealed, None, tail)
    with store.transaction():
        result.removed = store.forget_segments(model, {p.name.removesuffix(".open") for p in paths})


def _index(
    ws: Workspace,
    store: LabelStore,
    model: str,
    table: pa.Table,
    segment: Segment,
    columns: dict[int, list[str] | None],
    result: IndexResult,
) -> tuple[str, int, int] | None:
    """Index ``table`` (new rows of one segment); returns its last request and rows so far."""
    n = table.num_rows
    request_ids: list[str | None] = table.column("request_id").to_pylist()
    versions: list[int] = table.column("version").fill_null(0).to_pylist()
    ts = np.asarray(pc.cast(table.column("ts"), pa.int64()), dtype=np.int64).tolist()
    names = set(table.column_names)
    predictions: list[Any] = (
        table.column("prediction").to_pylist() if "prediction" in names else [None] * n
    )
    probas: dict[int, np.ndarray | None] = {}
    for v in set(versions):
        if v not in columns:
            columns[v] = _proba_columns(ws, model, v, result)
        wanted = columns[v]
        probas[v] = (
            np.column_stack(
                [
                    table.column(c).cast(pa.float64()).fill_null(float("nan")).to_numpy()
                    for c in wanted
                ]
            )
            if wanted and all(c in names for c in wanted)
            else None
        )
    counts = Counter(zip(request_ids, versions, strict=True))
    done: dict[tuple[str | None, int], int] = {}
    if segment.rows == 0 and request_ids[0] is not None:
        first = (request_ids[0], versions[0])
        before = store.take_tail(model, segment.id, *first)
        if before:  # the log cut this request across segments: continue its numbering
            done[first] = before
            counts[first] += before
            if before == 1:
                store.rename_row(model, first[1], first[0], row_key(first[0], 0, 2))
    rows = []
    skipped = 0
    for i in range(n):
        rid, v = request_ids[i], versions[i]
        if rid is None:
            skipped += 1
            continue
        j = done.get((rid, v), 0)
        done[(rid, v)] = j + 1
        matrix = probas[v]
        blob = None if matrix is None else matrix[i].tobytes()
        rows.append((row_key(rid, j, counts[(rid, v)]), v, ts[i], segment.id, predictions[i], blob))
    store.put_rows(model, rows)
    if skipped:
        result.problems.append(f"{skipped} logged rows have no request id and cannot be labelled")
    last = (request_ids[-1], versions[-1])
    return None if last[0] is None else (last[0], last[1], done[last])


def _proba_columns(
    ws: Workspace, model: str, version: int, result: IndexResult
) -> list[str] | None:
    """The log's probability columns of ``model@version`` in its class order; None for a
    regressor or a version that is not registered."""
    try:
        signature = ws.model(f"{model}@{version}").signature
    except UserError:  # not registered (or logged without a version)
        result.problems.append(
            f"rows of {model}@{version} are indexed without probabilities: "
            "the version is not registered"
        )
        return None
    classes = signature.get("classes") or []
    return [f"proba.{c}" for c in classes] or None
