"""Performance of served predictions: realised where labels arrived, estimated where they did not.

Windows are by prediction time: a label that arrives a week later still counts in the window of
its prediction. For each window:

- **realised**: the task's metrics (:func:`mlscale.train.metrics.evaluate`) on the rows that
  have a label, and the **coverage** (labelled rows / predicted rows);
- **estimated** (classifiers): confidence-based performance estimation (CBPE) on every row,
  labelled or not. If the model is calibrated, a row predicted with probability ``p`` is right
  with probability ``p``, so the expected accuracy is the mean top probability, the expected log
  loss the mean entropy of the predicted distribution, and the expected ROC curve follows from
  the expected confusion matrix at each threshold (:func:`expected_auc`). The estimate is only as
  good as the calibration, so reports carry the verdict of the model's training evaluation;
  ``estimated_labelled`` (CBPE on the labelled rows alone) sits next to the realised figures to
  show how well it held where the truth is known.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from mlscale.errors import MlscaleError, UserError
from mlscale.monitor.label_store import IndexedRow, LabelStore, open_label_store
from mlscale.monitor.labels import class_text
from mlscale.monitor.prediction_index import update_index
from mlscale.monitor.windows import parse_duration, resolve_version
from mlscale.train.metrics import evaluate

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion
    from mlscale.workspace import Workspace

_US = 1_000_000
_EPS = 1e-15
CALIBRATION_TEXT = {
    True: "well calibrated",
    False: "not well calibrated",
    None: "calibration unknown",
}


# -- confidence-based estimation --------------------------------------------------------------
def expected_auc(p: np.ndarray) -> float:
    """The ROC AUC a calibrated binary classifier should reach on rows scored ``p`` (CBPE).

    At each threshold ``t`` the expected true positives are the sum of ``p`` over rows scored at
    least ``t`` and the expected false positives the sum of ``1 - p``; the curve through those
    expected rates is integrated like a realised one. NaN when every row is certain one way.

    >>> round(expected_auc(np.array([0.1, 0.4, 0.6, 0.9])), 4)
    0.825
    """
    p = np.asarray(p, dtype=np.float64)
    scores = np.sort(p)[::-1]
    if not len(scores):
        return float("nan")
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(scores)[last_of_tie]
    fp = np.cumsum(1.0 - scores)[last_of_tie]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return float("nan")
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return float(np.trapezoid(tpr, fpr))


def estimate(task: str, proba: np.ndarray) -> dict[str, float]:
    """Expected accuracy, AUC (one-vs-rest, macro, for several classes) and log loss of a
    calibrated classifier from its probabilities alone; ``{}`` for a regressor or no rows.

    >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]])
    >>> {k: round(v, 3) for k, v in estimate("binary", p).items()}
    {'accuracy': 0.75, 'log_loss': 0.499, 'auc': 0.825}
    """
    if task == "regression" or not len(proba):
        return {}
    proba = np.asarray(proba, dtype=np.float64)
    clipped = np.clip(proba, _EPS, 1.0)
    out = {
        "accuracy": float(proba.max(axis=1).mean()),
        "log_loss": float(-(proba * np.log(clipped)).sum(axis=1).mean()),
    }
    if task == "binary":
        auc = expected_auc(proba[:, 1])
    else:
        per_class = [expected_auc(proba[:, k]) for k in range(proba.shape[1])]
        auc = float(np.mean(per_class))
    if not np.isnan(auc):
        out["auc"] = auc
    return out


# -- reports ----------------------------------------------------------------------------------
@dataclass
class WindowPerformance:
    """Realised and estimated performance of one window (epoch seconds ``[start, end)``)."""

    start: float
    end: float
    rows: int  # predictions in the window
    labelled: int  # of those, rows with a usable label
    realised: dict[str, float] = field(default_factory=dict)
    estimated: dict[str, float] = field(default_factory=dict)  # CBPE on every row
    estimated_labelled: dict[str, float] = field(default_factory=dict)  # CBPE, labelled rows
    unusable: int = 0  # labels this version cannot score (a class it does not know)

    @property
    def coverage(self) -> float | None:
        """Labelled rows per predicted row; None for an empty window."""
        return self.labelled / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "rows": self.rows,
            "labelled": self.labelled,
            "coverage": self.coverage,
            "realised": self.realised,
            "estimated": self.estimated,
            "estimated_labelled": self.estimated_labelled,
            "unusable_labels": self.unusable,
        }


@dataclass
class PerformanceReport:
    """A window's performance, per period with ``every``; ``to_dict`` for JSON."""

    model: str  # name@version
    task: str
    calibrated: bool | None  # the training evaluation's verdict; None when unknown
    window: dict[str, Any]
    overall: WindowPerformance
    periods: list[WindowPerformance] = field(default_factory=list)
    labels: int = 0  # labels the model has, every window
    unknown_labels: int = 0  # of those, labels no logged prediction carries yet
    problems: list[str] = field(default_factory=list)

    @property
    def calibration(self) -> str:
        return CALIBRATION_TEXT[self.calibrated]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task,
            "calibration": self.calibration,
            "window": self.window,
            "overall": self.overall.to_dict(),
            "periods": [p.to_dict() for p in self.periods],
            "labels": self.labels,
            "unknown_labels": self.unknown_labels,
            "problems": self.problems,
        }


def calibration_verdict(ws: Workspace, version: ModelVersion) -> bool | None:
    """Whether ``version``'s training evaluation found it well calibrated; None when unknown
    (a regressor, or a run without a stored evaluation)."""
    if version.run_id is None or version.signature.get("task") == "regression":
        return None
    try:
        run = ws.metadata.get_run(version.run_id)
        sha = run.artifacts.get("evaluation")
        if sha is None:
            return None
        evaluation = json.loads(ws.artifacts.get_bytes(sha))
        return bool(evaluation["calibration"]["well_calibrated"])
    except (MlscaleError, KeyError, TypeError, ValueError):
        return None


