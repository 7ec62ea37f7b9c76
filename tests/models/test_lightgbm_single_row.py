"""LightGBM's fast single-row path gives what Booster.predict gives, for every task."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mlscale.models.lightgbm import LightGBMModel
from mlscale.models.lightgbm_single_row import SingleRowPredictor


def _data(task: str) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1_500, 5))
    X[:, 4] = rng.integers(0, 6, len(X))  # a categorical feature
    X[rng.random(X.shape) < 0.05] = np.nan
    if task == "binary":
        return X, (np.nan_to_num(X[:, 0]) + X[:, 4] % 2 > 0.5).astype(np.int64), 2
    if task == "multiclass":
        return X, (np.nan_to_num(X[:, 1]) > 0).astype(np.int64) + (X[:, 4] > 3), 3
    return X, 2 * np.nan_to_num(X[:, 2]) + X[:, 4], 0


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_one_row_predicts_exactly_as_the_booster_does(task: str) -> None:
    X, y, classes = _data(task)
    model = LightGBMModel(task=task, categorical=[4], params={"num_boost_round": 25})
    model.fit(X, y, num_classes=classes, seed=3)
    for i in range(40):
        alone = model.predict(X[i : i + 1])  # the fast path
        in_pair = model.predict(X[i : i + 2])[:1]  # Booster.predict
        assert alone.shape == in_pair.shape and np.array_equal(alone, in_pair)

    copy = pickle.loads(pickle.dumps(model))  # the ctypes set-up is not pickled, but rebuilt
    assert np.array_equal(copy.predict(X[:1]), model.predict(X[:1]))

    model.fit(X, y[::-1].copy(), num_classes=classes, seed=3)  # refitted: a new set-up
    assert np.array_equal(model.predict(X[:1]), model.predict(X[:2])[:1])


def test_a_busy_or_misshapen_call_is_refused() -> None:
    X, y, _ = _data("regression")
    model = LightGBMModel(task="regression", categorical=[4], params={"num_boost_round": 5})
    model.fit(X, y, num_classes=0, seed=3)
    fast = SingleRowPredictor(model.booster_)
    with pytest.raises(ValueError, match="expected 5 features, got 3"):
        fast.predict(np.zeros(3))
    with fast._lock:  # another thread is predicting: the caller falls back
        assert fast.predict(X[0]) is None
    assert fast.predict(X[0]) is not None
