"""Everything one dashboard page shows, collected from the workspace into plain dataclasses.

:class:`Collector` is the only part of the dashboard that reads anything: the registry (models,
versions, aliases and their moves), the prediction log (traffic and latency, through
:class:`~mlscale.dashboard.traffic.TrafficIndex`), the server's counters (errors, through
:class:`~mlscale.dashboard.counts.CountsHistory`), and the monitor's per-minute window summaries
(drift and quality). Drift over time merges the summaries of each period and compares it with the
version's reference: O(periods x bins). A finished period does not change, so its result is kept
and a refresh computes only the newest one.

A page shows one time range: from the first traffic within the chosen window (``1h``, ``6h``,
``24h``, ``7d``) to now, cut into about :data:`TRAFFIC_POINTS` periods for traffic and
:data:`DRIFT_POINTS` for drift. Calls block (files, SQLite, numpy): the web app runs them in a
thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlscale.dashboard.counts import UNKNOWN, CountsHistory, ErrorPoint
from mlscale.dashboard.traffic import TrafficIndex, TrafficPoint
from mlscale.errors import MlscaleError, NotFoundError, UserError
from mlscale.monitor.alerts import AlertEvent, active_alerts, alert_events
from mlscale.monitor.drift import DriftReport, FeatureDrift, compare
from mlscale.monitor.label_store import open_label_store
from mlscale.monitor.performance import (
    CALIBRATION_TEXT,
    WindowPerformance,
    calibration_verdict,
    performance_windows,
)
from mlscale.monitor.prediction_index import update_index
from mlscale.monitor.quality import ColumnQuality, window_quality
from mlscale.monitor.reference import Reference, load_reference
from mlscale.monitor.store import open_store
from mlscale.monitor.summary import WindowSummary
from mlscale.monitor.windows import DEFAULT_RESOLUTION_S, log_folder, reference_id, update_windows
from mlscale.refs import Ref
from mlscale.store.records import AliasEvent, ModelVersion

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

log = logging.getLogger("mlscale.dashboard")

#: The windows a page can show, and how far back each looks.
WINDOWS = {"1h": 3_600, "6h": 21_600, "24h": 86_400, "7d": 604_800}
DEFAULT_WINDOW = "24h"
TRAFFIC_POINTS = 60
DRIFT_POINTS = 16
SPARK_POINTS = 48
LATEST_S = 3_600  # the drift and quality tables cover the last hour of traffic
MOVES_SHOWN = 10
ALERTS_SHOWN = 50
_STEPS = (60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400)
_CACHED_PERIODS = 1_024
FINISHED_AFTER_S = 120  # a period this long past holds every row it will get (flushes, index)


def pick_step(span: float, points: int, minimum: int = 60) -> int:
    """The smallest round period (1m, 2m, 5m, ... 1d) cutting ``span`` seconds into at most
    ``points`` periods, and at least ``minimum`` seconds.

    >>> pick_step(3_600, 60), pick_step(3_600, 16), pick_step(86_400, 16), pick_step(60, 16, 300)
    (60, 300, 7200, 300)
    """
    for step in _STEPS:
        if step >= minimum and span / step <= points:
            return step
    return max(_STEPS[-1], minimum)


def check_window(window: str) -> int:
    """Seconds of a page window; a UserError names the choices for anything else."""
    if window not in WINDOWS:
        raise UserError(f"unknown window {window!r}; expected one of {', '.join(WINDOWS)}")
    return WINDOWS[window]


# --- what a page shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceView:
    """Realised (from delayed labels) and estimated model quality per period of the page."""

    metric: str = ""  # the figure plotted (auc, accuracy, rmse, ...)
    training: float | None = None  # the version's holdout figure, for comparison
    starts: list[float] = field(default_factory=list)
    step: int = 3_600
    realised: list[float] = field(default_factory=list)  # NaN where no row has a label
    estimated: list[float] = field(default_factory=list)  # NaN where none (regressors)
    coverage: list[float] = field(default_factory=list)  # labelled / predicted rows
    labelled_rows: int = 0
    calibration: str = ""
    note: str = ""


@dataclass(frozen=True)
class AlertView:
    """One alert event: a rule that started or stopped firing."""

    model: str
    rule: str
    state: str  # "firing" | "resolved"
    severity: str
    at: float  # epoch seconds
    message: str


@dataclass(frozen=True)
class DriftSeries:
    """Per-column drift scores per period; NaN where a period has no rows."""

    starts: list[float]
    step: int
    rows: list[int]
    columns: list[str]  # features, then outputs
    outputs: list[str]
    scores: dict[str, list[float]]
    thresholds: dict[str, list[float]]  # the threshold each verdict was judged against
    verdicts: dict[str, list[str]]  # "" where there were no rows
    methods: dict[str, str]


@dataclass(frozen=True)
class Latest:
    """The drift and quality of the last hour of traffic."""

    start: float
    end: float
    report: DriftReport
    quality: list[ColumnQuality]
    output_quality: list[ColumnQuality]


@dataclass(frozen=True)
class ModelRow:
    """One model on the overview."""

    name: str
    latest: ModelVersion
    versions: int
    aliases: dict[str, int]
    requests: int
    rows: int
    p95_ms: float
    errors: int
    error_requests: int  # requests the error count is out of
    drifted: list[str] | None  # None: nothing to compare (no traffic or no reference)
    features: int
    alerts_firing: int
    activity: list[int] = field(default_factory=list)  # requests per period of the window


@dataclass(frozen=True)
class Overview:
    generated: float
    window: str
    since: float
    until: float
    models: list[ModelRow]
    moves: list[AliasEvent]
    firing: list[AlertView]  # alerts firing now
    alerts: list[AlertView]  # alert events in the window, newest first
    unresolved_errors: dict[int, int]  # requests that failed before a model was resolved
    counts_note: str


@dataclass(frozen=True)
class ModelPanel:
    generated: float
    name: str
    window: str
    since: float
    until: float
    version: ModelVersion  # the version whose drift and quality are shown
    versions: list[ModelVersion]
    moves: list[AliasEvent]
    traffic_step: int
    total: TrafficPoint  # the whole range, every version together
    traffic: list[TrafficPoint]  # per period, every version together
    traffic_by_version: dict[int, list[TrafficPoint]]
    errors: list[ErrorPoint]
    error_totals: dict[int, int]  # by status code, since the server started
    counts_note: str
    drift: DriftSeries | None
    latest: Latest | None
    performance: PerformanceView
    firing: list[AlertView]  # alerts firing now
    alerts: list[AlertView]  # alert events in the window, newest first
    notes: list[str]  # why a section is empty


# --- collecting ------------------------------------------------------------------------------


@dataclass
class _Period:
    rows: int
    summary: WindowSummary
    columns: list[FeatureDrift]


class Collector:
    """Collects pages' data from ``ws``; keeps what is costly to recompute between calls.

    ``counts``: where request and error counts come from (None: no server to ask).
    """

    def __init__(self, ws: Workspace, *, counts: CountsHistory | None = None) -> None:
        self.ws = ws
        self.counts = counts
        self.traffic = TrafficIndex(log_folder(ws))
        self._lock = threading.Lock()
        self._periods: OrderedDict[tuple, _Period] = OrderedDict()
        self._references: dict[tuple[str, int, str], Reference] = {}
        self._performance_cache: OrderedDict[tuple, tuple[tuple[int, int], WindowPerformance]] = (
            OrderedDict()
        )

    # -- pages --

    def overview(self, *, window: str = DEFAULT_WINDOW, now: float | None = None) -> Overview:
        """Every model with its traffic, errors and drift in ``window``, and the alias moves."""
        now = time.time() if now is None else now
        since = now - check_window(window)
        self._sample_counts(now)
        rows, moves = [], []
        for latest in sorted(self.ws.models(), key=lambda m: m.name):
            versions = self.ws.metadata.list_model_versions(latest.name)
            moves += self.ws.metadata.alias_history(latest.name)
            self.traffic.update(latest.name, now=now)
            total = self.traffic.total(latest.name, since=since, until=now + 1)
            shown = self._default_version(latest.name, versions, since, now)
            drifted, features = None, 0
            try:
                self._update_windows(shown.name)
                found = self._latest(shown, since)
            except MlscaleError as exc:
                log.info("dashboard: no drift for %s: %s", shown.ref, exc)
                found = None
            if found is not None:
                drifted, features = found.report.drifted, len(found.report.features)
            errors = self._errors(latest.name, since, now)
            step = pick_step(now - since, SPARK_POINTS)
            activity = self.traffic.series(latest.name, since=since, until=now, step=step, now=now)
            rows.append(
                ModelRow(
                    name=latest.name,
                    latest=latest,
                    versions=len(versions),
                    aliases=_aliases(versions),
                    requests=total.requests,
                    rows=total.rows,
                    p95_ms=total.p95_ms,
                    errors=errors[0],
                    error_requests=errors[1],
                    drifted=drifted,
                    features=features,
                    alerts_firing=len(self._firing(latest.name)),
                    activity=[p.requests for p in activity],
                )
            )
        moves.sort(key=lambda e: e.at, reverse=True)
        unresolved = self.counts.totals(UNKNOWN) if self.counts is not None else {}
        return Overview(
            generated=now,
            window=window,
            since=since,
            until=now,
            models=rows,
            moves=moves[:MOVES_SHOWN],
            firing=self._firing(None),
            alerts=self._alerts(None, since),
            unresolved_errors={c: n for c, n in unresolved.items() if c >= 400},
            counts_note=self._counts_note(),
        )

    def model(
        self,
        name: str,
        *,
        version: int | None = None,
        window: str = DEFAULT_WINDOW,
        now: float | None = None,
    ) -> ModelPanel:
        """One model's page: traffic, latency, errors, drift over time, the latest drift and
        quality tables, performance and alerts, for ``version`` (default: the one in
        production, else the one with traffic, else the latest)."""
        now = time.time() if now is None else now
        lookback = now - check_window(window)
        Ref.parse(name)  # a clear error for a malformed name
        versions = self.ws.metadata.list_model_versions(name)
        if not versions:
            known = ", ".join(sorted(m.name for m in self.ws.models())) or "none"
            raise NotFoundError(f"no model named {name!r} (models: {known})")
        self._sample_counts(now)
        self.traffic.update(name, now=now)
        notes: list[str] = []
        if version is None:
            shown = self._default_version(name, versions, lookback, now)
        else:
            matching = [v for v in versions if v.version == version]
            if not matching:
                have = ", ".join(str(v.version) for v in versions)
                raise NotFoundError(f"{name} has no version {version} (versions: {have})")
            shown = matching[0]
        first = self._first_data(shown, lookback)
        # The page starts at the first traffic in the window (a quiet model shows it all).
        start = max(lookback, first) if first is not None else lookback
        span = max(now - start, 600.0)
        resolution = self._resolution(name)
        drift_step = pick_step(span, DRIFT_POINTS, resolution)
        traffic_step = pick_step(span, TRAFFIC_POINTS)
        since = start // drift_step * drift_step
        traffic = self.traffic.series(name, since=since, until=now, step=traffic_step, now=now)
        by_version = {
            v: self.traffic.series(name, since=since, until=now, step=traffic_step, version=v)
            for v in self.traffic.versions(name)
        }
        by_version = {v: s for v, s in by_version.items() if any(p.requests for p in s)}
        if not any(p.requests for p in traffic):
            notes.append(
                f"no predictions of {name} are logged in the last {window}: serve it "
                "(mlscale serve) and send requests; the server logs every prediction"
            )
        errors = (
            self.counts.series(name, since=since, until=now, step=traffic_step)
            if self.counts is not None
            else []
        )
        drift = latest = None
        try:
            drift, latest = self._drift(shown, since, now, drift_step)
        except NotFoundError as exc:
            notes.append(f"no drift for {shown.ref}: {exc}")
        except MlscaleError as exc:
            notes.append(f"drift of {shown.ref} could not be computed: {exc}")
        moves = sorted(self.ws.metadata.alias_history(name), key=lambda e: e.at, reverse=True)
        return ModelPanel(
            generated=now,
            name=name,
            window=window,
            since=since,
            until=now,
            version=shown,
            versions=sorted(versions, key=lambda v: v.version, reverse=True),
            moves=moves[:MOVES_SHOWN],
            traffic_step=traffic_step,
            total=self.traffic.total(name, since=since, until=now + 1),
            traffic=traffic,
            traffic_by_version=by_version,
            errors=errors,
            error_totals=self.counts.totals(name) if self.counts is not None else {},
            counts_note=self._counts_note(),
            drift=drift,
            latest=latest,
            performance=self._performance_or_note(shown, since, now, drift_step),
            firing=self._firing(name),
            alerts=self._alerts(name, since),
            notes=notes,
        )

    # -- parts --

    def _default_version(
        self, name: str, versions: list[ModelVersion], since: float, now: float
    ) -> ModelVersion:
        for v in versions:
            if "production" in v.aliases:
                return v
        with_traffic = [
            v
            for v in versions
            if self.traffic.total(name, since=since, until=now + 1, version=v.version).requests
        ]
        return max(with_traffic or versions, key=lambda v: v.version)

    def _first_data(self, version: ModelVersion, since: float) -> float | None:
        firsts = [self.traffic.first_minute(version.name, since)]
        with open_store(self.ws) as store:
            span = store.span(version.name, version.version)
        if span is not None and span[1] >= since:
            firsts.append(max(float(span[0]), since))
        found = [f for f in firsts if f is not None]
        return min(found) if found else None

    def _resolution(self, name: str) -> int:
        with open_store(self.ws) as store:
            return store.resolution(name) or DEFAULT_RESOLUTION_S

    def _reference(self, version: ModelVersion) -> Reference:
        key = (version.name, version.version, version.artifact_sha)
        reference = self._references.get(key)
        if reference is None:
            reference = self._references[key] = load_reference(self.ws, version)
        return reference

    def _drift(
        self, version: ModelVersion, since: float, until: float, step: int
    ) -> tuple[DriftSeries | None, Latest | None]:
        """Drift per ``step`` from ``since``, and the latest hour's drift and quality."""
        reference = self._reference(version)
        self._update_windows(version.name)
        periods = self._periods_of(version, reference, since, until, step)
        if not periods:
            return None, None
        columns = [*reference.features, *(o for o in reference.outputs)]
        first = int(since // step * step)
        count = max(math.ceil((until - first) / step), 1)
        starts = [float(first + k * step) for k in range(count)]
        scores = {c: [math.nan] * count for c in columns}
        thresholds = {c: [math.nan] * count for c in columns}
        verdicts = {c: [""] * count for c in columns}
        methods: dict[str, str] = {}
        rows = [0] * count
        for start, period in periods.items():
            k = (start - first) // step
            if not 0 <= k < count:
                continue
            rows[k] = period.rows
            for f in period.columns:
                scores[f.feature][k] = f.score
                thresholds[f.feature][k] = f.threshold
                verdicts[f.feature][k] = f.verdict
                methods[f.feature] = f.method
        compared = [c for c in columns if c in methods]
        series = DriftSeries(
            starts=starts,
            step=step,
            rows=rows,
            columns=compared,
            outputs=[c for c in reference.outputs if c in methods],
            scores={c: scores[c] for c in compared},
            thresholds={c: thresholds[c] for c in compared},
            verdicts={c: verdicts[c] for c in compared},
            methods=methods,
        )
        return series, self._latest(version, since)

    def _latest(self, version: ModelVersion, since: float) -> Latest | None:
        """Drift and quality of the hour of traffic up to ``version``'s newest bucket (at or
        after ``since``); None when there is none."""
        reference = self._reference(version)
        ref_id = reference_id(reference)
        with open_store(self.ws) as store:
            span = store.span(version.name, version.version)
            if span is None or span[1] < since:
                return None
            width = store.resolution(version.name) or DEFAULT_RESOLUTION_S
            low = max(span[1] + width - LATEST_S, int(since // width * width))
            merged = WindowSummary.empty(reference)
            for bucket in store.buckets(version.name, version.version, low, span[1] + 1):
                if bucket.ref == ref_id:
                    merged.merge(WindowSummary.from_bytes(bucket.summary, reference))
        if not merged.rows:
            return None
        report = compare(
            reference,
            merged,
            model=version.ref,
            window={
                "description": "the last hour of traffic",
                "start": datetime.fromtimestamp(merged.start, UTC).isoformat(),
                "end": datetime.fromtimestamp(merged.end, UTC).isoformat(),
            },
        )
        features, outputs = window_quality(reference, merged)
        return Latest(merged.start, merged.end, report, features, outputs)

    def _periods_of(
        self,
        version: ModelVersion,
        reference: Reference,
        since: float,
        until: float,
        step: int,
    ) -> dict[int, _Period]:
        """The summary and drift of every ``step`` period with rows from ``since`` to ``until``:
        from the cache when its row count has not changed, else merged from the buckets."""
        ref_id = reference_id(reference)
        out: dict[int, _Period] = {}
        group: list[bytes] = []
        group_start, group_rows = None, 0

        def finish() -> None:
            if group_start is None:
                return
            key = (version.name, version.version, ref_id, step, group_start)
            with self._lock:
                cached = self._periods.get(key)
            if cached is None or cached.rows != group_rows:
                summary = WindowSummary.empty(reference)
                for blob in group:
                    summary.merge(WindowSummary.from_bytes(blob, reference))
                report = compare(reference, summary, model=version.ref)
                cached = _Period(summary.rows, summary, [*report.features, *report.outputs])
            with self._lock:
                self._periods[key] = cached
                self._periods.move_to_end(key)
                while len(self._periods) > _CACHED_PERIODS:
                    self._periods.popitem(last=False)
            out[group_start] = cached

        first = int(since // step * step)
        with open_store(self.ws) as store:
            for bucket in store.buckets(version.name, version.version, first, int(until) + 1):
                if bucket.ref != ref_id:
                    continue  # counted on another reference: monitor update --rebuild says so
                start = bucket.start // step * step
                if start != group_start:
                    finish()
                    group, group_start, group_rows = [], start, 0
                group.append(bucket.summary)
                group_rows += bucket.rows
            finish()
        return out

    def _update_windows(self, name: str) -> None:
        """Fold what the log gained into the monitor's summaries (what drift is read from)."""
        for result in update_windows(self.ws, name):
            for problem in result.problems:
                log.info("dashboard: monitor update of %r: %s", name, problem)

    def _sample_counts(self, now: float) -> None:
        if self.counts is not None:
            self.counts.sample(now=now)

    def _errors(self, name: str, since: float, now: float) -> tuple[int, int]:
        """(failed requests, requests) of ``name`` in the window, from the sampled counters."""
        if self.counts is None:
            return 0, 0
        points = self.counts.series(name, since=since, until=now, step=max(int(now - since), 60))
        return sum(p.errors for p in points), sum(p.requests for p in points)

    def _counts_note(self) -> str:
        if self.counts is None or (self.counts.shared_files and not self.counts.models()):
            return (
                "error counts come from a running server: open /dashboard on mlscale serve, or "
                "serve with several workers (they share their counters in .mlscale/run)"
            )
        if not self.counts.models():
            return "no requests counted since the server started"
        return ""

    def _performance_or_note(
        self, version: ModelVersion, since: float, until: float, step: int
    ) -> PerformanceView:
        try:
            return self._performance(version, since, until, step)
        except MlscaleError as exc:
            metric = _headline_metric(version)
            return PerformanceView(
                metric=metric,
                training=version.metrics.get(metric),
                note=f"performance could not be computed: {exc}",
            )

    def _performance(
        self, version: ModelVersion, since: float, until: float, step: int
    ) -> PerformanceView:
        """Realised and estimated performance per ``step`` period, from the label store. A
        finished period is kept until labels arrive (the model's label counts change)."""
        metric = _headline_metric(version)
        training = version.metrics.get(metric)
        for result in update_index(self.ws, version.name):
            for problem in result.problems:
                log.info("dashboard: label index update of %r: %s", version.name, problem)
        with open_label_store(self.ws) as store:
            stamp = store.label_counts(version.name)
        first = int(since // step * step)
        starts = [float(first + k * step) for k in range(max(math.ceil((until - first) / step), 1))]
        found: dict[float, WindowPerformance] = {}
        with self._lock:
            for start in starts:
                cached = self._performance_cache.get((version.name, version.version, step, start))
                if cached is not None and cached[0] == stamp:
                    found[start] = cached[1]
        todo = [s for s in starts if s not in found]
        for start, window in zip(
            todo, performance_windows(self.ws, version, [(s, s + step) for s in todo]), strict=True
        ):
            found[start] = window
            if start + step < until - FINISHED_AFTER_S:  # no more rows will land in it
                with self._lock:
                    cache = self._performance_cache
                    cache[(version.name, version.version, step, start)] = (stamp, window)
                    while len(cache) > _CACHED_PERIODS:
                        cache.popitem(last=False)
        windows = [found[s] for s in starts]
        labels, joined = stamp
        labelled = sum(w.labelled for w in windows)
        notes = []
        if not labels:
            notes.append(
                f"no labels yet: send outcomes (POST /v1/models/{version.name}/labels, or "
                f"mlscale monitor labels {version.name} FILE) to see the realised {metric}"
            )
        elif not labelled:
            notes.append(f"none of the {labels:,} labels is for a prediction in this range")
        if labels > joined:
            notes.append(f"{labels - joined:,} labels name predictions not in the log yet")
        estimated = [w.estimated.get(metric, math.nan) for w in windows]
        calibration = ""
        if any(math.isfinite(v) for v in estimated):
            calibration = CALIBRATION_TEXT[calibration_verdict(self.ws, version)]
        return PerformanceView(
            metric=metric,
            training=training,
            starts=starts,
            step=step,
            realised=[
                w.realised.get(metric, math.nan) if w.labelled else math.nan for w in windows
            ],
            estimated=estimated,
            coverage=[w.labelled / w.rows if w.rows else math.nan for w in windows],
            labelled_rows=labelled,
            calibration=calibration,
            note="; ".join(notes),
        )

    def _alerts(self, name: str | None, since: float) -> list[AlertView]:
        """The alert events (of model ``name``, default every model) since ``since``, newest
        first: what ``mlscale monitor alerts`` (or a watcher) recorded when a rule fired or
        resolved."""
        events = alert_events(self.ws, name, limit=ALERTS_SHOWN)
        return [_alert_view(e) for e in events if e.at >= since]

    def _firing(self, name: str | None) -> list[AlertView]:
        """The alerts firing now, with the message of the event that fired each."""
        latest: dict[tuple[str, str], AlertEvent] = {}
        for event in alert_events(self.ws, name, limit=ALERTS_SHOWN):
            if event.status == "firing":
                latest.setdefault((event.rule, event.model), event)
        out = []
        for active in active_alerts(self.ws, name):
            event = latest.get((active.rule, active.model))
            value = "no value" if active.value is None else f"{active.value:.4g}"
            out.append(
                AlertView(
                    model=active.model,
                    rule=active.rule,
                    state="firing",
                    severity=str(event.payload.get("severity", "")) if event else "",
                    at=active.since,
                    message=event.message if event else f"{active.rule}: {value}",
                )
            )
        return out


def _aliases(versions: list[ModelVersion]) -> dict[str, int]:
    return {a: v.version for v in versions for a in sorted(v.aliases)}


def _headline_metric(version: ModelVersion) -> str:
    for metric in ("auc", "accuracy", "rmse", "mae", "r2", "log_loss"):
        if metric in version.metrics:
            return metric
    return next(iter(version.metrics), "")


def _alert_view(event: AlertEvent) -> AlertView:
    return AlertView(
        model=event.model,
        rule=event.rule,
        state=event.status,
        severity=str(event.payload.get("severity", "")),
        at=event.at,
        message=event.message,
    )
