"""Alerts: rules over drift, quality, performance and traffic, evaluated on windows, de-duplicated.

:func:`evaluate_alerts` reads the rules (``monitor.yaml``, :mod:`mlscale.monitor.alert_rules`),
and for each rule and model computes the metric in the last ``for`` complete windows (aligned
on multiples of the window size, so two evaluations of the same windows agree). Then:

- every window has a value over the threshold -> the rule **fires**;
- the newest window with a value is not over it -> it is **ok** (a firing alert **resolves**);
- otherwise (an empty window: no traffic, no labels yet) there is no evidence and the rule keeps
  its state; ``pending`` says it is over the threshold, but not for enough windows yet.

The state of each rule and model is stored, so an alert is sent when it fires and when it
resolves, not at every evaluation; a firing alert is sent again only after the rule's
``repeat`` interval. Each event is stored (:func:`alert_events`, for the dashboard), written to
the log as a JSON line, and handed to an :class:`~mlscale.monitor.alert_sinks.AlertNotifier`
for the webhooks, which are sent in the background and never make the evaluation wait.

Everything lives in ``.mlscale/monitor/alerts.db`` (``state``, ``events``, ``deliveries``).
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlscale.config import STATE_DIR
from mlscale.errors import MlscaleError
from mlscale.monitor.alert_metrics import MetricSource, RuleError
from mlscale.monitor.alert_rules import AlertConfig, Rule, load_alert_config, rules_path
from mlscale.monitor.alert_sinks import AlertNotifier, log_event
from mlscale.monitor.prediction_index import update_index
from mlscale.monitor.sqlite_file import SqliteFile
from mlscale.monitor.windows import resolve_version, update_windows

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

log = logging.getLogger("mlscale.monitor.alerts")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    rule TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL, since REAL NOT NULL,
    last_sent REAL, value REAL, PRIMARY KEY (rule, model));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, rule TEXT NOT NULL, model TEXT NOT NULL,
    status TEXT NOT NULL, payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_model ON events (model, id);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id INTEGER NOT NULL, sink TEXT NOT NULL, status TEXT NOT NULL, tries INTEGER NOT NULL,
    error TEXT, updated REAL NOT NULL, PRIMARY KEY (event_id, sink));
"""


@dataclass
class AlertEvent:
    """An alert fired, fired again (``repeat``) or resolved; ``deliveries`` maps each sink
    (``log``, webhook URLs) to ``{"status", "tries", "error"}``."""

    id: int
    at: float
    rule: str
    model: str
    status: str  # "firing" | "resolved"
    payload: dict[str, Any]
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return str(self.payload.get("message", ""))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.payload, "deliveries": self.deliveries}


@dataclass
class RuleResult:
    """One rule on one model in one evaluation."""

    rule: str
    model: str
    metric: str
    status: str  # "firing" | "ok" | "pending" | "no data" | "error"
    values: list[tuple[float, float, float | None]]  # (window start, end, value), oldest first
    message: str = ""
    event: AlertEvent | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "model": self.model,
            "metric": self.metric,
            "status": self.status,
            "values": [{"start": _iso(a), "end": _iso(b), "value": v} for a, b, v in self.values],
            "message": self.message,
            "event": None if self.event is None else self.event.id,
        }


@dataclass
class AlertEvaluation:
    """What :func:`evaluate_alerts` found and sent."""

    at: float
    results: list[RuleResult] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # corrupt log segments, rule errors

    @property
    def firing(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "firing"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "results": [r.to_dict() for r in self.results],
            "events": [e.to_dict() for e in self.events],
            "problems": self.problems,
        }


@dataclass(frozen=True)
class ActiveAlert:
    """A rule firing now on a model, since when, and its last value."""

    rule: str
    model: str
    since: float
    value: float | None


def alert_store_path(ws: Workspace) -> Path:
    return ws.root / STATE_DIR / "monitor" / "alerts.db"


