"""Hyperparameter tuning with Optuna: a search space per model, pruning, parallel trials, resume.

- :mod:`~mlscale.tune.space`: the default space from the adapters' search ranges, YAML overrides
- :mod:`~mlscale.tune.samplers`, :mod:`~mlscale.tune.pruning`: TPE/random/grid/CMA-ES; median,
  Hyperband or no pruning
- :mod:`~mlscale.tune.objective`: one trial; :mod:`~mlscale.tune.worker`: the trial loop
- :mod:`~mlscale.tune.storage`: where a study lives; :mod:`~mlscale.tune.recovery`: resuming
- :mod:`~mlscale.tune.tuner`: ``tune``, which ties them together and registers the best trial

Only the modules that talk to Optuna import it, and only when they run.
"""

from mlscale.tune.space import Dimension, Space, default_space, load_space, parse_space
from mlscale.tune.tuner import TuneInterrupted, TuneProgress, TuneResult, tune

__all__ = [
    "Dimension",
    "Space",
    "TuneInterrupted",
    "TuneProgress",
    "TuneResult",
    "default_space",
    "load_space",
    "parse_space",
    "tune",
]
