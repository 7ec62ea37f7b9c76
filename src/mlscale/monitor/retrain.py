"""Continuous training: a trigger, a challenger from fresh data, a gate against the champion.

:func:`retrain` closes the monitoring loop for one model (``name@alias``, the champion):

1. **trigger** (:mod:`mlscale.monitor.triggers`): ``manual`` always fires; ``drift`` fires when
   the share of drifted features in the champion's logged traffic reaches ``drift_share``;
   ``alert`` when an alert rule (``monitor.yaml``) is firing on the model; ``schedule`` when
   the last retrain (or the champion's registration) is older than ``interval``.
2. **challenger**: trained like the champion (same model, hyperparameters, features, target,
   split and seed, from its training run) on fresh data (:mod:`mlscale.monitor.fresh_data`):
   ``data``, or by default the latest version of the champion's dataset plus the older half of
   the labelled logged traffic, written as a version of ``<name>-retrain``. ``incremental=True``
   continues the champion's own model on that data (``init_from``) instead of starting afresh.
   Nothing new to learn from is a skip.
3. **gate**: challenger and champion are scored on the same rows: the newest half of the
   labelled logged traffic when there is enough of it, else the challenger's holdout
   (:func:`mlscale.registry.compare`); the challenger must be better on ``metric`` (default
   auc, rmse for regression) by at least ``min_delta``.
4. **move**: through :func:`mlscale.registry.promote`, recorded with actor ``retrain`` and the
   figures as the reason, so ``mlscale models history`` shows it and ``rollback`` undoes it.
   With ``canary`` (a percentage) the ``canary`` alias moves instead of ``alias``; serve it with
   ``mlscale serve --canary NAME@production=NAME@canary:PCT`` and complete it with the normal
   ``mlscale models promote NAME VERSION`` (or drop it: the champion never moved).
5. **record**: every decision is a run of kind ``retrain`` (``mlscale runs list --kind
   retrain``): params say what was asked and decided (trigger, champion, challenger, data, the
   decision and why), metrics hold both figures and the gain.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlscale.errors import MlscaleError, UserError
from mlscale.models.base import adapter_class
from mlscale.monitor.drift import DRIFT_SHARE
from mlscale.monitor.fresh_data import Fresh, plan, traffic_comparison, training_set
from mlscale.monitor.triggers import TRIGGERS, Trigger, check_trigger
from mlscale.monitor.windows import parse_duration
from mlscale.refs import check_name
from mlscale.registry import check_metric, compare, holder, promote
from mlscale.registry.aliases import describe_move
from mlscale.registry.goals import gain as gain_of
from mlscale.store.metadata import check_alias

if TYPE_CHECKING:
    from mlscale.registry.promote import Comparison
    from mlscale.store.records import ModelVersion, Run
    from mlscale.workspace import Workspace

__all__ = [
    "ACTOR",
    "CANARY_ALIAS",
    "DECISIONS",
    "RUN_KIND",
    "RetrainDecision",
    "check_options",
    "main_metric",
    "retrain",
]

ACTOR = "retrain"  # who the alias moves are recorded as
RUN_KIND = "retrain"  # the kind of the runs that record decisions
CANARY_ALIAS = "canary"
#: promoted: the alias moved; canary: the canary alias moved; kept: the challenger lost;
#: skipped: no trigger or nothing new to train on; would retrain: a dry run that fired;
#: failed: the challenger could not be trained, scored or moved.
DECISIONS = ("promoted", "canary", "kept", "skipped", "would retrain", "failed")


@dataclass(frozen=True)
class RetrainDecision:
    """What one :func:`retrain` call decided, with its figures; ``to_dict`` for JSON."""

    model: str
    alias: str
    trigger: str  # manual | drift | alert | schedule
    decision: str  # one of DECISIONS
    reason: str  # why: the trigger's verdict, the comparison, or the error
    champion: str  # "loans@1"
    challenger: str | None = None  # "loans@2": the version trained (None when none was)
    data: str | None = None  # the dataset version the challenger was (or would be) trained on
    base: str | None = None  # the dataset version ``data`` started from (``data`` adds traffic)
    traffic_rows: int = 0  # labelled logged rows added to ``base`` to make ``data``
    metric: str | None = None
    champion_value: float | None = None
    challenger_value: float | None = None
    min_delta: float = 0.0
    evaluated_on: str | None = None  # "the holdout of loans@2 (600 rows of loans@2)"
    moved: str | None = None  # "loans@production: 1 -> 2"
    incremental: bool = False
    canary: float | None = None  # the percentage to route, when the canary alias moved
    run: str | None = None  # id of the run that records this decision (None for a dry run)
    train_run: str | None = None  # id of the challenger's training run

    @property
    def gain(self) -> float | None:
        """How much better the challenger scored (negative: worse); None without both figures."""
        if self.metric is None or self.champion_value is None or self.challenger_value is None:
            return None
        return gain_of(self.metric, self.challenger_value, self.champion_value)

    def describe(self) -> str:
        """One line: the model, its champion, the decision, the trigger and why.

        >>> RetrainDecision("loans", "production", "drift", "skipped", "no drift",
        ...                 "loans@1").describe()
        'loans@production (loans@1): skipped (drift): no drift'
        """
        head = f"{self.model}@{self.alias} ({self.champion}): {self.decision} ({self.trigger})"
        return f"{head}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"gain": self.gain}


def main_metric(task: str) -> str:
    """The metric a challenger must beat the champion on, unless one is asked for.

    >>> main_metric("binary"), main_metric("regression")
    ('auc', 'rmse')
    """
    return "rmse" if task == "regression" else "auc"


def retrain(
    ws: Workspace,
    name: str,
    *,
    on: str = "manual",
    alias: str = "production",
    data: str | None = None,
    metric: str | None = None,
    min_delta: float = 0.0,
    incremental: bool = False,
    canary: float | None = None,
    params: dict[str, Any] | None = None,
    dry_run: bool = False,
    window: str | None = None,
    drift_share: float = DRIFT_SHARE,
    interval: str = "7d",
    now: float | None = None,
    record_skips: bool = True,
) -> RetrainDecision:
    """Retrain model ``name`` if trigger ``on`` fires; promote the challenger only if it wins.

    ``params`` override hyperparameters of the champion's. ``window`` (``"1h"``; default every
    logged row of the champion) and ``drift_share`` tune the drift trigger, ``interval`` (``"7d"``)
    the schedule one; ``now`` (epoch seconds) stands in for the clock. A dry run checks the
    trigger and the data and stops there, recording nothing. ``record_skips=False`` leaves
    skipped decisions unrecorded (``watch`` checks often). Bad arguments raise a UserError;
    a challenger that fails to train or score is a recorded ``failed`` decision.
    """
    check_options(
        on=on, alias=alias, min_delta=min_delta, canary=canary, drift_share=drift_share,
        interval=interval, window=window,
    )  # fmt: skip
    options = _Options(on, alias, metric, min_delta, incremental, canary, params, data)
    champion = _champion(ws, check_name(name, "model name"), alias)
    template = _template(ws, champion)
    options = options.checked(ws, champion)
    started = time.time()
    decide = _Decide(ws, champion, options, started)
    trigger = check_trigger(
        ws, champion, on, window=window, drift_share=drift_share, interval=interval, now=now,
        alias=alias,
    )  # fmt: skip
    if not trigger.fired:
        return decide.skipped(trigger.reason, record=record_skips)
    fresh = plan(ws, champion, alias, data, window=window, now=now)
    if fresh.stale is not None:
        why = f"{trigger.reason}; but {fresh.stale}"
        return decide.skipped(why, data=fresh.base, record=record_skips)
    if dry_run:
        how = "continue" if incremental else "train a new model like"
        judged = (
            f"the newest {fresh.evaluation.num_rows:,} labelled logged rows"
            if fresh.evaluation is not None
            else "the challenger's holdout"
        )
        why = (
            f"{trigger.reason}; would {how} {champion.ref} on {fresh.describe()}, "
            f"judged on {judged}"
        )
        return decide.dry_run(why, fresh.base)
    return decide.challenge(trigger, template, fresh)


def check_options(
    *,
    on: str = "manual",
    alias: str = "production",
    min_delta: float = 0.0,
    canary: float | None = None,
    drift_share: float = DRIFT_SHARE,
    interval: str = "7d",
    window: str | None = None,
) -> None:
    """UserError for an argument of :func:`retrain` that no model could accept.

    >>> check_options(canary=120)
    Traceback (most recent call last):
    ...
    mlscale.errors.UserError: canary percentage must be above 0 and at most 100, got 120
    """
    if on not in TRIGGERS:
        raise UserError(f"unknown trigger {on!r}: expected one of {', '.join(TRIGGERS)}")
    check_alias(alias)
    if min_delta < 0:
        raise UserError(f"min delta must be 0 or more, got {min_delta:g}")
    if canary is not None and not 0 < canary <= 100:
        raise UserError(f"canary percentage must be above 0 and at most 100, got {canary:g}")
    if canary is not None and alias == CANARY_ALIAS:
        raise UserError(f"a canary for alias {CANARY_ALIAS!r} would move that same alias")
    if not 0 < drift_share <= 1:
        raise UserError(f"drift share must be above 0 and at most 1, got {drift_share:g}")
    parse_duration(interval)
    if window is not None:
        parse_duration(window)


@dataclass(frozen=True)
class _Options:
    on: str
    alias: str
    metric: str | None
    min_delta: float
    incremental: bool
    canary: float | None
    params: dict[str, Any] | None
    data: str | None

    def checked(self, ws: Workspace, champion: ModelVersion) -> _Options:
        """The arguments that depend on the champion checked; the default metric filled in."""
        if self.incremental and not adapter_class(champion.flavor).warm_start:
            raise UserError(
                f"{champion.ref} is a {champion.flavor} model, which cannot continue training; "
                "retrain it without --incremental"
            )
        if self.data is not None:
            ws.dataset(self.data)  # NotFoundError naming the versions for a typo
        if self.params:
            adapter_class(champion.flavor).check_params(self.params)
        task = champion.signature["task"]
        metric = check_metric(self.metric or main_metric(task), task)
        return _Options(
            self.on, self.alias, metric, self.min_delta, self.incremental, self.canary,
            self.params, self.data,
        )  # fmt: skip


def _champion(ws: Workspace, name: str, alias: str) -> ModelVersion:
    ws.model(f"{name}@latest")  # NotFoundError naming the models for a typo
    champion = holder(ws, name, alias)
    if champion is None:
        raise UserError(
            f"{name}@{alias} points at no version, so there is no champion to retrain; "
            f"promote one first: mlscale models promote {name} VERSION --alias {alias}"
        )
    return champion


def _template(ws: Workspace, champion: ModelVersion) -> Run:
    """The champion's training run: how to train its challenger."""
    run = ws.metadata.get_run(champion.run_id) if champion.run_id else None
    if run is None or run.kind != "train" or "target" not in run.params:
        raise UserError(
            f"{champion.ref} has no training run to repeat (registered without one); "
            "train a challenger yourself and promote it with --require-better"
        )
    return run