class AlertStore(SqliteFile):
    """Alert state, events and their deliveries (close it, or use ``with``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def state(self, rule: str, model: str) -> tuple[str, float | None] | None:
        row = self._db.execute(
            "SELECT status, last_sent FROM state WHERE rule = ? AND model = ?", (rule, model)
        ).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def set_state(
        self, rule: str, model: str, status: str, at: float, value: float | None, sent: bool
    ) -> None:
        self._db.execute(
            "INSERT INTO state (rule, model, status, since, last_sent, value) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rule, model) DO UPDATE SET "
            "since = CASE WHEN status = excluded.status THEN since ELSE excluded.since END, "
            "status = excluded.status, value = excluded.value, "
            "last_sent = CASE WHEN ? THEN excluded.last_sent ELSE last_sent END",
            (rule, model, status, at, at if sent else None, value, sent),
        )

    def add_event(
        self,
        at: float,
        rule: str,
        model: str,
        status: str,
        payload: dict[str, Any],
        sinks: list[str],
    ) -> int:
        cursor = self._db.execute(
            "INSERT INTO events (at, rule, model, status, payload) VALUES (?, ?, ?, ?, ?)",
            (at, rule, model, status, json.dumps(payload, default=str)),
        )
        event_id = int(cursor.lastrowid or 0)
        self._db.executemany(
            "INSERT INTO deliveries (event_id, sink, status, tries, error, updated) "
            "VALUES (?, ?, ?, ?, NULL, ?)",
            [(event_id, s, "sent" if s == "log" else "queued", int(s == "log"), at) for s in sinks],
        )
        return event_id

    def events(self, model: str | None = None, limit: int = 50) -> list[AlertEvent]:
        where, args = ("WHERE model = ?", (model,)) if model else ("", ())
        rows = self._db.execute(
            f"SELECT id, at, rule, model, status, payload FROM events {where} "
            "ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        out = []
        for event_id, at, rule, name, status, payload in rows:
            deliveries = {
                sink: {"status": s, "tries": tries, "error": error}
                for sink, s, tries, error in self._db.execute(
                    "SELECT sink, status, tries, error FROM deliveries WHERE event_id = ? "
                    "ORDER BY sink",
                    (event_id,),
                )
            }
            out.append(
                AlertEvent(event_id, at, rule, name, status, json.loads(payload), deliveries)
            )
        return out

    def active(self, model: str | None = None) -> list[ActiveAlert]:
        where, args = ("AND model = ?", (model,)) if model else ("", ())
        rows = self._db.execute(
            f"SELECT rule, model, since, value FROM state WHERE status = 'firing' {where} "
            "ORDER BY since",
            args,
        )
        return [ActiveAlert(*row) for row in rows]


def open_alert_store(ws: Workspace) -> AlertStore:
    """The workspace's alert store (``.mlscale/monitor/alerts.db``)."""
    return AlertStore(alert_store_path(ws))


def alert_events(ws: Workspace, model: str | None = None, *, limit: int = 50) -> list[AlertEvent]:
    """The newest alert events (of ``model``, a name), newest first, with their deliveries."""
    with open_alert_store(ws) as store:
        return store.events(model, limit)


def active_alerts(ws: Workspace, model: str | None = None) -> list[ActiveAlert]:
    """The alerts firing now (of ``model``, a name), oldest first."""
    with open_alert_store(ws) as store:
        return store.active(model)


SHARED_EXIT_WAIT_S = 5.0
_shared: dict[Path, AlertNotifier] = {}
_shared_lock = threading.Lock()


def shared_notifier(ws: Workspace) -> AlertNotifier:
    """This process's notifier for ``ws`` (started on first use; a daemon thread), for callers
    that evaluate alerts repeatedly and do not manage one themselves."""
    path = alert_store_path(ws)
    with _shared_lock:
        if path not in _shared:
            path.parent.mkdir(parents=True, exist_ok=True)
            _shared[path] = notifier = AlertNotifier(path)
            # At exit, a few seconds for what is queued; the rest is recorded as not sent.
            atexit.register(notifier.close, SHARED_EXIT_WAIT_S)
        return _shared[path]


def window_bounds(rule: Rule, now: float) -> list[tuple[float, float]]:
    """The rule's last ``for`` complete windows before ``now``, oldest first.

    >>> from mlscale.monitor.alert_rules import loads_alert_config
    >>> rule = loads_alert_config("rules: [{name: r, metric: traffic.rows, below: 1, "
    ...                           "window: 10m, for: 2}]").rules[0]
    >>> window_bounds(rule, 1_800_000_123.0)
    [(1799998800.0, 1799999400.0), (1799999400.0, 1800000000.0)]
    """
    size = rule.window_s
    end = math.floor(now / size) * size
    return [
        (float(end - (rule.for_windows - i) * size), float(end - (rule.for_windows - i - 1) * size))
        for i in range(rule.for_windows)
    ]


def evaluate_alerts(
    ws: Workspace,
    model: str | None = None,
    *,
    config: AlertConfig | None = None,
    now: float | None = None,
    notifier: AlertNotifier | None = None,
    update: bool = True,
) -> AlertEvaluation:
    """Evaluate the rules (default: the workspace's ``monitor.yaml``) for ``model`` (a name;
    default every model a rule names, or every registered model), record state changes as
    events, log them, and queue them for the webhooks (``notifier``, default
    :func:`shared_notifier`). Returns without waiting for any webhook.
    """
    config = load_alert_config(rules_path(ws.root)) if config is None else config
    now = time.time() if now is None else now
    evaluation = AlertEvaluation(now)
    if model is not None:
        names = [resolve_version(ws, model).name]
    else:
        named = {m for rule in config.rules for m in rule.models}
        everyone = (
            {v.name for v in ws.models()} if any(not r.models for r in config.rules) else set()
        )
        names = sorted(named | everyone)
    if config.webhooks and notifier is None:
        notifier = shared_notifier(ws)
    with open_alert_store(ws) as store:
        for name in names:
            rules = config.rules_for(name)
            if not rules:
                continue
            try:
                version = resolve_version(ws, name)
            except MlscaleError as exc:
                evaluation.problems.append(f"{name}: {exc}")
                continue
            if update:
                _update(ws, name, rules, evaluation)
            source = MetricSource(ws, version)
            for rule in rules:
                result = _evaluate_rule(rule, name, version.version, source, now, store, config)
                evaluation.results.append(result)
                if result.status == "error":
                    evaluation.problems.append(f"rule {rule.name!r} on {name}: {result.message}")
                if result.event is not None:
                    evaluation.events.append(result.event)
    for event in evaluation.events:
        log_event(event.payload)
        for hook in config.webhooks:
            assert notifier is not None
            notifier.submit(event.id, event.payload, hook)
    return evaluation


