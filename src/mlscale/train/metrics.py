"""The metrics of each task."""

from __future__ import annotations

import numpy as np


def evaluate(task: str, y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """AUC, log loss and accuracy for classifiers; RMSE, MAE and R2 for regressors."""
    from sklearn import metrics  # imported when used: it costs the CLI most of a second

    if task == "regression":
        return {
            "rmse": float(np.sqrt(metrics.mean_squared_error(y, predicted))),
            "mae": float(metrics.mean_absolute_error(y, predicted)),
            "r2": float(metrics.r2_score(y, predicted)),
        }
    labels = np.arange(predicted.shape[1])
    proba = np.clip(predicted, 1e-15, 1 - 1e-15)
    proba = proba / proba.sum(axis=1, keepdims=True)
    out = {
        "log_loss": float(metrics.log_loss(y, proba, labels=labels)),
        "accuracy": float(metrics.accuracy_score(y, np.argmax(predicted, axis=1))),
    }
    if len(np.unique(y)) == predicted.shape[1]:  # AUC is undefined when the holdout lacks a class
        if task == "binary":
            # roc_auc_score's own computation, without its checks of the labels (~6 ms).
            fpr, tpr, _ = metrics.roc_curve(y, predicted[:, 1])
            out["auc"] = float(metrics.auc(fpr, tpr))
        else:
            out["auc"] = float(
                metrics.roc_auc_score(y, predicted, multi_class="ovr", labels=labels)
            )
    return out
