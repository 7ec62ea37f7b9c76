"""The objective bins the tuning rows once per process and shares them across trials."""

from __future__ import annotations

import pickle

import numpy as np

from mlscale.models.lightgbm import LightGBMModel
from mlscale.tune.objective import Objective, TrialData
from mlscale.tune.space import default_space


def objective(rows: int = 400) -> Objective:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 3))
    X[:, 2] = rng.integers(0, 4, rows)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    data = TrialData(X[:300], y[:300], X[300:], y[300:], "binary", [2], 2)
    return Objective(
        data=data,
        model="lightgbm",
        space=default_space("lightgbm", LightGBMModel),
        metric="auc",
        seed=7,
        study="s",
        study_run="r",
        dataset="d@1",
        interval=1,
    )


def model(**params: object) -> LightGBMModel:
    return LightGBMModel(task="binary", categorical=[2], params={"num_threads": 1} | params)


def test_trials_that_bin_alike_share_one_train_set() -> None:
    obj = objective()
    first = obj.trainset(model(num_leaves=4, min_data_in_leaf=50))
    assert obj.trainset(model(num_leaves=60, min_data_in_leaf=2, learning_rate=0.2)) is first
    assert first.valid is not None and len(first.valid[1]) == 100  # scored on the valid rows


def test_another_max_bin_rebuilds_the_train_set() -> None:
    obj = objective()
    default = obj.trainset(model())
    coarse = obj.trainset(model(max_bin=15))
    assert coarse is not default
    assert obj.trainset(model(max_bin=15)) is coarse
    fit = model(max_bin=15).fit_trainset(coarse, num_classes=2, seed=7)
    assert fit.booster_.current_iteration() == 200


def test_the_train_set_stays_in_its_process() -> None:
    obj = objective()
    obj.trainset(model())
    copy = pickle.loads(pickle.dumps(obj))  # what a worker process receives
    assert copy._trainset is None and obj._trainset is not None
    assert copy.data.X_fit.shape == obj.data.X_fit.shape
