"""Random forests: what continuing a forest requires; class weights are for classes."""

from __future__ import annotations

import numpy as np
import pytest

from mlscale.errors import UserError
from mlscale.models.forest import RandomForestModel

PARAMS = {"n_estimators": 5, "n_jobs": 1}


def test_continuing_needs_the_same_classes() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    y = np.arange(90) % 3
    first = RandomForestModel(task="multiclass", categorical=[], params=PARAMS)
    first.fit(X, y, num_classes=3, seed=0)
    two_classes = np.minimum(y, 1)
    with pytest.raises(
        UserError, match=r"classes \[0, 1, 2\] with data whose classes are \[0, 1\]"
    ):
        RandomForestModel(task="multiclass", categorical=[], params=PARAMS).fit(
            X, two_classes, num_classes=3, seed=0, init_from=first
        )


def test_class_weight_is_for_classes_only() -> None:
    model = RandomForestModel(
        task="regression", categorical=[], params={"class_weight": "balanced"}
    )
    with pytest.raises(UserError, match="'class_weight' of model 'random_forest' applies to"):
        model.fit(np.zeros((4, 1)), np.zeros(4), num_classes=0, seed=0)


def test_balanced_class_weight() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 1.2).astype(np.int64)  # a rare class
    params = PARAMS | {"class_weight": "balanced", "min_samples_leaf": 20}
    model = RandomForestModel(task="binary", categorical=[], params=params)
    plain = RandomForestModel(
        task="binary", categorical=[], params=PARAMS | {"min_samples_leaf": 20}
    )
    weighted = model.fit(X, y, num_classes=2, seed=0).predict(X)[:, 1].mean()
    assert weighted > plain.fit(X, y, num_classes=2, seed=0).predict(X)[:, 1].mean()