def performance_windows(
    ws: Workspace, version: ModelVersion, bounds: list[tuple[float, float]]
) -> list[WindowPerformance]:
    """The performance of ``version`` in each ``(start, end)`` window (epoch seconds), empty
    windows included (``rows == 0``). Reads the label store as it is: see :func:`update_index`.
    """
    with open_label_store(ws) as store:
        return [_measure(store, version, start, end) for start, end in bounds]


def performance_report(
    ws: Workspace,
    ref: str,
    *,
    window: str | None = None,
    since: float | None = None,
    until: float | None = None,
    every: str | None = None,
    now: float | None = None,
    update: bool = True,
) -> PerformanceReport:
    """Realised and estimated performance of model ``ref`` (``name``, ``name@version`` or
    ``name@alias``; a bare name is its production version, else its latest) over ``window``
    (``"1h"``, ``"7d"`` back from ``now``) or ``since``/``until`` (default: every indexed row),
    and per period with ``every``. ``update`` first indexes what the prediction log gained.

    Raises a :class:`UserError` naming what is logged when the window has no predictions.
    """
    version = resolve_version(ws, ref)
    problems: list[str] = []
    if update:
        for result in update_index(ws, version.name):
            problems += result.problems
    now = time.time() if now is None else now
    if window is not None:
        low, high = now - parse_duration(window), now if until is None else until
        description = f"last {window}"
    else:
        low, high = since, until
        description = "all logged rows" if low is None and high is None else "the given range"
    period = parse_duration(every) if every is not None else None
    with open_label_store(ws) as store:
        span = store.span(version.name, version.version)
        if span is None:
            raise UserError(_nothing_logged(store, version))
        low = span[0] / _US if low is None else low
        high = (span[1] + 1) / _US if high is None else high
        rows = store.window_rows(version.name, version.version, int(low * _US), int(high * _US))
        overall = _measure(store, version, low, high, rows)
        if not overall.rows:
            first, last, rows = span
            raise UserError(
                f"no predictions of {version.ref} in the {description}; the log holds {rows:,} "
                f"rows from {_iso(first / _US)[:16]} to {_iso(last / _US)[:16]} UTC"
            )
        periods = []
        if period is not None:
            edges = [low, *range(int(low // period + 1) * period, int(np.ceil(high)), period)]
            edges = [e for e in edges if e < high] + [high]
            stamps = [r.ts for r in rows]  # sorted: periods are slices, not new queries
            periods = [
                _measure(store, version, a, b, rows[bisect_left(stamps, int(a * _US)) :
                                                    bisect_left(stamps, int(b * _US))])
                for a, b in pairwise(edges)
            ]  # fmt: skip
        labels, joined = store.label_counts(version.name)
        problems += store.notes(version.name)
    return PerformanceReport(
        model=version.ref,
        task=version.signature["task"],
        calibrated=calibration_verdict(ws, version),
        window={"description": description, "start": _iso(low), "end": _iso(high)},
        overall=overall,
        periods=periods,
        labels=labels,
        unknown_labels=labels - joined,
        problems=list(dict.fromkeys(problems)),
    )


def _measure(
    store: LabelStore,
    version: ModelVersion,
    start: float,
    end: float,
    rows: list[IndexedRow] | None = None,
) -> WindowPerformance:
    """The performance of the window; ``rows``: its rows when the caller has read them."""
    if rows is None:
        rows = store.window_rows(version.name, version.version, int(start * _US), int(end * _US))
    out = WindowPerformance(start, end, len(rows), 0)
    if not rows:
        return out
    task = version.signature["task"]
    if task == "regression":
        _regression(rows, out)
    else:
        _classification(task, version.signature.get("classes") or [], rows, out)
    return out


def _classification(
    task: str, classes: list[Any], rows: list[IndexedRow], out: WindowPerformance
) -> None:
    k = len(classes)
    has_proba = np.array([r.proba is not None and len(r.proba) == 8 * k for r in rows])
    if not has_proba.any() or k < 2:
        return
    proba = np.frombuffer(
        b"".join(r.proba for r, ok in zip(rows, has_proba, strict=True) if ok and r.proba),
        dtype=np.float64,
    ).reshape(-1, k)
    usable = [r for r, ok in zip(rows, has_proba, strict=True) if ok]
    out.estimated = estimate(task, proba)
    codes = {class_text(c): i for i, c in enumerate(classes)}
    y = np.array([-1 if r.label is None else codes.get(str(r.label), -2) for r in usable])
    out.unusable = int((y == -2).sum())
    labelled = y >= 0
    out.labelled = int(labelled.sum())
    if out.labelled:
        out.realised = evaluate(task, y[labelled], proba[labelled])
        out.estimated_labelled = estimate(task, proba[labelled])


def _regression(rows: list[IndexedRow], out: WindowPerformance) -> None:
    pairs = [
        (float(r.label), float(r.prediction))
        for r in rows
        if r.label is not None and isinstance(r.prediction, int | float)
    ]
    out.labelled = len(pairs)
    if len(pairs) >= 2:  # R2 needs two rows
        y, predicted = np.array(pairs).T
        out.realised = evaluate("regression", y, predicted)


def _nothing_logged(store: LabelStore, version: ModelVersion) -> str:
    others = [v for v in store.indexed_versions(version.name) if v != version.version]
    hint = (
        f"; the log has rows of version(s) {', '.join(map(str, others))}"
        if others
        else "; serve it (mlscale serve) and send requests first"
    )
    return f"no predictions of {version.ref} are logged{hint}"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()
