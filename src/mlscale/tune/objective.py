"""One trial: fit the model on the tuning rows, score it on the validation rows, record it.

The objective is plain data (arrays, the space, a few settings), so worker processes receive it
whole and need nothing else but the workspace to record their trials in. Each process turns the
rows into the model library's training form once (:meth:`BaseModel.trainset`: LightGBM's binned
Datasets) and fits every trial that shares it on that, rather than binning the rows per trial.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlscale.errors import MlscaleError
from mlscale.models.base import BaseModel, TrainSet, adapter_class
from mlscale.train.metrics import evaluate
from mlscale.tune.space import Space

if TYPE_CHECKING:
    import optuna

    from mlscale.workspace import Workspace

#: The trial user attribute naming the process and mlscale runs that own a trial (for recovery).
OWNER_ATTR = "mlscale"
#: What each metric's direction is.
DIRECTIONS = {
    "auc": "maximize",
    "accuracy": "maximize",
    "log_loss": "minimize",
    "rmse": "minimize",
    "mae": "minimize",
    "r2": "maximize",
}
TASK_METRICS = {
    "binary": ("auc", "log_loss", "accuracy"),
    "multiclass": ("auc", "log_loss", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}
_THREAD_PARAMS = ("num_threads", "nthread", "n_jobs")
CURVE_ROWS = 20_000


def threads_param(cls: type[BaseModel]) -> str | None:
    """The hyperparameter that sets how many threads one fit uses, if the adapter has one.

    >>> from mlscale.models.lightgbm import LightGBMModel
    >>> threads_param(LightGBMModel)
    'num_threads'
    """
    declared = getattr(cls, "threads_param", None)
    if declared:
        return str(declared)
    return next((p for p in _THREAD_PARAMS if p in cls.params_spec), None)


@dataclass
class TrialData:
    """The rows trials fit on and the rows they are scored on (both from the training side)."""

    X_fit: np.ndarray
    y_fit: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    task: str
    categorical: list[int]
    num_classes: int

    def curve_rows(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """At most ``CURVE_ROWS`` validation rows for the per-iteration loss that pruning reads.

        Scoring every round on all the validation rows would cost a large share of each fit;
        the trial's final score still uses all of them.
        """
        n = len(self.y_valid)
        if n <= CURVE_ROWS:
            return self.X_valid, self.y_valid
        pick = np.sort(np.random.default_rng(seed).choice(n, CURVE_ROWS, replace=False))
        return self.X_valid[pick], self.y_valid[pick]


@dataclass
class Objective:
    """Fit one point of the space and return its validation score; record it as a run."""

    data: TrialData
    model: str
    space: Space
    metric: str
    seed: int
    study: str
    study_run: str  # the "tune" run the trial runs belong to
    dataset: str
    interval: int | None  # iterations between reports (None: the model does not iterate)
    threads: dict[str, int] = field(default_factory=dict)  # e.g. {"num_threads": 1}
    # The last train set built in this process, with its key; never pickled to workers.
    _trainset: tuple[tuple[Any, ...], TrainSet] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_trainset": None}

    @property
    def maximize(self) -> bool:
        return DIRECTIONS[self.metric] == "maximize"

    def trainset(self, adapter: BaseModel) -> TrainSet:
        """The tuning rows in ``adapter``'s training form: built once, then reused by every trial
        whose model has the same ``trainset_key`` (a space that tunes ``max_bin`` rebuilds it
        when the value changes)."""
        key = adapter.trainset_key(self.seed)
        if self._trainset is None or self._trainset[0] != key:
            self._trainset = None  # let the old one go before building the next
            data = self.data
            built = adapter.trainset(
                data.X_fit, data.y_fit, seed=self.seed, valid=data.curve_rows(self.seed)
            )
            self._trainset = (key, built)
        return self._trainset[1]

    def __call__(self, ws: Workspace, trial: optuna.Trial) -> float:
        import optuna

        cls = adapter_class(self.model)
        params = self.space.suggest(trial)
        run = ws.metadata.create_run(
            "trial",
            params={"study": self.study, "number": trial.number, "hyperparameters": params},
            dataset=self.dataset,
            parent_id=self.study_run,
        )
        env: dict[str, Any] = {"trial": trial.number, "threads": self.threads or None}
        reported: dict[str, float] = {}
        pruned_at: list[int] = []

        def on_iteration(step: int, metrics: dict[str, float]) -> bool:
            loss = metrics.get("valid_loss")
            if self.interval is None or step % self.interval or loss is None:
                return False
            if not math.isfinite(loss):
                return False
            reported["valid_loss"] = loss
            trial.report(-loss if self.maximize else loss, step)
            if trial.should_prune():
                pruned_at.append(step)
                return True
            return False

        data = self.data
        try:
            trial.set_user_attr(
                OWNER_ATTR,
                {
                    "run": run.id,
                    "tune_run": self.study_run,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                },
            )
            adapter = cls(
                task=data.task,
                categorical=data.categorical,
                params=cls.check_params(params | self.threads, name=self.model),
            )
            adapter.fit_trainset(
                self.trainset(adapter),
                num_classes=data.num_classes,
                seed=self.seed,
                on_iteration=on_iteration,
            )
            if pruned_at:
                env |= {"state": "pruned", "pruned_at_step": pruned_at[0]}
                ws.metadata.finish_run(run.id, status="finished", metrics=reported, env=env)
                raise optuna.TrialPruned(f"pruned at iteration {pruned_at[0]}")
            scores = evaluate(data.task, data.y_valid, adapter.predict(data.X_valid))
            if self.metric not in scores:
                raise MlscaleError(
                    f"metric {self.metric!r} is undefined on the validation rows (their classes: "
                    f"{sorted(set(data.y_valid.tolist()))}); tune on more rows or another metric"
                )
            iterations = len(adapter.curves_.get("valid_loss", ())) or None
            env |= {"state": "complete", "iterations": iterations}
            ws.metadata.finish_run(run.id, status="finished", metrics=scores, env=env)
            return scores[self.metric]
        except optuna.TrialPruned:
            raise
        except BaseException as exc:
            stopped = isinstance(exc, KeyboardInterrupt)
            ws.metadata.finish_run(
                run.id,
                status="failed",
                metrics=reported,
                env=env | {"state": "interrupted" if stopped else "failed"},
                error="interrupted (Ctrl-C)" if stopped else repr(exc),
            )
            raise
