"""When to retrain a model: on request, on drift of its served traffic, on an alert, or on a
schedule.

Each check returns a :class:`Trigger`: whether it fired and a sentence saying why, which the
retrain decision keeps. A drift check with no logged traffic does not fire; it says so. The
alert trigger reads the alert state stored by the last evaluation of the rules
(:func:`mlscale.monitor.evaluate_alerts`: ``mlscale monitor alerts`` or ``mlscale watch``); an
alert that has fired since before the champion took its alias judged the previous version, and
does not count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlscale.errors import UserError
from mlscale.monitor.drift import drift_report
from mlscale.monitor.windows import parse_duration

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion, Run
    from mlscale.workspace import Workspace

TRIGGERS = ("manual", "drift", "alert", "schedule")
_RUNS_SCANNED = 10_000  # retrain runs looked through for a model's last retrain


@dataclass(frozen=True)
class Trigger:
    """Whether a trigger fired, and why (or why not), in words."""

    kind: str
    fired: bool
    reason: str


def check_trigger(
    ws: Workspace,
    champion: ModelVersion,
    kind: str,
    *,
    window: str | None = None,
    drift_share: float = 0.5,
    interval: str = "7d",
    now: float | None = None,
    alias: str = "production",
) -> Trigger:
    """Check trigger ``kind`` (one of :data:`TRIGGERS`) for ``champion``.

    >>> check_trigger(None, None, "manual")
    Trigger(kind='manual', fired=True, reason='retrain asked for')
    """
    if kind == "manual":
        return Trigger(kind, True, "retrain asked for")
    if kind == "drift":
        return drift_trigger(ws, champion, window=window, drift_share=drift_share, now=now)
    if kind == "alert":
        return alert_trigger(ws, champion, alias=alias)
    if kind == "schedule":
        return schedule_trigger(ws, champion, interval=interval, now=now, alias=alias)
    raise UserError(f"unknown trigger {kind!r}: expected one of {', '.join(TRIGGERS)}")


def drift_trigger(
    ws: Workspace,
    champion: ModelVersion,
    *,
    window: str | None = None,
    drift_share: float = 0.5,
    now: float | None = None,
) -> Trigger:
    """Fires when at least ``drift_share`` of the champion's features drifted in ``window``
    (back from ``now``; default every logged row of the champion)."""
    if window is not None:
        parse_duration(window)  # a bad argument is an error, not "no drift"
    try:
        report = drift_report(ws, champion.ref, window=window, now=now)
    except UserError as exc:  # nothing logged (yet) in the window: nothing drifted
        return Trigger("drift", False, f"no drift verdict: {exc}")
    drifted = report.drifted
    share = report.share_drifted
    figures = (
        f"{len(drifted)} of {len(report.features)} features drifted ({share:.0%}, threshold "
        f"{drift_share:.0%}) in {champion.ref}'s traffic ({report.window['description']}: "
        f"{report.rows:,} rows)"
    )
    if drifted:
        figures += f": {', '.join(drifted)}"
    return Trigger("drift", share >= drift_share, figures)


def alert_trigger(ws: Workspace, champion: ModelVersion, *, alias: str = "production") -> Trigger:
    """Fires when an alert rule is firing on the model, and began to after the champion took
    ``alias``."""
    from mlscale.monitor.alerts import active_alerts

    firing = active_alerts(ws, champion.name)
    if not firing:
        return Trigger("alert", False, f"no alert is firing on {champion.name}")
    took_over = _holder_since(ws, champion, alias)
    current = [a for a in firing if took_over is None or a.since >= took_over]
    shown = "; ".join(
        f"{a.rule!r} since {datetime.fromtimestamp(a.since, UTC):%Y-%m-%d %H:%M} UTC"
        + ("" if a.value is None else f" (value {a.value:.4g})")
        for a in current or firing
    )
    if not current:
        return Trigger(
            "alert",
            False,
            f"alert(s) firing on {champion.name} began before {champion.ref} became "
            f"{alias}, so they judged the previous version: {shown}",
        )
    return Trigger("alert", True, f"alert(s) firing on {champion.name}: {shown}")


def _holder_since(ws: Workspace, champion: ModelVersion, alias: str) -> float | None:
    """When ``alias`` last moved to the champion (epoch seconds); None if it never moved."""
    moves = [
        e
        for e in ws.metadata.alias_history(champion.name)
        if e.alias == alias and e.to_version == champion.version
    ]
    return moves[-1].at.timestamp() if moves else None


def schedule_trigger(
    ws: Workspace,
    champion: ModelVersion,
    *,
    interval: str = "7d",
    now: float | None = None,
    alias: str = "production",
) -> Trigger:
    """Fires when the model's last retrain attempt (or, before any, its champion's
    registration) is at least ``interval`` old."""
    seconds = parse_duration(interval)
    now = time.time() if now is None else now
    last = last_retrain(ws, champion.name, alias)
    if last is None:
        since, what = champion.created_at, f"no retrain yet; {champion.ref} was registered"
    else:
        since, what = last.started_at, "last retrain"
    age = now - since.timestamp()
    reason = (
        f"{what} {_ago(age)} ago ({since:%Y-%m-%d %H:%M} UTC), "
        f"{'at least' if age >= seconds else 'less than'} the interval of {interval}"
    )
    return Trigger("schedule", age >= seconds, reason)


def last_retrain(ws: Workspace, name: str, alias: str = "production") -> Run | None:
    """The newest recorded retrain of ``name@alias`` that got past its trigger (promoted, kept,
    canary or failed: skips do not count)."""
    for run in ws.metadata.list_runs(_RUNS_SCANNED, kind="retrain"):  # newest first
        p = run.params
        if p.get("model") == name and p.get("alias") == alias and p.get("decision") != "skipped":
            return run
    return None


def _ago(seconds: float) -> str:
    """
    >>> _ago(30), _ago(5400), _ago(3 * 86400)
    ('30s', '1.5h', '3.0d')
    """
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
