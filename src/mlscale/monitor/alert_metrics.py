"""The value of an alert metric (``drift.share_drifted``, ``performance.auc``...) in one window.

A :class:`MetricSource` serves one model version and computes each window once, however many
rules read it: the merged drift/quality summary (:func:`mlscale.monitor.windows.load_window`)
and the performance (:func:`mlscale.monitor.performance.performance_windows`). ``None`` means
no evidence in that window (no traffic, no labels yet); a metric that cannot apply to the model
(a feature it lacks, AUC of a regressor) is a :class:`RuleError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlscale.errors import UserError
from mlscale.monitor.alert_rules import Metric
from mlscale.monitor.drift import DriftReport, compare
from mlscale.monitor.performance import WindowPerformance, performance_windows
from mlscale.monitor.quality import ColumnQuality, window_quality
from mlscale.monitor.windows import Window, load_window
from mlscale.registry.goals import TASK_METRICS

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion
    from mlscale.workspace import Workspace

_Bounds = tuple[float, float]


class RuleError(UserError):
    """A rule that cannot be evaluated for a model; the other rules go on."""


class MetricSource:
    """Values of alert metrics for windows of one model version, each window computed once."""

    def __init__(self, ws: Workspace, version: ModelVersion) -> None:
        self.ws = ws
        self.version = version
        self.task: str = version.signature["task"]
        self._summaries: dict[_Bounds, Window | None] = {}
        self._drift: dict[_Bounds, DriftReport] = {}
        self._quality: dict[_Bounds, tuple[list[ColumnQuality], list[ColumnQuality]]] = {}
        self._performance: dict[_Bounds, WindowPerformance] = {}

    def value(self, metric: Metric, start: float, end: float) -> float | None:
        """``metric`` in the window ``[start, end)`` (epoch seconds); None without evidence."""
        bounds = (start, end)
        if metric.family in ("traffic", "performance"):
            return self._performance_value(metric, self._perf(bounds))
        window = self._window(bounds)
        if window is None:
            return None
        if metric.family == "drift":
            return self._drift_value(metric, bounds, window)
        return self._quality_value(metric, bounds, window)

    # -- performance and traffic --
    def _perf(self, bounds: _Bounds) -> WindowPerformance:
        if bounds not in self._performance:
            self._performance[bounds] = performance_windows(self.ws, self.version, [bounds])[0]
        return self._performance[bounds]

    def _performance_value(self, metric: Metric, p: WindowPerformance) -> float | None:
        stat = metric.stat
        if metric.family == "traffic":
            return float(p.rows)
        if stat == "coverage":
            return p.coverage
        if stat == "labelled":
            return float(p.labelled)
        name = stat.removeprefix("estimated_")
        available = TASK_METRICS.get(self.task, ())
        if name not in available:
            raise RuleError(
                f"{metric}: {self.version.ref} is a {self.task} model; its metrics are "
                f"{', '.join(available)}"
            )
        if stat.startswith("estimated_"):
            if self.task == "regression":
                raise RuleError(f"{metric}: estimates apply to classifiers only")
            return p.estimated.get(name)
        return p.realised.get(name)

    # -- drift and quality --
    def _window(self, bounds: _Bounds) -> Window | None:
        if bounds not in self._summaries:
            try:
                self._summaries[bounds] = load_window(
                    self.ws, self.version.ref, since=bounds[0], until=bounds[1], update=False
                )
            except UserError as exc:
                if not str(exc).startswith("no predictions of"):
                    raise RuleError(str(exc)) from None
                self._summaries[bounds] = None  # an empty window: no evidence
        return self._summaries[bounds]

    def _drift_value(self, metric: Metric, bounds: _Bounds, window: Window) -> float | None:
        if bounds not in self._drift:
            self._drift[bounds] = compare(
                window.reference, window.summary, model=window.version.ref
            )
        report = self._drift[bounds]
        if metric.stat == "share_drifted" and not metric.scope:
            return report.share_drifted
        if metric.stat == "drifted" and not metric.scope:
            return float(len(report.drifted))
        columns = report.features if metric.scope == "feature" else report.outputs
        found = next((c for c in columns if c.feature == metric.column), None)
        if found is None:
            raise RuleError(_no_column(metric, self.version.ref, [c.feature for c in columns]))
        value = getattr(found, metric.stat)
        if value is None:
            raise RuleError(f"{metric}: {metric.stat} does not apply to {found.kind} columns")
        return float(value)

    def _quality_value(self, metric: Metric, bounds: _Bounds, window: Window) -> float | None:
        if bounds not in self._quality:
            self._quality[bounds] = window_quality(window.reference, window.summary)
        features, outputs = self._quality[bounds]
        if not metric.scope:
            if metric.stat == "violations":
                return float(sum(c.violations for c in (*features, *outputs)))
            return sum(c.missing_rate for c in features) / len(features) if features else None
        columns = features if metric.scope == "feature" else outputs
        found = next((c for c in columns if c.column == metric.column), None)
        if found is None:
            raise RuleError(_no_column(metric, self.version.ref, [c.column for c in columns]))
        value = getattr(found, metric.stat)
        if value is None:
            raise RuleError(f"{metric}: {metric.stat} does not apply to {found.kind} columns")
        return float(value)


def _no_column(metric: Metric, ref: str, names: list[str]) -> str:
    shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
    return f"{metric}: {ref} has no {metric.scope} {metric.column!r}; it has: {shown or 'none'}"
