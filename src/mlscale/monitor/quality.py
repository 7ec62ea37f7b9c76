"""Data quality of live traffic, per window: missing, out-of-range and unseen values, violations.

Read off the same window summaries as drift, so it costs O(buckets x bins):

- missing rate: missing values / rows (with the reference's rate beside it);
- out-of-range rate (numeric): values below the training minimum or above its maximum, over the
  values present;
- unseen rate (categorical): values not among the reference categories, over the values present,
  with the most frequent of them named;
- schema violations: rows whose logged value could not be read as the feature (the column absent
  from the log, or of another type than the model's signature). Requests the server rejected
  never reach the log, so they are counted by the server's metrics, not here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlscale.monitor.reference import ColumnReference, NumericReference, Reference
from mlscale.monitor.summary import CategoricalSummary, ColumnSummary, WindowSummary

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


@dataclass(frozen=True)
class ColumnQuality:
    column: str
    kind: str
    rows: int
    missing_rate: float
    reference_missing_rate: float
    out_of_range_rate: float | None  # numeric columns
    unseen_rate: float | None  # categorical columns
    violations: int
    top_unseen: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QualityBucket:
    start: str
    rows: int
    columns: list[ColumnQuality]


@dataclass(frozen=True)
class QualityReport:
    model: str
    rows: int
    window: dict[str, Any]
    features: list[ColumnQuality]
    outputs: list[ColumnQuality]
    buckets: list[QualityBucket] = field(default_factory=list)

    @property
    def violations(self) -> dict[str, int]:
        """Columns with schema violations and how many rows each."""
        return {c.column: c.violations for c in (*self.features, *self.outputs) if c.violations}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"violations": self.violations}


def column_quality(name: str, ref: ColumnReference, cur: ColumnSummary, rows: int) -> ColumnQuality:
    """The quality figures of one column of a window of ``rows`` rows.

    >>> import numpy as np
    >>> from mlscale.monitor.reference import CategoricalReference
    >>> ref = CategoricalReference(["a", "b"], np.array([5, 5, 0]), 0)
    >>> cur = CategoricalSummary(np.array([6, 2, 2]), missing=2, unseen={"zz": 2})
    >>> q = column_quality("c", ref, cur, 12)
    >>> round(q.missing_rate, 3), q.unseen_rate, q.top_unseen
    (0.167, 0.2, {'zz': 2})
    """
    present = max(cur.count, 1)
    numeric = isinstance(ref, NumericReference)
    unseen = isinstance(cur, CategoricalSummary)
    # Bins 0 and -1 lie outside the training range (one bin when the reference had no values).
    outside = float(cur.counts[0] + (cur.counts[-1] if len(cur.counts) > 1 else 0))
    return ColumnQuality(
        column=name,
        kind=ref.kind,
        rows=rows,
        missing_rate=cur.missing / max(rows, 1),
        reference_missing_rate=ref.missing / max(ref.count + ref.missing, 1),
        out_of_range_rate=outside / present if numeric else None,
        unseen_rate=float(cur.counts[-1]) / present if not numeric else None,
        violations=cur.violations,
        top_unseen=dict(sorted(cur.unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:10])
        if unseen
        else {},
    )


def window_quality(
    reference: Reference, summary: WindowSummary
) -> tuple[list[ColumnQuality], list[ColumnQuality]]:
    """(features, outputs) quality of one window summary."""
    features = [
        column_quality(n, r, summary.features[n], summary.rows)
        for n, r in reference.features.items()
    ]
    outputs = [
        column_quality(n, r, summary.outputs[n], summary.rows) for n, r in reference.outputs.items()
    ]
    return features, outputs


def quality_report(
    ws: Workspace,
    ref: str,
    *,
    window: str | None = None,
    last_rows: int | None = None,
    every: str | None = None,
    now: float | None = None,
    update: bool = True,
) -> QualityReport:
    """Quality of model ``ref``'s logged traffic over a window (see :func:`drift_report`), and,
    with ``every`` (``"10m"``, ``"1h"``), the same figures per period of the window.
    """
    from mlscale.monitor.store import open_store
    from mlscale.monitor.windows import load_window, parse_duration, reference_id

    w = load_window(ws, ref, window=window, last_rows=last_rows, now=now, update=update)
    features, outputs = window_quality(w.reference, w.summary)
    buckets: list[QualityBucket] = []
    if every is not None:
        period = parse_duration(every)
        ref_id = reference_id(w.reference)
        groups: dict[int, WindowSummary] = {}
        with open_store(ws) as store:
            for bucket in store.buckets(
                w.version.name, w.version.version, int(w.summary.start), int(w.summary.end)
            ):
                if bucket.ref != ref_id:
                    continue
                key = bucket.start // period * period
                group = groups.setdefault(key, WindowSummary.empty(w.reference))
                group.merge(WindowSummary.from_bytes(bucket.summary, w.reference))
        for key, group in sorted(groups.items()):
            columns, _ = window_quality(w.reference, group)
            start = datetime.fromtimestamp(key, UTC).isoformat()
            buckets.append(QualityBucket(start, group.rows, columns))
    return QualityReport(
        model=w.version.ref,
        rows=w.summary.rows,
        window={
            "description": w.description,
            "start": w.start.isoformat(),
            "end": w.end.isoformat(),
            "buckets": w.buckets,
        },
        features=features,
        outputs=outputs,
        buckets=buckets,
    )