class _Decide:
    """Builds, records and returns the decision of one retrain call."""

    def __init__(
        self, ws: Workspace, champion: ModelVersion, options: _Options, started: float
    ) -> None:
        self.ws = ws
        self.champion = champion
        self.options = options
        self.started = started

    def _decision(self, decision: str, reason: str, **fields: Any) -> RetrainDecision:
        o = self.options
        return RetrainDecision(
            model=self.champion.name,
            alias=o.alias,
            trigger=o.on,
            decision=decision,
            reason=reason,
            champion=self.champion.ref,
            metric=o.metric,
            min_delta=o.min_delta,
            incremental=o.incremental,
            **fields,
        )

    def skipped(self, reason: str, *, data: str | None = None, record: bool) -> RetrainDecision:
        decision = self._decision("skipped", reason, data=data)
        return self._record(decision) if record else decision

    def dry_run(self, reason: str, data: str) -> RetrainDecision:
        return self._decision("would retrain", reason, data=data)

    def challenge(self, trigger: Trigger, template: Run, fresh: Fresh) -> RetrainDecision:
        """Train the challenger, gate it against the champion, move the alias if it wins."""
        o = self.options
        assert o.metric is not None
        fields: dict[str, Any] = {"data": fresh.base, "base": fresh.base}
        fields["traffic_rows"] = fresh.traffic_rows
        try:
            time_column = template.params.get("time_column")
            dataset = training_set(self.ws, self.champion, fresh, time_column)
            fields["data"] = dataset
            options = _train_options(self.ws, self.champion, template, dataset, o)
            result = self.ws.train(dataset, **options)
            challenger = result.model
            fields |= {"challenger": challenger.ref, "train_run": result.run.id}
            comparison = None
            if fresh.evaluation is not None:
                comparison = traffic_comparison(
                    self.ws, challenger, self.champion, fresh.evaluation, o.metric, o.alias,
                    o.min_delta,
                )  # fmt: skip
            if comparison is None:  # no labelled traffic (or the metric is undefined on it)
                comparison = compare(
                    self.ws, challenger, self.champion, o.metric, o.alias, o.min_delta
                )
            fields |= {
                "champion_value": comparison.holder_value,
                "challenger_value": comparison.challenger_value,
                "evaluated_on": comparison.holdout,
            }
            if not comparison.passed:
                why = (
                    f"{trigger.reason}; {comparison.describe()}; "
                    f"{o.alias} stays at {self.champion.ref}"
                )
                return self._record(self._decision("kept", why, **fields))
            moved = self._move(challenger, comparison, trigger)
        except MlscaleError as exc:
            return self._record(self._decision("failed", f"{trigger.reason}; {exc}", **fields))
        except BaseException as exc:  # Ctrl-C included: the attempt is still on record
            self._record(self._decision("failed", f"{trigger.reason}; {exc!r}", **fields))
            raise
        fields["moved"] = moved
        if o.canary is not None:
            why = (
                f"{trigger.reason}; {comparison.describe()}; send it {o.canary:g}% of the traffic "
                f"with: mlscale serve --canary {self.champion.name}@{o.alias}="
                f"{self.champion.name}@{CANARY_ALIAS}:{o.canary:g}; complete it with: mlscale "
                f"models promote {self.champion.name} {challenger.version} --alias {o.alias}"
            )
            return self._record(self._decision("canary", why, canary=o.canary, **fields))
        why = f"{trigger.reason}; {comparison.describe()}"
        return self._record(self._decision("promoted", why, **fields))

    def _move(self, challenger: ModelVersion, comparison: Comparison, trigger: Trigger) -> str:
        """Move the alias (or the canary alias) to the challenger, through the registry."""
        o = self.options
        name = self.champion.name
        now = holder(self.ws, name, o.alias)
        if now is None or now.version != self.champion.version:
            raise UserError(
                f"{name}@{o.alias} moved while {challenger.ref} was being trained and compared "
                f"with {self.champion.ref}; retrain again to challenge the new holder"
            )
        target = CANARY_ALIAS if o.canary is not None else o.alias
        promotion = promote(
            self.ws,
            name,
            challenger.version,
            alias=target,
            actor=ACTOR,
            reason=f"retrain, trigger {o.on}: {trigger.reason}; {comparison.describe()}",
        )
        if promotion.event is None:
            return f"{name}@{target} already at {challenger.version}"
        return describe_move(promotion.event)

    def _record(self, decision: RetrainDecision) -> RetrainDecision:
        """Store the decision as a run of kind ``retrain``; returns it with the run's id."""
        d = decision
        params = {
            "model": d.model,
            "alias": d.alias,
            "trigger": d.trigger,
            "decision": d.decision,
            "reason": d.reason,
            "champion": d.champion,
            "challenger": d.challenger,
            "data": d.data,
            "base": d.base,
            "traffic_rows": d.traffic_rows,
            "metric": d.metric,
            "min_delta": d.min_delta,
            "evaluated_on": d.evaluated_on,
            "moved": d.moved,
            "incremental": d.incremental,
            "canary": d.canary,
            "train_run": d.train_run,
            "hyperparameter_overrides": self.options.params,
        }
        metrics = {}
        if d.metric is not None and d.champion_value is not None:
            metrics[f"champion_{d.metric}"] = d.champion_value
        if d.metric is not None and d.challenger_value is not None:
            metrics[f"challenger_{d.metric}"] = d.challenger_value
        if d.gain is not None:
            metrics["gain"] = d.gain
        # Created once the decision is made, so its params hold it; the wall time is in env.
        run = self.ws.metadata.create_run(RUN_KIND, params=params, dataset=d.data)
        self.ws.metadata.finish_run(
            run.id,
            status="failed" if d.decision == "failed" else "finished",
            metrics=metrics,
            env={"seconds": time.time() - self.started},
            error=d.reason if d.decision == "failed" else None,
        )
        return RetrainDecision(**{**asdict(d), "run": run.id})


