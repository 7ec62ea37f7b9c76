"""One contract every model adapter passes: the three tasks, a lossless save/load, the same model
from the same seed, validation curves and early stopping, continued training, and
hyperparameters checked with the allowed range in the message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlscale.errors import UserError
from mlscale.models.base import BaseModel, adapter_class
from mlscale.models.params import defaults

FLAVORS = ["lightgbm", "linear", "xgboost", "random_forest", "torch_mlp"]
ITERATIVE = ["lightgbm", "xgboost", "torch_mlp"]
WARM_START = ["lightgbm", "xgboost", "random_forest", "torch_mlp"]
TASKS = ["binary", "multiclass", "regression"]

# Small models on one thread: the whole file runs in seconds on a shared machine.
FAST: dict[str, dict[str, Any]] = {
    "lightgbm": {"num_boost_round": 40, "num_threads": 1},
    "linear": {},
    "xgboost": {"num_boost_round": 40, "nthread": 1},
    "random_forest": {"n_estimators": 25, "n_jobs": 1},
    "torch_mlp": {
        "epochs": 20,
        "hidden_size": 32,
        "batch_size": 64,
        "device": "cpu",
        "num_threads": 1,
    },
}


def iterations(model: BaseModel) -> int:
    """Trees or epochs in a fitted model."""
    if model.flavor == "lightgbm":
        return model.booster_.current_iteration()
    if model.flavor == "xgboost":
        return model.booster_.num_boosted_rounds()
    if model.flavor == "random_forest":
        return len(model.forest_.estimators_)
    return model.arch_["epochs_trained"]


def data(task: str, n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x[:, 2] = rng.integers(0, 4, n)  # a categorical code
    x[rng.random(n) < 0.05, 0] = np.nan
    signal = np.nan_to_num(x[:, 0]) + x[:, 1] + (x[:, 2] == 2)
    if task == "regression":
        return x, signal + rng.normal(scale=0.1, size=n), 0
    if task == "binary":
        return x, (signal > 0.5).astype(np.int64), 2
    return x, np.digitize(signal, [-0.5, 0.5, 1.5]).astype(np.int64), 4


def make(flavor: str, task: str, **params: Any) -> BaseModel:
    return adapter_class(flavor)(task=task, categorical=[2], params=FAST[flavor] | params)


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("task", TASKS)
def test_adapter_contract(flavor: str, task: str) -> None:
    X, y, k = data(task)
    model = make(flavor, task).fit(X, y, num_classes=k, seed=1)
    out = model.predict(X)
    if task == "regression":
        assert out.shape == (len(X),)
        assert np.corrcoef(out, y)[0, 1] > 0.8
    else:
        assert out.shape == (len(X), k)
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
        assert (np.argmax(out, axis=1) == y).mean() > 0.7
    saved = model.save()
    assert isinstance(saved, bytes)
    again = adapter_class(flavor).load(saved, task=task, categorical=[2])
    np.testing.assert_array_equal(again.predict(X), out)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_same_seed_same_model(flavor: str) -> None:
    X, y, k = data("binary")
    a = make(flavor, "binary").fit(X, y, num_classes=k, seed=3)
    b = make(flavor, "binary").fit(X, y, num_classes=k, seed=3)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    if flavor not in ("linear", "random_forest"):  # skops archives are zips with timestamps
        assert a.save() == b.save()


@pytest.mark.parametrize("flavor", ["xgboost", "random_forest", "torch_mlp"])
def test_seed_matters(flavor: str) -> None:
    X, y, k = data("binary")
    extra = {"subsample": 0.7} if flavor == "xgboost" else {}
    a = make(flavor, "binary", **extra).fit(X, y, num_classes=k, seed=3)
    b = make(flavor, "binary", **extra).fit(X, y, num_classes=k, seed=4)
    assert not np.array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("flavor", ITERATIVE)
@pytest.mark.parametrize("task", TASKS)
def test_valid_curve_and_early_stop(flavor: str, task: str) -> None:
    X, y, k = data(task)
    Xv, yv, _ = data(task, n=200, seed=1)
    cls = adapter_class(flavor)
    rounds = FAST[flavor][cls.iterations_param]
    full = make(flavor, task).fit(X, y, num_classes=k, seed=1, valid=(Xv, yv))
    curve = full.curves_["valid_loss"]
    assert len(curve) == rounds and all(np.isfinite(curve))
    assert min(curve) < curve[0]  # it learns

    seen: list[tuple[int, float]] = []

    def stop_at_3(step: int, metrics: dict[str, float]) -> bool:
        seen.append((step, metrics["valid_loss"]))
        return step == 3

    stopped = make(flavor, task).fit(
        X, y, num_classes=k, seed=1, valid=(Xv, yv), on_iteration=stop_at_3
    )
    assert [s for s, _ in seen] == [1, 2, 3]
    assert [loss for _, loss in seen] == stopped.curves_["valid_loss"] == curve[:3]
    # Stopped after 3 iterations is the model trained for 3.
    short = make(flavor, task, **{cls.iterations_param: 3}).fit(X, y, num_classes=k, seed=1)
    np.testing.assert_array_equal(stopped.predict(X), short.predict(X))


# Hyperparameters that change the model but not how a train set is built (tuning varies them).
OTHER: dict[str, dict[str, Any]] = {
    "lightgbm": {
        "num_leaves": 4,
        "min_data_in_leaf": 60,
        "bagging_fraction": 0.7,
        "bagging_freq": 1,
    },
    "linear": {},
    "xgboost": {"max_depth": 2, "subsample": 0.7, "max_bin": 16},
    "random_forest": {"max_depth": 3},
    "torch_mlp": {"hidden_size": 8},
}


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("task", TASKS)
def test_a_shared_trainset_gives_the_model_fit_gives(flavor: str, task: str) -> None:
    """Tuning fits every trial on one train set: a model fit on it after others (one of them
    stopped early, as a pruned trial is) is the model a fresh ``fit`` makes, byte for byte."""
    X, y, k = data(task)
    Xv, yv, _ = data(task, n=200, seed=1)
    shared = make(flavor, task).trainset(X, y, seed=1, valid=(Xv, yv))
    assert make(flavor, task, **OTHER[flavor]).trainset_key(1) == make(flavor, task).trainset_key(1)
    stop_at_2 = (lambda step, _: step == 2) if flavor in ITERATIVE else None
    for params in (OTHER[flavor], {}, OTHER[flavor]):
        on_shared = make(flavor, task, **params).fit_trainset(
            shared, num_classes=k, seed=1, on_iteration=stop_at_2
        )
        fresh = make(flavor, task, **params).fit(
            X, y, num_classes=k, seed=1, valid=(Xv, yv), on_iteration=stop_at_2
        )
        np.testing.assert_array_equal(on_shared.predict(X), fresh.predict(X))
        assert on_shared.curves_ == fresh.curves_
        if flavor not in ("linear", "random_forest"):  # skops archives are zips with timestamps
            assert on_shared.save() == fresh.save()
        stop_at_2 = None  # then full-length fits on the same train set


def test_lightgbm_bins_per_max_bin() -> None:
    """LightGBM bins with ``max_bin``: another value needs another train set, and a mismatched
    one is refused by LightGBM rather than silently trained on."""
    import lightgbm as lgb

    X, y, k = data("binary")
    coarse = make("lightgbm", "binary", max_bin=15)
    assert coarse.trainset_key(1) != make("lightgbm", "binary").trainset_key(1)
    shared = make("lightgbm", "binary").trainset(X, y, seed=1)
    with pytest.raises(lgb.basic.LightGBMError, match="max_bin"):
        coarse.fit_trainset(shared, num_classes=k, seed=1)


@pytest.mark.parametrize("flavor", ["linear", "random_forest"])
def test_non_iterative_models_have_no_curves(flavor: str) -> None:
    X, y, k = data("binary")
    assert adapter_class(flavor).iterations_param is None
    model = make(flavor, "binary").fit(X, y, num_classes=k, seed=1, valid=(X, y))
    assert model.curves_ == {}


@pytest.mark.parametrize("flavor", WARM_START)
@pytest.mark.parametrize("task", TASKS)
def test_init_from_continues(flavor: str, task: str) -> None:
    X, y, k = data(task)
    X2, y2, _ = data(task, seed=5)
    first = make(flavor, task).fit(X, y, num_classes=k, seed=1)
    before = first.predict(X2)
    more = make(flavor, task).fit(X2, y2, num_classes=k, seed=2, init_from=first)
    assert iterations(more) == 2 * iterations(first)
    assert not np.array_equal(more.predict(X2), before)
    np.testing.assert_array_equal(first.predict(X2), before)  # the earlier model is unchanged
    again = adapter_class(flavor).load(more.save(), task=task, categorical=[2])
    np.testing.assert_array_equal(again.predict(X2), more.predict(X2))
    # From the registry the earlier model comes loaded: it continues the same way.
    loaded = adapter_class(flavor).load(first.save(), task=task, categorical=[2])
    from_loaded = make(flavor, task).fit(X2, y2, num_classes=k, seed=2, init_from=loaded)
    np.testing.assert_array_equal(from_loaded.predict(X2), more.predict(X2))


@pytest.mark.parametrize("flavor", WARM_START)
def test_init_from_a_different_task_or_flavor_is_refused(flavor: str) -> None:
    X, y, k = data("binary")
    binary = make(flavor, "binary").fit(X, y, num_classes=k, seed=1)
    Xr, yr, _ = data("regression")
    with pytest.raises(UserError, match=f"cannot continue a {flavor} regression model from a "):
        make(flavor, "regression").fit(Xr, yr, num_classes=0, seed=1, init_from=binary)
    other = "lightgbm" if flavor != "lightgbm" else "xgboost"
    with pytest.raises(UserError, match=f"from a {flavor} binary model"):
        make(other, "binary").fit(X, y, num_classes=k, seed=1, init_from=binary)


@pytest.mark.parametrize("flavor", WARM_START)
def test_init_from_with_other_features_is_refused(flavor: str) -> None:
    X, y, k = data("binary")
    first = make(flavor, "binary").fit(X, y, num_classes=k, seed=1)
    wider = np.column_stack([X, X[:, :1]])
    with pytest.raises(UserError, match="features"):
        make(flavor, "binary").fit(wider, y, num_classes=k, seed=1, init_from=first)


def test_linear_cannot_continue() -> None:
    X, y, k = data("binary")
    first = make("linear", "binary").fit(X, y, num_classes=k, seed=1)
    with pytest.raises(UserError, match="model 'linear' cannot continue training"):
        make("linear", "binary").fit(X, y, num_classes=k, seed=1, init_from=first)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_params_spec_is_consistent(flavor: str) -> None:
    """Defaults and search ranges are themselves valid values."""
    cls = adapter_class(flavor)
    assert cls.check_params(defaults(cls.params_spec)) == defaults(cls.params_spec)
    assert cls.iterations_param is None or cls.iterations_param in cls.params_spec
    for name, p in cls.params_spec.items():
        if p.search is None:
            continue
        for value in p.search:
            assert p.check(value) is not None, (name, value)
        if p.log:
            assert p.search[0] > 0, name


@pytest.mark.parametrize("flavor", FLAVORS)
def test_bad_hyperparameters_name_the_allowed_range(flavor: str) -> None:
    cls = adapter_class(flavor)
    for name, p in cls.params_spec.items():
        if p.kind == "choice":
            bad: Any = "nonsense"
        elif p.kind == "bool":
            bad = "yes"
        elif p.low is not None:
            bad = p.low - 1
        else:
            bad = p.high + 1
        with pytest.raises(UserError) as caught:
            cls.check_params({name: bad})
        message = str(caught.value)
        assert f"hyperparameter {name!r} of model {flavor!r} must be" in message
        assert p.describe() in message and f"got {bad!r}" in message
    longest = max(cls.params_spec, key=len)
    with pytest.raises(UserError, match=f"did you mean {longest!r}"):
        cls.check_params({longest[:-1]: 1})


def test_unknown_flavor() -> None:
    with pytest.raises(UserError, match="unknown model 'catboost'; available: "):
        adapter_class("catboost")
