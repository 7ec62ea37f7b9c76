"""The holdout split: the rows scikit-learn's ``train_test_split`` picks, drawn with numpy."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from mlscale import UserError
from mlscale.train.splits import can_stratify, holdout_split


def _scikit_learn(y: np.ndarray, test_size: float, seed: int, stratify: bool) -> tuple:
    labels = y if stratify and can_stratify(y) else None
    train, test = train_test_split(
        np.arange(len(y)), test_size=test_size, random_state=seed, stratify=labels
    )
    return np.sort(train), np.sort(test)


@pytest.mark.parametrize("stratify", [True, False])
def test_holdout_rows_are_those_of_scikit_learn(stratify: bool) -> None:
    rng = np.random.default_rng(0)
    for _ in range(150):
        classes = int(rng.integers(2, 8))
        y = rng.choice(classes, int(rng.integers(20, 3000)), p=rng.dirichlet(np.ones(classes)))
        test_size = float(rng.choice([0.07, 0.1, 0.2, 0.25, 0.33, 0.5]))
        seed = int(rng.integers(0, 1000))
        train, test = _scikit_learn(y, test_size, seed, stratify)
        split = holdout_split(y, test_size=test_size, seed=seed, stratify=stratify)
        np.testing.assert_array_equal(split.train, train)
        np.testing.assert_array_equal(split.test, test)


def test_stratified_holdout_keeps_the_class_shares() -> None:
    y = np.repeat([0, 1, 2], [700, 200, 100])
    split = holdout_split(y, test_size=0.2, seed=3, stratify=True)
    assert np.bincount(y[split.test]).tolist() == [140, 40, 20]
    assert len(np.intersect1d(split.train, split.test)) == 0
    assert len(split.train) + len(split.test) == len(y)


def test_more_classes_than_holdout_rows_falls_back_to_a_plain_shuffle() -> None:
    y = np.repeat(np.arange(6), 2)
    split = holdout_split(y, test_size=0.2, seed=0, stratify=True)
    assert len(split.test) == 3 and len(split.train) == 9


def test_a_holdout_that_leaves_a_side_empty_is_refused() -> None:
    with pytest.raises(UserError, match="leaves one side empty"):
        holdout_split(np.array([0, 1]), test_size=0.99, seed=0, stratify=False)
