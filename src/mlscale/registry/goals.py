"""Which way each metric is better, declared once for every gate that compares two models.

:func:`mlscale.train.metrics.evaluate` computes the metrics; this module says which of them each
task has and whether a higher or a lower figure wins (``tests/registry`` checks the two agree).
"""

from __future__ import annotations

from mlscale.errors import UserError

#: Metric -> True when a higher figure is better, False when a lower one is.
HIGHER_IS_BETTER: dict[str, bool] = {
    "auc": True,
    "accuracy": True,
    "r2": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
}

#: The metrics :func:`mlscale.train.metrics.evaluate` reports for each task.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "log_loss", "accuracy"),
    "multiclass": ("auc", "log_loss", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}


def check_metric(metric: str, task: str) -> str:
    """Return ``metric`` if models of ``task`` report it, else a UserError naming those they do.

    >>> check_metric("rmse", "regression")
    'rmse'
    >>> check_metric("f1", "binary")
    Traceback (most recent call last):
    ...
    mlscale.errors.UserError: unknown metric 'f1' for binary models: expected one of accuracy, auc, log_loss
    """
    available = TASK_METRICS.get(task, ())
    if metric not in available:
        what = "unknown metric" if metric not in HIGHER_IS_BETTER else "metric"
        raise UserError(
            f"{what} {metric!r} for {task} models: expected one of {', '.join(sorted(available))}"
        )
    return metric


def gain(metric: str, challenger: float, holder: float) -> float:
    """How much better ``challenger`` is than ``holder`` on ``metric`` (negative: worse).

    >>> round(gain("auc", 0.82, 0.80), 4), round(gain("rmse", 1.5, 2.0), 4)
    (0.02, 0.5)
    """
    return challenger - holder if HIGHER_IS_BETTER[metric] else holder - challenger


def direction(metric: str) -> str:
    """``"higher is better"`` or ``"lower is better"``, for messages.

    >>> direction("log_loss")
    'lower is better'
    """
    return "higher is better" if HIGHER_IS_BETTER[metric] else "lower is better"
