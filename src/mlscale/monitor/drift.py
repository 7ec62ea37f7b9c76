"""Per-feature and prediction drift of a window against a model version's reference.

Every statistic is computed from summaries (:mod:`mlscale.monitor.summary`), never from rows:

- PSI and Jensen-Shannon distance (base 2) on the reference bins, with missing values as a bin
  of their own (a rise in missing values is drift too) and, for categories, one bin for unseen
  values;
- Kolmogorov-Smirnov distance at the ~200 fine reference quantile edges (exact counts), and
  exact on the bottom-k samples with its asymptotic p-value (reference sample 5,000 values,
  window sample 500);
- Wasserstein-1 distance over the fine bins (each bin's mass at the mean of its values),
  divided by the reference std;
- chi-square statistic and p-value of the category counts.

The verdict of each column rests on one statistic (``numeric_method``, ``categorical_method``)
and its default thresholds (warning, drift), commonly used values:

==================  =========  =====
statistic           warning    drift
==================  =========  =====
psi                 0.1        0.2
jensen_shannon      0.05       0.1
wasserstein (/std)  0.05       0.1
ks                  0.05       0.1
==================  =========  =====

Defaults: PSI for numeric columns, Jensen-Shannon for categorical ones. A threshold is raised to
the statistic's calibrated null level when that is higher: the 99th percentile of the statistic
between a reference-sized and a window-sized sample both drawn from the reference's own bins
(:func:`mlscale.monitor.stats.null_quantiles`). So a few dozen rows do not flag sampling noise,
and since the fixed thresholds are effect sizes, not p-values, a million-row window of the same
distribution does not flag either, while a real shift does. (KS and chi-square p-values are
reported but decide nothing: at a million rows they flag everything.)

The report also gives the share of drifted features; at ``DRIFT_SHARE`` (half) or more the
whole dataset counts as drifted. Output columns (``prediction``, ``proba.<class>``) are
compared the same way when the reference holds them: prediction drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlscale.errors import DataError, UserError
from mlscale.models.signature import Signature
from mlscale.monitor.reference import (
    ColumnReference,
    NumericReference,
    Reference,
    load_reference,
)
from mlscale.monitor.stats import (
    chi_square,
    js_distance,
    ks_binned,
    ks_exact,
    null_quantiles,
    psi,
    wasserstein_means,
)
from mlscale.monitor.summary import (
    CategoricalSummary,
    ColumnSummary,
    NumericSummary,
    Summarizer,
    WindowSummary,
)

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion
    from mlscale.workspace import Workspace

__all__ = [
    "DRIFT_SHARE",
    "THRESHOLDS",
    "DriftReport",
    "FeatureDrift",
    "compare",
    "drift_for_file",
    "drift_report",
    "js_distance",
    "psi",
]

THRESHOLDS: dict[str, tuple[float, float]] = {
    "psi": (0.1, 0.2),
    "jensen_shannon": (0.05, 0.1),
    "wasserstein": (0.05, 0.1),
    "ks": (0.05, 0.1),
}
PSI_WARN, PSI_DRIFT = THRESHOLDS["psi"]
JS_WARN, JS_DRIFT = THRESHOLDS["jensen_shannon"]
NUMERIC_METHODS = ("psi", "jensen_shannon", "wasserstein", "ks")
CATEGORICAL_METHODS = ("jensen_shannon", "psi")
DRIFT_SHARE = 0.5
_NULL_KEY = {"psi": "psi", "jensen_shannon": "js", "wasserstein": "wasserstein", "ks": "ks"}


@dataclass(frozen=True)
class FeatureDrift:
    """The drift of one column: every statistic, the one the verdict rests on, and the verdict."""

    feature: str
    kind: str
    method: str  # the statistic the verdict is based on
    score: float
    psi: float
    js: float
    verdict: str  # "stable" | "warning" | "drift"
    reference_missing: float
    current_missing: float
    threshold: float = 0.0  # the drift threshold applied: max(default, calibrated null level)
    null_level: float = 0.0  # the calibrated null level (99th percentile) of ``method``
    rows: int = 0  # values compared (missing and violations excluded)
    ks: float | None = None  # at the fine reference edges
    ks_exact: float | None = None  # on samples
    ks_pvalue: float | None = None
    wasserstein: float | None = None  # / reference std
    chi_square: float | None = None
    chi_square_pvalue: float | None = None


@dataclass(frozen=True)
class DriftReport:
    """Per-feature (and per-output) drift of one window; ``to_dict`` for JSON."""

    model: str
    rows: int
    rows_unreadable: int
    features: list[FeatureDrift]
    outputs: list[FeatureDrift] = field(default_factory=list)
    window: dict[str, Any] = field(default_factory=dict)
    reference: str = "training"

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.verdict == "drift"]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.features) and self.share_drifted >= DRIFT_SHARE

    @property
    def prediction_drift(self) -> bool | None:
        """Whether any output drifted; None when the reference has no predictions."""
        return any(o.verdict == "drift" for o in self.outputs) if self.outputs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rows": self.rows,
            "rows_unreadable": self.rows_unreadable,
            "window": self.window,
            "reference": self.reference,
            "drifted": self.drifted,
            "share_drifted": self.share_drifted,
            "dataset_drift": self.dataset_drift,
            "prediction_drift": self.prediction_drift,
            "features": [asdict(f) for f in self.features],
            "outputs": [asdict(o) for o in self.outputs],
        }


def _check_methods(numeric_method: str, categorical_method: str) -> None:
    if numeric_method not in NUMERIC_METHODS:
        raise UserError(
            f"unknown numeric drift method {numeric_method!r}; expected one of {NUMERIC_METHODS}"
        )
    if categorical_method not in CATEGORICAL_METHODS:
        raise UserError(
            f"unknown categorical drift method {categorical_method!r}; "
            f"expected one of {CATEGORICAL_METHODS}"
        )


def compare_column(
    name: str,
    ref: ColumnReference,
    cur: ColumnSummary,
    *,
    numeric_method: str = "psi",
    categorical_method: str = "jensen_shannon",
) -> FeatureDrift:
    """Every statistic of one column and its calibrated verdict."""
    ref_bins = np.append(ref.counts, ref.missing)
    cur_bins = np.append(cur.counts, cur.missing)
    window_rows = int(cur_bins.sum())
    stats: dict[str, Any] = {"psi": psi(ref_bins, cur_bins), "js": js_distance(ref_bins, cur_bins)}
    if isinstance(ref, NumericReference):
        assert isinstance(cur, NumericSummary)
        method = numeric_method
        null = null_quantiles(
            np.append(ref.fine_counts, ref.missing),
            window_rows,
            coarse_starts=ref.coarse_starts,
            values=len(ref.fine_counts),
            edges=ref.fine_edges,
            scale=ref.scale,
            seed=name,
        )
        stats["ks"] = ks_binned(ref.fine_counts, cur.fine)
        stats["wasserstein"] = wasserstein_means(
            ref.fine_counts, ref.fine_sums, cur.fine, cur.sums, ref.scale
        )
        if ref.sample is not None and len(cur.sample.values):
            stats["ks_exact"], stats["ks_pvalue"] = ks_exact(ref.sample, cur.sample.values)
    else:
        assert isinstance(cur, CategoricalSummary)
        method = categorical_method
        null = null_quantiles(ref_bins, window_rows, values=len(ref.counts) - 1, seed=name)
        stats["chi_square"], stats["chi_square_pvalue"] = chi_square(ref.counts, cur.counts)
    score = float(stats[_NULL_KEY[method]])
    warn, drift = THRESHOLDS[method]
    null_level = null[_NULL_KEY[method]]
    verdict = (
        "drift"
        if score >= max(drift, null_level)
        else "warning"
        if score >= max(warn, null_level)
        else "stable"
    )
    return FeatureDrift(
        feature=name,
        kind=ref.kind,
        method=method,
        score=score,
        psi=float(stats["psi"]),
        js=float(stats["js"]),
        verdict=verdict,
        reference_missing=float(ref.missing / max(ref_bins.sum(), 1)),
        current_missing=float(cur.missing / max(window_rows, 1)),
        threshold=max(drift, null_level),
        null_level=null_level,
        rows=cur.count,
        ks=stats.get("ks"),
        ks_exact=stats.get("ks_exact"),
        ks_pvalue=stats.get("ks_pvalue"),
        wasserstein=stats.get("wasserstein"),
        chi_square=stats.get("chi_square"),
        chi_square_pvalue=stats.get("chi_square_pvalue"),
    )


def compare(
    reference: Reference,
    summary: WindowSummary,
    *,
    model: str = "",
    rows_unreadable: int = 0,
    outputs: bool = True,
    numeric_method: str = "psi",
    categorical_method: str = "jensen_shannon",
    window: dict[str, Any] | None = None,
) -> DriftReport:
    """The drift report of ``summary`` against ``reference``: O(columns x bins)."""
    _check_methods(numeric_method, categorical_method)
    methods = {"numeric_method": numeric_method, "categorical_method": categorical_method}
    features = [
        compare_column(name, ref, summary.features[name], **methods)
        for name, ref in reference.features.items()
    ]
    compared_outputs = [
        compare_column(name, ref, summary.outputs[name], **methods)
        for name, ref in reference.outputs.items()
        if outputs and summary.outputs[name].count + summary.outputs[name].missing
    ]
    return DriftReport(
        model, summary.rows, rows_unreadable, features, compared_outputs, window or {},
        reference.source,
    )  # fmt: skip


def drift_report(
    ws: Workspace,
    ref: str,
    *,
    window: str | None = None,
    last_rows: int | None = None,
    since: float | None = None,
    until: float | None = None,
    now: float | None = None,
    numeric_method: str = "psi",
    categorical_method: str = "jensen_shannon",
    update: bool = True,
) -> DriftReport:
    """Drift of model ``ref``'s live traffic (the prediction log) against its reference.

    ``window`` (``"1h"``, ``"7d"`` back from ``now``, default the clock) or ``last_rows``, or
    ``since``/``until`` (epoch seconds); default: every logged row.
    See :func:`mlscale.monitor.windows.load_window`.
    """
    from mlscale.monitor.windows import load_window

    _check_methods(numeric_method, categorical_method)
    w = load_window(
        ws, ref, window=window, last_rows=last_rows, since=since, until=until, now=now,
        update=update,
    )  # fmt: skip
    return compare(
        w.reference,
        w.summary,
        model=w.version.ref,
        numeric_method=numeric_method,
        categorical_method=categorical_method,
        window={
            "description": w.description,
            "start": w.start.isoformat(),
            "end": w.end.isoformat(),
            "buckets": w.buckets,
        },
    )


def drift_for_file(
    ws: Workspace,
    version: ModelVersion,
    path: Path,
    *,
    numeric_method: str = "psi",
    categorical_method: str = "jensen_shannon",
) -> DriftReport:
    """Stream ``path`` once, counting each feature on the reference bins, then compare."""
    from mlscale.data.pipeline import Pipeline
    from mlscale.data.sources.duck import open_file

    signature = Signature.from_dict(version.signature)
    reference = load_reference(ws, version)
    summarizer = Summarizer(reference, feature_prefix="", outputs=False)
    summary = WindowSummary.empty(reference)
    features = {f.name: f.type for f in signature.features}
    unreadable = 0
    with Pipeline(open_file(path), types=features) as pipeline:
        for i, batch in enumerate(pipeline.batches()):
            unreadable += batch.rejected.num_rows if batch.rejected is not None else 0
            if batch.good.num_rows:
                summary.merge(summarizer.summarize(batch.good, seed=i)[0])
    if summary.rows == 0:
        raise DataError(f"{path}: no readable rows to compare")
    return compare(
        reference,
        summary,
        model=version.ref,
        rows_unreadable=unreadable,
        outputs=False,
        numeric_method=numeric_method,
        categorical_method=categorical_method,
        window={"description": str(path)},
    )
