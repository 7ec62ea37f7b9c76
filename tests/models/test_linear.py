"""Linear models: each penalty does what it says; skops files with foreign types are refused."""

from __future__ import annotations

import operator

import numpy as np
import pytest
import skops.io as sio
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mlscale.errors import IntegrityError
from mlscale.models.forest import RandomForestModel
from mlscale.models.linear import LinearModel


def data(task: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Two informative columns and four of noise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    signal = 2 * X[:, 0] + X[:, 1] + rng.normal(scale=0.5, size=400)
    if task == "regression":
        return X, signal, 0
    if task == "binary":
        return X, (signal > 0).astype(np.int64), 2
    return X, np.digitize(signal, [-1.0, 1.0]).astype(np.int64), 3


def coefficients(task: str, penalty: str, C: float) -> np.ndarray:
    X, y, k = data(task)
    params = {"penalty": penalty, "C": C}
    model = LinearModel(task=task, categorical=[], params=params).fit(X, y, num_classes=k, seed=0)
    return model.pipeline_[-1].coef_


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_each_penalty(task: str) -> None:
    strong = 0.01
    l2, l1 = coefficients(task, "l2", strong), coefficients(task, "l1", strong)
    elastic, none = coefficients(task, "elasticnet", strong), coefficients(task, "none", strong)
    assert (l2 == 0).sum() == 0  # L2 shrinks without zeroing
    assert (l1 == 0).sum() >= 4  # L1 drops the noise columns
    assert (elastic == 0).sum() > 0
    assert np.abs(l2).sum() < np.abs(none).sum()
    # No penalty: C plays no part.
    np.testing.assert_allclose(none, coefficients(task, "none", 1.0))
    # Weaker regularisation (larger C) gives larger coefficients.
    assert np.abs(coefficients(task, "l1", 1.0)).sum() > np.abs(l1).sum()


def test_one_C_means_the_same_for_ridge_and_lasso() -> None:
    # alpha = 1/C for ridge and 1/(n C) for lasso: comparable shrinkage at the same C.
    ridge, lasso = coefficients("regression", "l2", 0.01), coefficients("regression", "l1", 0.01)
    assert 0.8 < np.abs(lasso).sum() / np.abs(ridge).sum() < 1.25


@pytest.mark.parametrize("model", [LinearModel, RandomForestModel])
@pytest.mark.parametrize("func", [operator.neg, eval])
def test_skops_file_with_a_foreign_type_is_refused(model: type, func: object) -> None:
    forged = sio.dumps(make_pipeline(FunctionTransformer(func=func), StandardScaler()))
    name = f"{func.__module__}.{func.__name__}"
    with pytest.raises(IntegrityError, match=f"contains {name}: only scikit-learn and numpy"):
        model.load(forged, task="binary", categorical=[])
