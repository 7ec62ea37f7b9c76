"""Stopping unpromising trials early, from the validation loss reported while they train.

A trial reports its validation loss every ``interval`` iterations (the adapter's
``on_iteration``), negated when the study maximizes, so that "higher is better" holds for the
intermediate values as for the metric. The loss, not the study's metric, is what is reported:
every adapter computes it at each iteration for free, whereas AUC would mean predicting the
validation rows again and again. The two move together closely enough to rank trials.

Reports are spaced so that the longest trial makes about :data:`REPORTS_PER_TRIAL` of them: each
one is a write to the study's storage, and pruning needs no finer grain.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlscale.errors import UserError
from mlscale.tune.space import Space

if TYPE_CHECKING:
    import optuna

    from mlscale.models.base import BaseModel

PRUNERS = ("hyperband", "median", "none")
#: Hyperband by default: Optuna's own benchmarks rank it first with TPE, and unlike the median
#: pruner it needs no trials run to the end before it starts stopping the weak ones.
DEFAULT_PRUNER = "hyperband"
REPORTS_PER_TRIAL = 32
#: Trials that run to the end before the median pruner starts comparing.
MEDIAN_STARTUP_TRIALS = 5


def check_pruner(name: str) -> None:
    if name not in PRUNERS:
        raise UserError(f"unknown pruner {name!r}; expected one of {', '.join(PRUNERS)}")


def max_iterations(space: Space, cls: type[BaseModel]) -> int | None:
    """The most iterations a trial of ``space`` can train for (None: not an iterative model).

    >>> from mlscale.models.lightgbm import LightGBMModel
    >>> from mlscale.tune.space import default_space
    >>> max_iterations(default_space("lightgbm", LightGBMModel), LightGBMModel)
    1000
    """
    name = cls.iterations_param
    if name is None:
        return None
    if name in space.dims:
        dim = space.dims[name]
        if dim.kind == "categorical":
            return int(max(dim.choices))
        return int(dim.high)  # type: ignore[arg-type]
    if name in space.fixed:
        return int(space.fixed[name])
    return int(cls.params_spec[name].default)


def report_interval(iterations: int | None) -> int | None:
    """Iterations between two reports of a trial that may train ``iterations`` long.

    >>> report_interval(1000), report_interval(20), report_interval(None)
    (32, 1, None)
    """
    if iterations is None:
        return None
    return max(1, math.ceil(iterations / REPORTS_PER_TRIAL))


def make_pruner(
    name: str, *, interval: int | None, iterations: int | None
) -> optuna.pruners.BasePruner:
    """The Optuna pruner called ``name``; steps are iteration numbers."""
    import optuna

    if name == "none" or interval is None or iterations is None:
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=interval, max_resource=max(iterations, interval), reduction_factor=3
        )
    return optuna.pruners.MedianPruner(
        n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=0, interval_steps=1
    )
