"""How rows are split for evaluation: a random holdout, k folds, or by time.

>>> y = np.array([0, 1] * 10)
>>> split = holdout_split(y, test_size=0.25, seed=0, stratify=True)
>>> len(split.train), len(split.test), int(y[split.test].sum())
(15, 5, 2)
>>> late = time_split(np.arange(10)[::-1], test_size=0.3)
>>> sorted(late.test.tolist())  # the three latest timestamps are rows 0, 1, 2
[0, 1, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlscale.errors import UserError

SPLITS = ("holdout", "kfold", "time")


@dataclass(frozen=True)
class Split:
    """Row positions to fit on and to evaluate on."""

    train: np.ndarray
    test: np.ndarray


def can_stratify(y: np.ndarray, parts: int = 2) -> bool:
    """Whether every class has enough rows to appear on each side (classifiers only)."""
    return y.dtype.kind in "iu" and len(y) > 0 and int(np.bincount(y).min()) >= parts


def holdout_split(y: np.ndarray, *, test_size: float, seed: int, stratify: bool) -> Split:
    """A random holdout of ``test_size`` of the rows, stratified by class when asked and possible."""
    from sklearn.model_selection import train_test_split  # heavy: imported when used

    rows = np.arange(len(y))
    labels = y if stratify and can_stratify(y) else None
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=labels)
    return Split(np.sort(train), np.sort(test))


def kfold_splits(y: np.ndarray, *, folds: int, seed: int, stratify: bool) -> list[Split]:
    """``folds`` disjoint test folds covering every row once."""
    if not 2 <= folds <= len(y):
        raise UserError(f"--folds must be between 2 and the number of rows ({len(y)}), got {folds}")
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = np.arange(len(y))
    if stratify and can_stratify(y, folds):
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed).split(rows, y)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed).split(rows)
    return [Split(train, test) for train, test in splitter]


def time_split(times: np.ndarray, *, test_size: float) -> Split:
    """The latest ``test_size`` of the rows by time are the holdout: no peeking into the future.

    Rows with the same timestamp stay on the same side, so the cut is a point in time.
    """
    order = np.argsort(times, kind="stable")
    cut = round(len(times) * (1.0 - test_size))
    if cut <= 0 or cut >= len(times):
        raise UserError(
            f"a time split of {len(times)} rows at test size {test_size} leaves one side empty"
        )
    boundary = times[order[cut]]
    train = np.flatnonzero(times < boundary)
    test = np.flatnonzero(times >= boundary)
    if len(train) == 0:
        raise UserError(
            "a time split needs rows before the cut; every row has the earliest timestamp"
        )
    return Split(train, test)
