"""Move an alias to a version, optionally only if it beats the alias's holder on one holdout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlscale.errors import UserError
from mlscale.refs import Ref
from mlscale.registry.aliases import current_actor, holder
from mlscale.registry.goals import HIGHER_IS_BETTER, check_metric, direction, gain
from mlscale.registry.holdout import Holdout, load_holdout, score
from mlscale.store.metadata import check_alias
from mlscale.store.records import AliasEvent, ModelVersion

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


@dataclass(frozen=True)
class Comparison:
    """A challenger's and the alias holder's figures on one metric, on the same holdout rows."""

    metric: str
    alias: str
    holdout: str  # "the holdout of loans@3 (600 rows of loans@2)"
    challenger: str  # "loans@3"
    challenger_value: float
    holder: str | None  # "loans@2"; None when the alias points nowhere yet
    holder_value: float | None
    min_delta: float

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]

    @property
    def gain(self) -> float | None:
        """How much better the challenger is (negative: worse); None without a holder."""
        if self.holder_value is None:
            return None
        return gain(self.metric, self.challenger_value, self.holder_value)

    @property
    def passed(self) -> bool:
        """Strictly better than the holder, by at least ``min_delta`` (or no holder to beat)."""
        return self.gain is None or (self.gain > 0 and self.gain >= self.min_delta)

    @property
    def verdict(self) -> str:
        """``better by 0.0213 (higher is better)``, ``worse by ...``, or why there is none."""
        if self.gain is None:
            return f"no current {self.alias} to compare with"
        if self.gain < 0:
            verdict = f"worse by {-self.gain:.4f}"
        elif self.gain == 0:
            verdict = "no better"
        elif self.gain < self.min_delta:
            verdict = f"better by {self.gain:.4f}, less than the required {self.min_delta:g}"
        else:
            verdict = f"better by {self.gain:.4f}"
        return f"{verdict} ({direction(self.metric)})"

    def describe(self) -> str:
        """Both figures and the verdict, in one line (kept in the alias move's reason)."""
        figures = f"{self.metric} {self.challenger_value:.4f} for {self.challenger}"
        if self.holder_value is None:
            return f"{figures} on {self.holdout}; {self.verdict}"
        return (
            f"{figures} vs {self.holder_value:.4f} for {self.holder} (the current {self.alias}) "
            f"on {self.holdout}: {self.verdict}"
        )


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote` did: the recorded move, and the comparison that allowed it."""

    event: AliasEvent | None  # None: the alias already pointed at the version; nothing moved
    comparison: Comparison | None


def promote(
    ws: Workspace,
    name: str,
    version: int,
    *,
    alias: str = "production",
    require_better: str | None = None,
    min_delta: float = 0.0,
    actor: str | None = None,
    reason: str | None = None,
) -> Promotion:
    """Point ``name@alias`` at ``version``, recording who moved it and why.

    With ``require_better`` (a metric such as ``auc`` or ``rmse``), the challenger and the
    current holder of the alias are both scored on the challenger's holdout rows; the move is
    refused (UserError with both figures) unless the challenger is strictly better, by at least
    ``min_delta``; the figures are kept in the move's reason when it passes. Promoting the
    version the alias already points at changes nothing (``event`` is None).
    """
    check_alias(alias)
    if min_delta < 0:
        raise UserError(f"min delta must be 0 or more, got {min_delta:g}")
    challenger = ws.metadata.get_model_version(Ref(name, version=version))
    current = holder(ws, name, alias)
    if current is not None and current.version == version:
        return Promotion(None, None)
    comparison = None
    if require_better is not None:
        comparison = compare(ws, challenger, current, require_better, alias, min_delta)
        if not comparison.passed:
            raise UserError(
                f"refused to move {name}@{alias} to version {version}: {comparison.describe()}; "
                f"{name}@{alias} stays at version {_version(current)} "
                "(promote without a required metric to override)"
            )
        # The holder may have moved while the two models were being scored.
        if _version(holder(ws, name, alias)) != _version(current):
            raise UserError(
                f"{name}@{alias} moved while version {version} was being compared with it; "
                "promote again to compare with the new holder"
            )
    notes = [n for n in (reason, comparison and comparison.describe()) if n]
    event = ws.metadata.set_alias(
        name, alias, version, actor=actor or current_actor(), reason="; ".join(notes) or None
    )
    return Promotion(event, comparison)


def compare(
    ws: Workspace,
    challenger: ModelVersion,
    current: ModelVersion | None,
    metric: str,
    alias: str,
    min_delta: float = 0.0,
) -> Comparison:
    """Score ``challenger`` and ``current`` on ``metric`` on the challenger's holdout rows."""
    task = challenger.signature["task"]
    check_metric(metric, task)
    if current is not None:
        _check_comparable(challenger, current)
    scored = [challenger] if current is None else [challenger, current]
    features = [f["name"] for v in scored for f in v.signature["features"]]
    holdout = load_holdout(ws, challenger, columns=features)
    challenger_value = _figure(ws, challenger, holdout, metric)
    holder_value = _figure(ws, current, holdout, metric) if current is not None else None
    return Comparison(
        metric=metric,
        alias=alias,
        holdout=holdout.describe(),
        challenger=challenger.ref,
        challenger_value=challenger_value,
        holder=current.ref if current is not None else None,
        holder_value=holder_value,
        min_delta=min_delta,
    )


def _check_comparable(challenger: ModelVersion, current: ModelVersion) -> None:
    a, b = challenger.signature, current.signature
    if (a["target"], a["task"]) != (b["target"], b["task"]):
        raise UserError(
            f"{challenger.ref} predicts {a['target']!r} ({a['task']}) but {current.ref} predicts "
            f"{b['target']!r} ({b['task']}): models of different targets or tasks cannot be "
            "compared; promote without a required metric, or to another alias"
        )


def _figure(ws: Workspace, version: ModelVersion, holdout: Holdout, metric: str) -> float:
    metrics = score(ws, version, holdout)
    if metric not in metrics:
        # AUC is undefined on rows that lack a class.
        raise UserError(
            f"{metric} cannot be computed for {version.ref} on {holdout.describe()}; "
            f"choose one of {', '.join(sorted(metrics))}"
        )
    return metrics[metric]


def _version(mv: ModelVersion | None) -> int | None:
    return mv.version if mv is not None else None
