"""One tick of ``mlscale watch``: monitor -> alerts -> retrain each model whose trigger fires.

A tick reads the prediction log into the window summaries once, evaluates the alert rules of
``monitor.yaml`` (:func:`mlscale.monitor.evaluate_alerts`: events are logged and sent to the
webhooks), then, per watched model (each model whose alias, ``production`` by default, points
at a version), checks the drift, alert and schedule triggers in that order; the first that
fires trains a challenger and gates it (:func:`mlscale.monitor.retrain.retrain`). Skips are
not recorded as runs (a tick every few minutes would bury the real decisions); the tick
reports them. The loop around ticks is the
caller's (the CLI sleeps between them), so a cron job can run one tick and exit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlscale.errors import MlscaleError
from mlscale.monitor.alerts import AlertEvaluation, evaluate_alerts
from mlscale.monitor.retrain import RetrainDecision, check_options, retrain
from mlscale.monitor.windows import UpdateResult, update_windows
from mlscale.registry import holder

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

WATCH_TRIGGERS = ("drift", "alert", "schedule")
_CHECKED = ("min_delta", "canary", "drift_share", "interval", "window")  # see check_options


@dataclass
class Tick:
    """What one tick did: new log rows folded in, one decision per model, and any trouble."""

    at: datetime
    updates: list[UpdateResult] = field(default_factory=list)
    alerts: AlertEvaluation | None = None  # None: the rules could not be evaluated
    decisions: list[RetrainDecision] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "loans: <why it could not be checked>"

    @property
    def new_rows(self) -> int:
        return sum(u.rows for u in self.updates)

    def describe(self) -> str:
        """``2026-11-21 08:30:00 UTC: 1,200 new logged rows; 2 models checked, 1 retrained``."""
        acted = sum(d.decision != "skipped" for d in self.decisions)
        checked = len(self.decisions)
        firing = len(self.alerts.firing) if self.alerts is not None else 0
        text = (
            f"{self.at:%Y-%m-%d %H:%M:%S} UTC: {self.new_rows:,} new logged rows; "
            f"{firing} alert{'s' * (firing != 1)} firing; "
            f"{checked} model{'s' * (checked != 1)} checked, {acted} retrained"
        )
        return text + (f", {len(self.problems)} problem(s)" if self.problems else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "new_rows": self.new_rows,
            "updates": [dataclasses.asdict(u) for u in self.updates],
            "alerts": None if self.alerts is None else self.alerts.to_dict(),
            "decisions": [d.to_dict() for d in self.decisions],
            "problems": self.problems,
        }


def watched(ws: Workspace, alias: str = "production") -> list[str]:
    """The models whose ``alias`` points at a version: those a watch retrains."""
    return [m.name for m in ws.models() if holder(ws, m.name, alias) is not None]


def tick(
    ws: Workspace,
    names: list[str] | None = None,
    *,
    alias: str = "production",
    now: float | None = None,
    **options: Any,
) -> Tick:
    """Update the monitor windows, then check and retrain each of ``names`` (default:
    :func:`watched`). ``options`` go to :func:`~mlscale.monitor.retrain.retrain` (``window``,
    ``drift_share``, ``interval``, ``min_delta``, ``canary``, ...). One model's error is reported
    in ``problems`` and does not stop the others."""
    check_options(alias=alias, **{k: v for k, v in options.items() if k in _CHECKED})
    result = Tick(datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC))
    result.updates = update_windows(ws)
    result.problems += [f"{u.model}: {p}" for u in result.updates for p in u.problems]
    try:
        result.alerts = evaluate_alerts(ws, now=now)
        result.problems += [f"alerts: {p}" for p in result.alerts.problems]
    except MlscaleError as exc:  # a broken monitor.yaml is reported; retraining goes on
        result.problems.append(f"alerts: {exc}")
    for name in watched(ws, alias) if names is None else names:
        try:
            result.decisions.append(_check(ws, name, alias, now, options))
        except MlscaleError as exc:
            result.problems.append(f"{name}: {exc}")
    return result


def _check(
    ws: Workspace, name: str, alias: str, now: float | None, options: dict[str, Any]
) -> RetrainDecision:
    """The first watch trigger that fires decides; if none does, one skip naming both."""
    skips = []
    for trigger in WATCH_TRIGGERS:
        decision = retrain(
            ws, name, on=trigger, alias=alias, now=now, record_skips=False, **options
        )
        if decision.decision != "skipped":
            return decision
        skips.append(decision)
    return dataclasses.replace(
        skips[-1],
        trigger=", ".join(WATCH_TRIGGERS),
        reason="; ".join(f"{d.trigger}: {d.reason}" for d in skips),
    )
