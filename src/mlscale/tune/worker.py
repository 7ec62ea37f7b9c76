"""The trial loop one worker runs, in the calling process or in a process of its own.

Workers share nothing but the study's storage: each asks it for the next trial, and stops when
the study holds the planned number of trials (running ones included, so parallel workers do not
overshoot), when the time is up, or when a grid is exhausted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from mlscale.config import Config
from mlscale.tune.objective import Objective
from mlscale.tune.pruning import make_pruner
from mlscale.tune.samplers import make_sampler
from mlscale.tune.storage import StudyStorage

if TYPE_CHECKING:
    import optuna

    from mlscale.workspace import Workspace

#: Called in the calling process after each of its trials.
TrialCallback = Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]


@dataclass
class WorkerTask:
    """Everything a worker needs; picklable, so it travels to worker processes whole."""

    config: Config
    storage: StudyStorage
    study: str
    objective: Objective
    sampler: str
    pruner: str
    grid_points: int
    n_trials: int  # in the whole study, across every run and worker
    deadline: float | None  # time.time() after which no trial starts
    iterations: int | None

    def __call__(self, worker: int) -> int:
        """Run trials as worker number ``worker`` in a process of its own; return how many."""
        from mlscale.workspace import Workspace

        _quiet_optuna()
        return run_trials(self, Workspace(self.config), worker)


def worker_modules(cls: type) -> list[str]:
    """What a worker process imports to run trials of adapter ``cls``: imported ahead, while the
    calling process still prepares the rows."""
    return ["optuna", "mlscale.workspace", "mlscale.tune.worker", cls.__module__]


def counted_trials(study: optuna.Study) -> int:
    """Trials that count towards the plan: finished, pruned, or running now."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def run_trials(
    task: WorkerTask, ws: Workspace, worker: int, on_trial: TrialCallback | None = None
) -> int:
    """Ask for and run trials until the study is done or time is up; return how many ran."""
    import optuna

    storage = task.storage.open()
    existing = len(optuna.load_study(study_name=task.study, storage=storage).trials)
    # A fresh seed for each worker and each resumption: a resumed random or TPE sampler with
    # the first run's seed would propose the first run's points again. The first worker of a
    # new study uses the seed as given, so a sequential study proposes what plain Optuna would.
    seed = task.objective.seed
    if worker or existing:
        seed = int(np.random.SeedSequence([seed, worker, existing]).generate_state(1)[0])
    sampler = make_sampler(
        task.sampler, task.objective.space, seed=seed, grid_points=task.grid_points
    )
    pruner = make_pruner(task.pruner, interval=task.objective.interval, iterations=task.iterations)
    study = optuna.load_study(
        study_name=task.study, storage=storage, sampler=sampler, pruner=pruner
    )
    objective = partial(task.objective, ws)
    callbacks = [on_trial] if on_trial is not None else None
    ran = 0
    while counted_trials(study) < task.n_trials:
        if task.deadline is not None and time.time() >= task.deadline:
            break
        if isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(study):
            break
        study.optimize(objective, n_trials=1, callbacks=callbacks)
        ran += 1
    return ran


def _quiet_optuna() -> None:
    # Optuna logs every trial at INFO; mlscale shows its own progress and records each trial.
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
