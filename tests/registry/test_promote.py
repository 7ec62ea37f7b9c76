"""Promotion gated on a metric: both models scored on the challenger's holdout rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mlscale import NotFoundError, SchemaError, UserError, Workspace
from mlscale.data.datasets import read_table
from mlscale.registry import HIGHER_IS_BETTER, TASK_METRICS, holder, load_holdout
from mlscale.train.metrics import evaluate
from tests.registry.conftest import Register, write_data


def test_a_worse_model_is_refused_with_both_figures(data_ws: Workspace, register: Register) -> None:
    good = register(features=["x1", "x2"])
    worse = register(features=["x2"])
    data_ws.promote("loans", good.version, alias="production")
    with pytest.raises(UserError) as exc:
        data_ws.promote("loans", worse.version, require_better="auc")
    message = str(exc.value)
    # Both were fitted with the same holdout rows, so their recorded AUCs are the figures.
    assert message.startswith("refused to move loans@production to version 2: ")
    assert f"auc {worse.metrics['auc']:.4f} for loans@2" in message
    assert f"vs {good.metrics['auc']:.4f} for loans@1 (the current production)" in message
    assert "on the holdout of loans@2 (100 rows of loans@1)" in message
    assert f"worse by {good.metrics['auc'] - worse.metrics['auc']:.4f}" in message
    assert "loans@production stays at version 1" in message
    assert data_ws.model("loans@production").version == good.version
    assert len(data_ws.metadata.alias_history("loans")) == 1


def test_a_better_model_is_promoted_with_its_figures_recorded(
    data_ws: Workspace, register: Register
) -> None:
    weak = register(features=["x2"])
    strong = register(features=["x1", "x2"])
    data_ws.promote("loans", weak.version, alias="production")
    done = data_ws.promote(
        "loans", strong.version, require_better="auc", actor="ana", reason="quarterly retrain"
    )
    c = done.comparison
    assert c is not None and c.passed and c.higher_is_better
    assert (c.challenger, c.holder) == ("loans@2", "loans@1")
    assert c.challenger_value == pytest.approx(strong.metrics["auc"])
    assert c.holder_value == pytest.approx(weak.metrics["auc"])
    assert done.event is not None
    assert (done.event.from_version, done.event.to_version) == (1, 2)
    assert done.event.actor == "ana"
    reason = data_ws.metadata.alias_history("loans")[-1].reason
    assert reason is not None and reason.startswith("quarterly retrain; auc ")
    assert f"{strong.metrics['auc']:.4f} for loans@2 vs {weak.metrics['auc']:.4f}" in reason
    assert "better by" in reason and "(higher is better)" in reason
    assert data_ws.model("loans@production").version == strong.version


def test_the_holder_is_scored_on_the_challengers_rows(
    data_ws: Workspace, register: Register
) -> None:
    champion = register(features=["x1"], holdout_offset=0)
    challenger = register(features=["x1", "x2"], holdout_offset=1)
    data_ws.promote("loans", champion.version)
    done = data_ws.promote("loans", challenger.version, require_better="auc")
    assert done.comparison is not None
    # The champion's figure is its AUC on rows 1, 5, 9, ... - not the one recorded at training.
    table = read_table(data_ws, data_ws.dataset("loans@1"))
    rows = np.arange(table.num_rows)[1::4]
    predictor = data_ws.predictor("loans@1")
    proba = predictor.predict_table(table.take(rows)).probabilities
    y = np.asarray(table.column("label"))[rows]
    assert proba is not None
    assert done.comparison.holder_value == pytest.approx(roc_auc_score(y, proba[:, 1]))
    assert done.comparison.holder_value != pytest.approx(champion.metrics["auc"])
    holdout = load_holdout(data_ws, challenger)
    assert holdout.rows == len(rows) and holdout.dataset == "loans@1"


def test_a_holdout_across_dataset_parts(
    data_ws: Workspace, register: Register, tmp_path: Path
) -> None:
    data_ws.ingest(write_data(tmp_path / "more.parquet", seed=1), name="loans", mode="append")
    assert len(data_ws.dataset("loans@2").parts) == 2
    weak = register(features=["x2"], dataset="loans@2")
    strong = register(features=["x1", "x2"], dataset="loans@2", holdout_offset=3)
    data_ws.promote("loans", weak.version)
    done = data_ws.promote("loans", strong.version, require_better="log_loss")
    assert done.comparison is not None
    assert done.comparison.challenger_value == pytest.approx(strong.metrics["log_loss"])
    assert "the holdout of loans@2 (200 rows of loans@2)" in done.comparison.describe()


def test_a_holder_needing_columns_the_holdout_lacks(
    data_ws: Workspace, register: Register, tmp_path: Path
) -> None:
    data_ws.ingest(write_data(tmp_path / "wide.parquet", extra=True), name="wide")
    wide = register(features=["x1", "x3"], dataset="wide@1")
    narrow = register(features=["x1", "x2"])
    data_ws.promote("loans", wide.version)
    with pytest.raises(SchemaError) as exc:
        data_ws.promote("loans", narrow.version, require_better="auc")
    assert str(exc.value) == (
        "model loans@1 needs feature(s) 'x3' that dataset loans@1 lacks, so it cannot be "
        "scored on "
        "the holdout of loans@2 (100 rows of loans@1)"
    )


def test_lower_is_better_for_regression_errors(data_ws: Workspace, register: Register) -> None:
    weak = register(features=["x2"], target="rate")
    strong = register(features=["x1", "x2"], target="rate")
    data_ws.promote("loans", weak.version, alias="staging")
    done = data_ws.promote("loans", strong.version, alias="staging", require_better="rmse")
    assert done.comparison is not None and not done.comparison.higher_is_better
    assert done.comparison.challenger_value < done.comparison.holder_value  # type: ignore[operator]
    assert "(lower is better)" in done.comparison.describe()
    again = register(features=["x2"], target="rate")
    with pytest.raises(
        UserError, match=r"mae [0-9.]+ for loans@3 vs .* worse by .* \(lower is better\)"
    ):
        data_ws.promote("loans", again.version, alias="staging", require_better="mae")
    assert data_ws.model("loans@staging").version == strong.version


def test_min_delta_refuses_a_small_gain(data_ws: Workspace, register: Register) -> None:
    first = register(features=["x1"])
    second = register(features=["x1", "x2"])
    data_ws.promote("loans", first.version)
    gain = second.metrics["accuracy"] - first.metrics["accuracy"]
    assert 0 < gain < 0.5
    with pytest.raises(UserError, match=f"better by {gain:.4f}, less than the required 0.5"):
        data_ws.promote("loans", second.version, require_better="accuracy", min_delta=0.5)
    with pytest.raises(UserError, match="min delta must be 0 or more"):
        data_ws.promote("loans", second.version, require_better="accuracy", min_delta=-1)
    assert data_ws.model("loans@production").version == first.version


def test_an_equal_model_is_not_better(data_ws: Workspace, register: Register) -> None:
    first = register(features=["x1", "x2"])
    twin = register(features=["x1", "x2"])
    data_ws.promote("loans", first.version)
    with pytest.raises(UserError, match=r"no better \(lower is better\)"):
        data_ws.promote("loans", twin.version, require_better="log_loss")


def test_unknown_metrics_name_the_available_ones(data_ws: Workspace, register: Register) -> None:
    first = register(features=["x1"])
    second = register(features=["x1", "x2"])
    data_ws.promote("loans", first.version)
    with pytest.raises(UserError) as exc:
        data_ws.promote("loans", second.version, require_better="f1")
    assert str(exc.value) == (
        "unknown metric 'f1' for binary models: expected one of accuracy, auc, log_loss"
    )
    with pytest.raises(UserError, match="metric 'rmse' for binary models: expected one of"):
        data_ws.promote("loans", second.version, require_better="rmse")
    assert data_ws.model("loans@production").version == first.version


def test_no_holder_yet_promotes_and_says_so(data_ws: Workspace, register: Register) -> None:
    first = register(features=["x1"])
    done = data_ws.promote("loans", first.version, alias="production", require_better="auc")
    assert done.comparison is not None and done.comparison.holder is None
    assert done.comparison.challenger_value == pytest.approx(first.metrics["auc"])
    assert done.event is not None and done.event.from_version is None
    assert done.event.reason is not None
    assert done.event.reason.endswith("no current production to compare with")


def test_models_of_different_targets_cannot_be_compared(
    data_ws: Workspace, register: Register
) -> None:
    classifier = register(features=["x1"])
    regressor = register(features=["x1"], target="rate")
    data_ws.promote("loans", classifier.version)
    with pytest.raises(UserError) as exc:
        data_ws.promote("loans", regressor.version, require_better="rmse")
    assert str(exc.value).startswith(
        "loans@2 predicts 'rate' (regression) but loans@1 predicts 'label' (binary): "
        "models of different targets or tasks cannot be compared"
    )


def test_a_version_without_a_holdout_cannot_be_compared(
    data_ws: Workspace, register: Register
) -> None:
    first = register(features=["x1"])
    second = register(features=["x1", "x2"], with_holdout=False)
    data_ws.promote("loans", first.version)
    with pytest.raises(UserError, match=r"loans@2: its training run \w+ recorded no holdout rows"):
        data_ws.promote("loans", second.version, require_better="auc")
    # Without a metric to compare on, a person may still promote it.
    assert data_ws.promote("loans", second.version).event is not None


def test_promoting_the_holder_again_changes_nothing(data_ws: Workspace, register: Register) -> None:
    first = register(features=["x1"])
    data_ws.promote("loans", first.version)
    again = data_ws.promote("loans", first.version, require_better="auc")
    assert (again.event, again.comparison) == (None, None)
    assert len(data_ws.metadata.alias_history("loans")) == 1


def test_bad_references_are_clear(data_ws: Workspace, register: Register) -> None:
    register(features=["x1"])
    with pytest.raises(NotFoundError, match=r"model 'loans' has no version 7 \(versions: 1\)"):
        data_ws.promote("loans", 7, require_better="auc")
    with pytest.raises(UserError, match="'latest' is reserved"):
        data_ws.promote("loans", 1, alias="latest", require_better="auc")
    assert holder(data_ws, "loans", "production") is None


def test_the_metric_goals_match_what_evaluate_reports() -> None:
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = rng.dirichlet(np.ones(3), size=len(y))
    reported = {
        "binary": evaluate("binary", y % 2, proba[:, :2] / proba[:, :2].sum(1, keepdims=True)),
        "multiclass": evaluate("multiclass", y, proba),
        "regression": evaluate("regression", y.astype(float), rng.normal(size=len(y))),
    }
    for task, metrics in reported.items():
        assert set(metrics) == set(TASK_METRICS[task]), task
    assert set(HIGHER_IS_BETTER) == {m for ms in TASK_METRICS.values() for m in ms}
