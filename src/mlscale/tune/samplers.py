"""How the next trial's hyperparameters are chosen: TPE (default), random, a grid, or CMA-ES.

Every choice is checked before any work starts (:func:`check_sampler`), so a bad one fails at
once with a message instead of after the data is read.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlscale._lazy import require
from mlscale.errors import UserError
from mlscale.tune.space import Space

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "grid", "cmaes")
#: Optuna's GridSampler lists every point up front; past this many, the grid is refused.
MAX_GRID_POINTS = 100_000


def grid_size(space: Space, points: int) -> int:
    """How many points the grid over ``space`` has, ``points`` per numeric range.

    >>> from mlscale.tune.space import Dimension
    >>> grid_size(Space("m", {"a": Dimension("a", "float", 0, 1),
    ...                       "b": Dimension("b", "categorical", choices=("x", "y"))}), 5)
    10
    """
    return math.prod(len(values) for values in space.grid(points).values())


def check_sampler(name: str, space: Space, grid_points: int) -> None:
    """Raise a UserError if ``name`` cannot search ``space``."""
    if name not in SAMPLERS:
        raise UserError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")
    if not space.dims:
        raise UserError(
            f"the search space of model {space.model!r} is empty: every hyperparameter is fixed; "
            "give at least one a range or choices in the --space file"
        )
    if name == "grid":
        if grid_points < 1:
            raise UserError(f"--grid-points must be at least 1, got {grid_points}")
        size = grid_size(space, grid_points)
        if size > MAX_GRID_POINTS:
            raise UserError(
                f"the grid over {len(space.dims)} hyperparameters at {grid_points} points per "
                f"range has {size:,} points (at most {MAX_GRID_POINTS:,}); lower --grid-points "
                "or tune fewer hyperparameters (a --space file with inherit_defaults: false)"
            )
    if name == "cmaes":
        categorical = [d.name for d in space.dims.values() if d.kind == "categorical"]
        if categorical:
            raise UserError(
                f"CMA-ES searches numeric ranges only, but {', '.join(categorical)} "
                "take(s) choices; fix them in the --space file or use --sampler tpe"
            )
        require("cmaes", extra="tune")


def make_sampler(
    name: str, space: Space, *, seed: int, grid_points: int
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler called ``name``; call :func:`check_sampler` first."""
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(grid_points), seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    # Optuna's TPE defaults are kept (multivariate, and a "constant liar" so that parallel
    # workers do not all pick the same point while the others' trials are still running).
    return optuna.samplers.TPESampler(seed=seed)
