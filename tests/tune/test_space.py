"""The search space: defaults from the adapters, YAML overrides and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlscale import UserError
from mlscale.models.base import ADAPTERS, adapter_class
from mlscale.models.lightgbm import LightGBMModel
from mlscale.tune.samplers import check_sampler, grid_size
from mlscale.tune.space import Dimension, default_space, load_space, parse_space


def lgb(text: str) -> object:
    return parse_space(text, "lightgbm", LightGBMModel, where="space.yaml")


@pytest.mark.parametrize("model", sorted(ADAPTERS))
def test_every_adapter_has_a_valid_default_space(model: str) -> None:
    cls = adapter_class(model)
    space = default_space(model, cls)
    assert space.dims, f"{model} declares no search range"
    for name, dim in space.dims.items():
        values = list(dim.choices) if dim.kind == "categorical" else [dim.low, dim.high]
        for value in values:  # every end of every default range is a value the adapter accepts
            cls.check_params({name: value}, name=model)


def test_overrides_merge_with_the_defaults() -> None:
    space = lgb(
        "learning_rate: {low: 0.02, high: 0.2}\n"
        "num_leaves: {choices: [15, 31, 63]}\n"
        "max_depth: 8\n"
        "bagging_freq: 0\n"
    )
    assert space.dims["learning_rate"] == Dimension("learning_rate", "float", 0.02, 0.2)
    assert space.dims["num_leaves"].choices == (15, 31, 63)
    assert space.fixed == {"max_depth": 8, "bagging_freq": 0}
    assert "bagging_freq" not in space.dims  # fixed, so no longer tuned
    assert "lambda_l1" in space.dims  # untouched defaults stay


def test_inherit_defaults_false_tunes_only_the_file() -> None:
    space = lgb("inherit_defaults: false\nnum_leaves: {low: 4, high: 64, log: true}\n")
    assert list(space.dims) == ["num_leaves"] and space.dims["num_leaves"].log
    assert space.dims["num_leaves"].kind == "int"


def test_an_empty_file_is_the_default_space() -> None:
    assert lgb("") == default_space("lightgbm", LightGBMModel)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "learning_rate: {low: 0.01, high: 0.3}\nnum_leafs: {low: 4, high: 8}\n",
            "space.yaml, line 2: unknown hyperparameter 'num_leafs' for model 'lightgbm'; "
            "did you mean 'num_leaves'?",
        ),
        (
            "learning_rate: {low: 0.01, high: 2.0}\n",
            r"space.yaml, line 1: learning_rate: high 2.0 is not allowed: hyperparameter "
            r"'learning_rate' of model 'lightgbm' must be a float in \(0.0, 1.0\], got 2.0",
        ),
        ("num_leaves: 1\n", r"line 1: num_leaves: fixed value 1 is not allowed: .* int in \[2, "),
        ("num_leaves: {low: 64, high: 8}\n", "line 1: num_leaves: low 64 is above high 8"),
        ("lambda_l1: {low: 0, high: 1, log: true}\n", "a log scale needs low > 0, found 0.0"),
        ("num_leaves: {low: 4}\n", "a range needs low and high; high missing"),
        ("num_leaves: {low: 4, high: 8, step: 2}\n", "unknown key\\(s\\) step"),
        ("num_leaves: [4, 8]\n", "a list of options is written {choices: \\[...\\]}"),
        ("num_leaves: {choices: []}\n", "choices must be a non-empty list"),
        ("num_leaves: {choices: [4, 1]}\n", "num_leaves: choice 1 is not allowed"),
        ("\n\nnum_leaves: {low: 4, high: 8, log: yes please}\n", "line 3: .*log must be true"),
        ("num_leaves: {low: 4\n", "space.yaml, line 2: not valid YAML"),
        ("- num_leaves\n", "line 1: expected a mapping of hyperparameter names"),
        ("num_leaves: 8\nnum_leaves: 16\n", "line 2: num_leaves is given twice"),
        ("inherit_defaults: maybe\n", "inherit_defaults must be true or false"),
    ],
)
def test_space_file_errors_name_the_line_and_the_allowed_range(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        lgb(text)


def test_a_range_on_a_choice_parameter_is_refused() -> None:
    cls = adapter_class("logistic")
    with pytest.raises(UserError, match=r"penalty is one of 'l2', 'l1', .*not a range"):
        parse_space("penalty: {low: 1, high: 2}\n", "logistic", cls)
    space = parse_space("penalty: {choices: [l1, l2]}\n", "logistic", cls)
    assert space.dims["penalty"].choices == ("l1", "l2")


def test_load_space_reads_a_file_and_names_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("num_leaves: 31\n", encoding="utf-8")
    assert load_space(path, "lightgbm", LightGBMModel).fixed == {"num_leaves": 31}
    with pytest.raises(UserError, match=r"cannot read the search space file .*nope\.yaml"):
        load_space(tmp_path / "nope.yaml", "lightgbm", LightGBMModel)


def test_grid_and_cmaes_checks() -> None:
    space = lgb("inherit_defaults: false\nnum_leaves: {low: 4, high: 64, log: true}\n")
    assert space.dims["num_leaves"].grid(5) == [4, 8, 16, 32, 64]
    assert grid_size(default_space("lightgbm", LightGBMModel), 3) == 3**9
    with pytest.raises(
        UserError, match=r"at 7 points per range has [0-9,]{10} points \(at most 100,000\)"
    ):
        check_sampler("grid", default_space("lightgbm", LightGBMModel), 7)
    logistic = default_space("logistic", adapter_class("logistic"))
    with pytest.raises(UserError, match="CMA-ES searches numeric ranges only, but penalty"):
        check_sampler("cmaes", logistic, 3)
    with pytest.raises(UserError, match="unknown sampler 'bayes'; expected one of tpe, random"):
        check_sampler("bayes", space, 3)
    empty = lgb("inherit_defaults: false\nnum_leaves: 8\n")
    with pytest.raises(UserError, match="the search space of model 'lightgbm' is empty"):
        check_sampler("tpe", empty, 3)


def test_cmaes_needs_its_package_and_says_how_to_get_it() -> None:
    import importlib.util

    from mlscale import MissingDependencyError

    space = lgb("inherit_defaults: false\nnum_leaves: {low: 4, high: 64, log: true}\n")
    if importlib.util.find_spec("cmaes") is None:
        with pytest.raises(MissingDependencyError, match=r'pip install "mlscale\[tune\]"'):
            check_sampler("cmaes", space, 3)
    else:
        check_sampler("cmaes", space, 3)  # a numeric space is accepted