def _update(ws: Workspace, name: str, rules: list[Rule], evaluation: AlertEvaluation) -> None:
    """Fold new log rows into what the rules read; problems are reported, not raised."""
    families = {r.metric.family for r in rules}
    if families & {"drift", "quality"}:
        for result in update_windows(ws, name):
            evaluation.problems += [f"{name}: {p}" for p in result.problems]
    if families & {"traffic", "performance"}:
        for indexed in update_index(ws, name):
            evaluation.problems += [f"{name}: {p}" for p in indexed.problems]


def _evaluate_rule(
    rule: Rule,
    model: str,
    version: int,
    source: MetricSource,
    now: float,
    store: AlertStore,
    config: AlertConfig,
) -> RuleResult:
    bounds = window_bounds(rule, now)
    result = RuleResult(rule.name, model, str(rule.metric), "no data", [])
    try:
        result.values = [(a, b, source.value(rule.metric, a, b)) for a, b in bounds]
    except RuleError as exc:
        result.status, result.message = "error", str(exc)
        return result
    values = [v for _, _, v in result.values]
    known = [v for v in values if v is not None]
    if known and len(known) == len(values) and all(rule.breaches(v) for v in known):
        breach: bool | None = True
    elif known and not rule.breaches(known[-1]):
        breach = False
    else:
        breach = None  # no evidence in some window: keep the state
    with store.transaction():
        before = store.state(rule.name, model)
        firing = before is not None and before[0] == "firing"
        latest = known[-1] if known else None
        status = None
        repeat = False
        if breach is True:
            last_sent = before[1] if before is not None else None
            due = (
                rule.repeat_s is not None
                and last_sent is not None
                and now - last_sent >= rule.repeat_s
            )
            if not firing or due:
                status, repeat = "firing", firing
            store.set_state(rule.name, model, "firing", now, latest, sent=status is not None)
            result.status = "firing"
        elif breach is False:
            if firing:
                status = "resolved"
            store.set_state(rule.name, model, "ok", now, latest, sent=firing)
            result.status = "ok"
        else:
            result.status = (
                "firing"
                if firing
                else "pending"
                if any(rule.breaches(v) for v in known)
                else "no data"
            )
        result.message = _message(rule, model, latest, result.status)
        if status is not None:
            payload = _payload(rule, model, version, status, repeat, result, now)
            sinks = list(dict.fromkeys(["log", *(hook.name for hook in config.webhooks)]))
            event_id = store.add_event(now, rule.name, model, status, payload, sinks)
            payload["event_id"] = event_id
            result.event = AlertEvent(
                event_id, now, rule.name, model, status, payload,
                {s: {"status": "sent" if s == "log" else "queued", "tries": int(s == "log"),
                     "error": None} for s in sinks},
            )  # fmt: skip
    return result


def _message(rule: Rule, model: str, value: float | None, status: str) -> str:
    shown = "no value" if value is None else f"{value:.4g}"
    if status == "firing":
        return f"{model}: {rule.metric} = {shown}, {rule.describe()}"
    if status == "pending":
        return (
            f"{model}: {rule.metric} = {shown}, {rule.op} {rule.threshold:g} in fewer than "
            f"{rule.for_windows} consecutive windows so far"
        )
    if status == "no data":
        return f"{model}: no data for {rule.metric} in the last {rule.for_windows} x {rule.window}"
    return f"{model}: {rule.metric} = {shown}, not {rule.op} {rule.threshold:g}"


def _payload(
    rule: Rule,
    model: str,
    version: int,
    status: str,
    repeat: bool,
    result: RuleResult,
    now: float,
) -> dict[str, Any]:
    """The JSON sent to webhooks and written to the log."""
    start, end = result.values[-1][0], result.values[-1][1]
    value = next((v for _, _, v in reversed(result.values) if v is not None), None)
    message = (
        result.message
        if status == "firing"
        else f"resolved: {model}: {rule.metric} = {value:.4g}, not {rule.op} {rule.threshold:g}"
    )
    return {
        "alert": rule.name,
        "status": status,
        "repeat": repeat,
        "model": model,
        "version": version,
        "metric": str(rule.metric),
        "op": rule.op,
        "threshold": rule.threshold,
        "value": value,
        "values": [v for _, _, v in result.values],
        "window": rule.window,
        "for": rule.for_windows,
        "window_start": _iso(start),
        "window_end": _iso(end),
        "severity": rule.severity,
        "description": rule.description,
        "message": message,
        "at": _iso(now),
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()
