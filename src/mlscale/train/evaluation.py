"""What a model's holdout predictions say beyond the headline metrics, as JSON-able data.

For classifiers: the confusion matrix, ROC and precision-recall curves (one-vs-rest per class
for more than two classes) and a calibration check; for regressors: the residuals (actual minus
predicted) summarised, binned and plotted against the predictions. The trainer stores the result as
the run artifact ``evaluation``; :mod:`mlscale.reports.evaluation` draws it. Every figure is a
pure function of the inputs: the same predictions give byte-identical JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics

#: Curves are cut to about this many points: enough to draw, small enough to store with every run.
CURVE_POINTS = 200
#: Equal-width bins of predicted probability in the reliability diagram.
CALIBRATION_BINS = 10
#: Expected calibration error up to which a classifier counts as well calibrated...
ECE_TOLERANCE = 0.05
#: ...unless a perfectly calibrated model would itself show more on so few rows (see
#: :func:`calibration`): the bar is then this many times that noise floor.
NOISE_FACTOR = 2.0
#: Points of the predicted-vs-actual scatter kept for a regressor.
SCATTER_POINTS = 500
RESIDUAL_BINS = 30
PREDICTED_BINS = 10
_QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
_QUANTILES |= {"p99": 0.99}
_DIGITS = 6  # stored floats are rounded: plots need no more, and the JSON stays small


def evaluation_details(
    task: str, y: np.ndarray, predicted: np.ndarray, classes: Sequence[Any] = ()
) -> dict[str, Any]:
    """The evaluation of ``predicted`` against ``y`` for a run's page (JSON-able).

    ``y`` holds class codes (positions in ``classes``) or float targets; ``predicted`` holds
    ``(n, k)`` class probabilities or ``(n,)`` values, as :func:`mlscale.train.metrics.evaluate`
    takes them.

    >>> y = np.array([0, 0, 1, 1])
    >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    >>> details = evaluation_details("binary", y, p, ["no", "yes"])
    >>> details["confusion_matrix"]["matrix"], details["roc"][0]["auc"]
    ([[2, 0], [0, 2]], 1.0)
    >>> r = evaluation_details("regression", np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]))
    >>> r["residuals"]["mean"], r["residuals"]["max"]
    (0.166667, 1.0)
    """
    y = np.asarray(y)
    predicted = np.asarray(predicted, dtype=np.float64)
    if len(y) != len(predicted):
        raise ValueError(f"{len(y)} targets but {len(predicted)} predictions")
    if len(y) == 0:
        raise ValueError("no rows to evaluate")
    if task == "regression":
        return {"task": task, "rows": len(y)} | regression_details(
            y.astype(np.float64), predicted.reshape(-1)
        )
    if predicted.ndim != 2:
        raise ValueError(f"a {task} evaluation needs (rows, classes) probabilities")
    labels = _labels(classes, predicted.shape[1])
    y = y.astype(np.int64)
    return {
        "task": task,
        "rows": len(y),
        "classes": labels,
        "confusion_matrix": confusion(y, predicted, labels),
        "roc": roc_curves(task, y, predicted, labels),
        "pr": pr_curves(task, y, predicted, labels),
        "calibration": calibration(task, y, predicted),
    }


# -- classifiers ------------------------------------------------------------------------------
def confusion(y: np.ndarray, proba: np.ndarray, labels: list[Any]) -> dict[str, Any]:
    """Counts of actual class (rows) by predicted class (columns, the most probable one)."""
    k = len(labels)
    pairs = y.astype(np.int64) * k + proba.argmax(axis=1)
    matrix = np.bincount(pairs, minlength=k * k).reshape(k, k)
    return {"labels": labels, "matrix": matrix.tolist()}


def roc_curves(
    task: str, y: np.ndarray, proba: np.ndarray, labels: list[Any]
) -> list[dict[str, Any]]:
    """ROC curves with their AUC: the positive class's for binary, one-vs-rest otherwise.

    A class that the rows lack (or that every row has) has no curve.
    """
    out = []
    for k, positive in _one_vs_rest(task, y, labels):
        fpr, tpr, _ = metrics.roc_curve(positive, proba[:, k])
        keep = _thin(len(fpr))
        out.append(
            {
                "class": labels[k],
                # roc_auc_score is this area: taken from the curve, the rows are sorted once.
                "auc": _round(metrics.auc(fpr, tpr)),
                "fpr": _rounded(fpr[keep]),
                "tpr": _rounded(tpr[keep]),
            }
        )
    return out


def pr_curves(
    task: str, y: np.ndarray, proba: np.ndarray, labels: list[Any]
) -> list[dict[str, Any]]:
    """Precision-recall curves with average precision and the class's prevalence (the baseline)."""
    out = []
    for k, positive in _one_vs_rest(task, y, labels):
        precision, recall, _ = metrics.precision_recall_curve(positive, proba[:, k])
        keep = _thin(len(recall))
        out.append(
            {
                "class": labels[k],
                "average_precision": _round(_average_precision(precision, recall)),
                "prevalence": _round(positive.mean()),
                "recall": _rounded(recall[keep]),
                "precision": _rounded(precision[keep]),
            }
        )
    return out


