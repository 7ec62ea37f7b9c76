"""Logged traffic whose delayed labels have arrived: the fresh labelled rows retraining uses.

Features come from the prediction log (``f.<feature>`` columns), labels from the label store
(:mod:`mlscale.monitor.labels`), joined by row id: the request id for a one-row request, else
``<request id>:<row>`` (:func:`mlscale.monitor.prediction_index.row_key`), rows numbered per
request and answering version in the order they were logged. A row answered by several versions
(a shadow, a canary) is one row here; a request id used again names its later request.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.config import STATE_DIR
from mlscale.models.signature import Signature
from mlscale.monitor.label_store import open_label_store
from mlscale.monitor.labels import class_text
from mlscale.monitor.prediction_index import row_key
from mlscale.monitor.windows import log_folder
from mlscale.serve.predlog_reader import read_log

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion
    from mlscale.workspace import Workspace


def labelled_traffic(
    ws: Workspace,
    version: ModelVersion,
    *,
    since: float | None = None,
    until: float | None = None,
) -> pa.Table:
    """The logged rows of model ``version.name`` with ``since <= ts < until`` that have a
    label: ``version``'s feature columns (by name), its target and ``ts``, oldest first.

    Labels are typed like ``version``'s classes (or float for regression); a label that is not
    one of its classes is left out. Empty when nothing is labelled.
    """
    signature = Signature.from_dict(version.signature)
    log = read_log(log_folder(ws), version.name, since, until)
    names = signature.feature_names
    empty = pa.table(
        {n: pa.array([], pa.float64()) for n in names}
        | {signature.target: _typed([], signature), "ts": pa.array([], pa.timestamp("us", "UTC"))}
    )
    if log.num_rows == 0 or "request_id" not in log.column_names:
        return empty
    keys = _row_keys(log)
    latest = {key: i for i, key in enumerate(keys) if key is not None}  # a later row wins
    labels = _labels(ws, version.name, list(latest))
    wanted = _class_values(signature)
    rows, values = [], []
    for key, i in latest.items():
        label = labels.get(key)
        if label is None:
            continue
        value = float(label) if signature.task == "regression" else wanted.get(class_text(label))
        if value is None:
            continue
        rows.append(i)
        values.append(value)
    if not rows:
        return empty
    order = np.argsort(np.asarray(pc.cast(log.column("ts"), pa.int64()))[rows], kind="stable")
    taken = log.take(pa.array(np.asarray(rows)[order]))
    columns: dict[str, Any] = {
        n: taken.column(f"f.{n}") if f"f.{n}" in taken.column_names else pa.nulls(len(rows))
        for n in names
    }
    columns[signature.target] = _typed([values[j] for j in order], signature)
    columns["ts"] = taken.column("ts")
    return pa.table(columns)


def _row_keys(log: pa.Table) -> list[str | None]:
    """The label id of each logged row (None for a row without a request id)."""
    request_ids: list[str | None] = log.column("request_id").to_pylist()
    versions: list[int] = log.column("version").fill_null(0).to_pylist()
    counts = Counter(zip(request_ids, versions, strict=True))
    seen: Counter[tuple[str | None, int]] = Counter()
    keys: list[str | None] = []
    for rid, v in zip(request_ids, versions, strict=True):
        if rid is None:
            keys.append(None)
            continue
        keys.append(row_key(rid, seen[(rid, v)], counts[(rid, v)]))
        seen[(rid, v)] += 1
    return keys


def _labels(ws: Workspace, model: str, keys: list[str]) -> dict[str, Any]:
    """The stored label of each of ``keys`` that has one."""
    if not (ws.root / STATE_DIR / "monitor" / "labels.db").is_file():
        return {}  # no label was ever sent: do not create the store just to read it
    with open_label_store(ws) as store:
        return store.labels_for(model, keys)


def _class_values(signature: Signature) -> dict[str, Any]:
    """How the label store writes each class -> the class itself."""
    return {class_text(c): c for c in signature.classes}


def _typed(values: list[Any], signature: Signature) -> pa.Array:
    if signature.task == "regression":
        return pa.array(values, pa.float64())
    return pa.array(values, pa.array(signature.classes).type)
