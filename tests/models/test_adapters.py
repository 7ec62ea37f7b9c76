"""One contract every model adapter passes: fit, predict shapes, and a lossless save/load."""

import numpy as np
import pytest

from mlscale.errors import UserError
from mlscale.models.base import adapter_class

FLAVORS = ["lightgbm", "linear"]


def data(task: str) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 3))
    x[:, 2] = rng.integers(0, 4, n)  # a categorical code
    x[rng.random(n) < 0.05, 0] = np.nan
    signal = np.nan_to_num(x[:, 0]) + x[:, 1] + (x[:, 2] == 2)
    if task == "regression":
        return x, signal + rng.normal(scale=0.1, size=n), 0
    if task == "binary":
        return x, (signal > 0.5).astype(np.int64), 2
    return x, np.digitize(signal, [-0.5, 0.5, 1.5]).astype(np.int64), 4


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_adapter_contract(flavor: str, task: str) -> None:
    X, y, k = data(task)
    cls = adapter_class(flavor)
    model = cls(task=task, categorical=[2]).fit(X, y, num_classes=k, seed=1)
    out = model.predict(X)
    if task == "regression":
        assert out.shape == (len(X),)
        assert np.corrcoef(out, y)[0, 1] > 0.8
    else:
        assert out.shape == (len(X), k)
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
        assert (np.argmax(out, axis=1) == y).mean() > 0.7
    data_bytes = model.save()
    assert isinstance(data_bytes, bytes)
    again = cls.load(data_bytes, task=task, categorical=[2])
    np.testing.assert_array_equal(again.predict(X), out)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_same_seed_same_model(flavor: str) -> None:
    X, y, k = data("binary")
    cls = adapter_class(flavor)
    a = cls(task="binary", categorical=[2]).fit(X, y, num_classes=k, seed=3)
    b = cls(task="binary", categorical=[2]).fit(X, y, num_classes=k, seed=3)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    if flavor == "lightgbm":  # skops archives carry zip timestamps; LightGBM's text is exact
        assert a.save() == b.save()


def test_unknown_flavor() -> None:
    with pytest.raises(UserError, match="unknown model 'catboost'; available: "):
        adapter_class("catboost")