def _average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """``average_precision_score`` from the curve it is computed on: the step integral."""
    return max(0.0, float(-np.sum(np.diff(recall) * precision[:-1])))


def calibration(task: str, y: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """A reliability check: do predicted probabilities match observed frequencies?

    Binary classifiers are checked on the positive class's probability, multiclass ones on the
    confidence of the predicted class against how often it is right. Rows are put in equal-width
    bins of that probability; the expected calibration error (ECE) is the row-weighted mean gap
    between a bin's mean probability and its observed frequency. The Brier score is the mean
    squared distance between the probability vector and the one-hot truth (for binary, over the
    positive class only).

    The verdict: *well calibrated* when the ECE is at most :data:`ECE_TOLERANCE` (0.05) or
    :data:`NOISE_FACTOR` times the ECE a perfectly calibrated model would show on these rows by
    chance (``noise_ece``, which matters for a small holdout), whichever is larger.

    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0, 1, 5000)
    >>> y = (rng.uniform(0, 1, 5000) < p).astype(int)
    >>> calibration("binary", y, np.c_[1 - p, p])["well_calibrated"]
    True
    >>> calibration("binary", y, np.c_[1 - p**3, p**3])["well_calibrated"]
    False
    """
    if task == "binary":
        score = proba[:, 1]
        hit = (y == 1).astype(np.float64)
        brier = np.mean((score - hit) ** 2)
    else:
        score = proba.max(axis=1)
        hit = (proba.argmax(axis=1) == y).astype(np.float64)
        brier = np.mean(np.sum((proba - np.eye(proba.shape[1])[y]) ** 2, axis=1))
    which = np.minimum((score * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    which = np.clip(which, 0, CALIBRATION_BINS - 1)
    bins, ece, noise = [], 0.0, 0.0
    for b in range(CALIBRATION_BINS):
        inside = which == b
        count = int(inside.sum())
        if count == 0:
            continue
        mean_p, observed = float(score[inside].mean()), float(hit[inside].mean())
        ece += count * abs(mean_p - observed)
        # Under perfect calibration the bin's frequency has variance mean(p(1-p))/count, and
        # E|N(0, s^2)| = s * sqrt(2/pi): this bin's expected gap from sampling alone.
        spread = float(np.mean(score[inside] * (1 - score[inside])))
        noise += count * math.sqrt(2 / math.pi * spread / count)
        bins.append(
            {
                "lower": b / CALIBRATION_BINS,
                "upper": (b + 1) / CALIBRATION_BINS,
                "count": count,
                "mean_predicted": _round(mean_p),
                "observed": _round(observed),
            }
        )
    ece, noise = ece / len(y), noise / len(y)
    threshold = max(ECE_TOLERANCE, NOISE_FACTOR * noise)
    well = ece <= threshold
    if well:
        verdict = f"well calibrated: ECE {ece:.3f} is within {threshold:.3f}"
    else:
        lean = _lean(task, bins, ece, float(hit.mean()))
        verdict = f"not well calibrated ({lean}): ECE {ece:.3f} is above {threshold:.3f}"
    return {
        "scored": "positive class" if task == "binary" else "predicted class confidence",
        "bins": bins,
        "ece": _round(ece),
        "noise_ece": _round(noise),
        "threshold": _round(threshold),
        "brier": _round(brier),
        "well_calibrated": bool(well),
        "verdict": verdict,
    }


def _lean(task: str, bins: list[dict[str, Any]], ece: float, base_rate: float) -> str:
    """Which way a miscalibrated classifier errs, in words."""
    rows = sum(b["count"] for b in bins)
    gap = sum(b["count"] * (b["mean_predicted"] - b["observed"]) for b in bins) / rows
    if task != "binary":
        return "over-confident" if gap > 0 else "under-confident"
    if abs(gap) >= ece / 2:
        return f"positive-class probabilities too {'high' if gap > 0 else 'low'}"
    # No overall shift: errors that grow away from the base rate mean too extreme probabilities.
    away = sum(
        b["count"] * (b["mean_predicted"] - b["observed"]) * (b["mean_predicted"] - base_rate)
        for b in bins
    )
    return "over-confident" if away > 0 else "under-confident"


def _one_vs_rest(task: str, y: np.ndarray, labels: list[Any]) -> list[tuple[int, np.ndarray]]:
    wanted = [1] if task == "binary" else range(len(labels))
    out = []
    for k in wanted:
        positive = (y == k).astype(np.int64)
        if 0 < positive.sum() < len(y):  # a curve needs both positives and negatives
            out.append((k, positive))
    return out


def _labels(classes: Sequence[Any], k: int) -> list[Any]:
    labels = [c if isinstance(c, str | int | float | bool) else str(c) for c in classes]
    if not labels:
        return list(range(k))
    if len(labels) != k:
        raise ValueError(f"{len(labels)} class labels but {k} probability columns")
    return labels


# -- regressors -------------------------------------------------------------------------------
def regression_details(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Residuals (actual minus predicted): summary, histogram, scatter sample, by-prediction bins."""
    residual = y - predicted
    quantiles = np.quantile(residual, list(_QUANTILES.values()))
    summary = {
        "mean": _round(residual.mean()),
        "std": _round(residual.std()),
        "min": _round(residual.min()),
        "max": _round(residual.max()),
        "mae": _round(np.abs(residual).mean()),
        "rmse": _round(np.sqrt(np.mean(residual**2))),
    } | {name: _round(q) for name, q in zip(_QUANTILES, quantiles, strict=True)}
    return {
        "residuals": summary,
        "histogram": _residual_histogram(residual),
        "scatter": _scatter(y, predicted),
        "by_predicted": _by_predicted(predicted, residual),
    }


def _residual_histogram(residual: np.ndarray) -> dict[str, Any]:
    # The p01..p99 range: a few wild residuals would otherwise squash the body into one bar.
    lo, hi = np.quantile(residual, [0.01, 0.99])
    if hi <= lo:
        lo, hi = float(residual.min()) - 0.5, float(residual.max()) + 0.5
    counts, edges = np.histogram(residual, bins=RESIDUAL_BINS, range=(lo, hi))
    return {
        "edges": _rounded(edges),
        "counts": counts.tolist(),
        "below": int((residual < lo).sum()),
        "above": int((residual > hi).sum()),
    }


def _scatter(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    rows = np.arange(len(y))
    if len(y) > SCATTER_POINTS:
        rows = np.sort(np.random.default_rng(0).choice(len(y), SCATTER_POINTS, replace=False))
    return {
        "predicted": _rounded(predicted[rows]),
        "actual": _rounded(y[rows]),
        "sampled": len(rows) < len(y),
    }


def _by_predicted(predicted: np.ndarray, residual: np.ndarray) -> list[dict[str, Any]]:
    """Residuals in equal-count bins of the prediction: a trend shows a bias the mean hides."""
    edges = np.unique(np.quantile(predicted, np.linspace(0, 1, PREDICTED_BINS + 1)))
    which = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, max(len(edges) - 2, 0))
    out = []
    for b in range(max(len(edges) - 1, 1)):
        r = residual[which == b]
        if len(r) == 0:
            continue
        p10, p50, p90 = np.quantile(r, [0.1, 0.5, 0.9])
        out.append(
            {
                "lower": _round(edges[b]),
                "upper": _round(edges[min(b + 1, len(edges) - 1)]),
                "count": len(r),
                "mean_predicted": _round(predicted[which == b].mean()),
                "mean": _round(r.mean()),
                "std": _round(r.std()),
                "p10": _round(p10),
                "p50": _round(p50),
                "p90": _round(p90),
            }
        )
    return out


# -- helpers ----------------------------------------------------------------------------------
def _thin(n: int, points: int = CURVE_POINTS) -> np.ndarray:
    """Indices of about ``points`` evenly spaced points of ``n``, always the first and last."""
    if n <= points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))


def _round(value: float) -> float:
    return round(float(value), _DIGITS)


def _rounded(values: np.ndarray) -> list[float]:
    return [round(v, _DIGITS) for v in np.asarray(values, dtype=np.float64).tolist()]