def _train_options(
    ws: Workspace, champion: ModelVersion, template: Run, dataset: str, options: _Options
) -> dict[str, Any]:
    """Keyword arguments for :meth:`Workspace.train` that repeat the champion's training."""
    p = template.params
    features = {f["name"] for f in champion.signature["features"]}
    target = champion.signature["target"]
    columns = [c["name"] for c in ws.dataset(dataset).schema["columns"]]
    hyperparameters = dict(p.get("hyperparameters") or {}) | (options.params or {})
    train: dict[str, Any] = {
        "target": target,
        "task": champion.signature["task"],
        "model": p.get("model") or champion.flavor,
        "name": champion.name,
        "params": hyperparameters,
        "seed": p.get("seed", 42),
        # A k-fold champion has no holdout; its challenger keeps one, to be compared on.
        "split": "holdout" if p.get("split") == "kfold" else p.get("split") or "holdout",
        "test_size": p.get("test_size") or 0.2,
    }
    if train["split"] == "time":
        train["time_column"] = p.get("time_column")
    if options.incremental:
        train["init_from"] = champion.ref  # the champion's features and classes come with it
    else:
        # Exactly the champion's features: new columns in fresh data are not picked up silently.
        train["exclude"] = [c for c in columns if c not in features and c != target]
        train["out_of_core"] = bool(p.get("out_of_core"))
    return train
