"""XGBoost: categorical splits, a booster trained elsewhere, a missing install."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from mlscale.errors import MissingDependencyError, UserError
from mlscale.models.xgboost import XGBoostModel

xgb = pytest.importorskip("xgboost")  # the ``xgboost`` extra

STUMP = {"num_boost_round": 1, "max_depth": 1, "eta": 1.0, "lambda": 0.0, "nthread": 1}


def test_categories_split_as_sets_not_as_ordered_codes() -> None:
    # Categories 0 and 3 against 1 and 2: one split on sets separates them, one on codes cannot.
    codes = np.tile([0.0, 1.0, 2.0, 3.0], 50)[:, None]
    y = np.isin(codes[:, 0], [0, 3]).astype(np.int64)
    native = XGBoostModel(task="binary", categorical=[0], params=STUMP | {"max_cat_to_onehot": 1})
    ordinal = XGBoostModel(task="binary", categorical=[], params=STUMP)
    native.fit(codes, y, num_classes=2, seed=0)
    ordinal.fit(codes, y, num_classes=2, seed=0)
    assert native.booster_.feature_types == ["c"]
    assert (native.predict(codes).argmax(1) == y).all()
    assert (ordinal.predict(codes).argmax(1) == y).mean() <= 0.75


def test_wraps_a_booster_trained_elsewhere() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=300), rng.integers(0, 3, 300)])
    y = X[:, 0] + X[:, 1]
    params = {"num_boost_round": 15, "nthread": 1}
    fitted = XGBoostModel(task="regression", categorical=[1], params=params)
    fitted.fit(X, y, num_classes=0, seed=4)
    # What out-of-core training does: its own DMatrix, this adapter's parameters.
    train_params, rounds = fitted.train_params(num_classes=0, seed=4)
    booster = xgb.train(train_params, fitted.dmatrix(X, y), num_boost_round=rounds)
    wrapped = XGBoostModel.from_booster(booster, task="regression", categorical=[1])
    np.testing.assert_array_equal(wrapped.predict(X), fitted.predict(X))
    assert wrapped.save() == fitted.save()


def test_max_depth_zero_needs_lossguide() -> None:
    X, y = np.arange(20.0)[:, None], np.arange(20.0)
    with pytest.raises(UserError, match="'max_depth' of model 'xgboost' must be >= 1 unless"):
        XGBoostModel(task="regression", categorical=[], params={"max_depth": 0}).fit(
            X, y, num_classes=0, seed=0
        )
    params = {"max_depth": 0, "grow_policy": "lossguide", "max_leaves": 4, "num_boost_round": 5}
    model = XGBoostModel(task="regression", categorical=[], params=params)
    assert model.fit(X, y, num_classes=0, seed=0).booster_.num_boosted_rounds() == 5


def test_missing_install_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)  # what an absent package looks like
    model = XGBoostModel(task="regression", categorical=[])
    with pytest.raises(MissingDependencyError, match=r'pip install "mlscale\[xgboost\]"'):
        model.fit(np.zeros((4, 1)), np.zeros(4), num_classes=0, seed=0)
