"""Splits, continued training, reproducibility and what a run records."""

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlscale import SchemaError, UserError, Workspace
from mlscale.data.datasets import read_table
from mlscale.monitor import load_reference


@pytest.fixture
def loans(ws: Workspace, loans_csv: Path) -> Workspace:
    ws.ingest(loans_csv, name="loans")
    return ws


def test_the_run_records_its_holdout_curves_and_environment(loans: Workspace) -> None:
    result = loans.train("loans@1", target="default", params={"num_boost_round": 40})
    run = loans.metadata.get_run(result.run.id)
    rows = pq.read_table(io.BytesIO(loans.artifacts.get_bytes(run.artifacts["holdout"])))
    held = rows.column("row").to_numpy()
    assert len(held) == result.rows_test and len(np.unique(held)) == len(held)
    curves = json.loads(loans.artifacts.get_bytes(run.artifacts["curves"]))
    assert len(curves["valid_loss"]) == 40 and curves["valid_loss"][-1] < curves["valid_loss"][0]
    assert run.params["seed"] == 42 and run.params["split"] == "holdout"
    evaluation = json.loads(loans.artifacts.get_bytes(run.artifacts["evaluation"]))
    assert evaluation["rows"] == result.rows_test
    assert sum(map(sum, evaluation["confusion_matrix"]["matrix"])) == result.rows_test
    assert "well_calibrated" in evaluation["calibration"]
    reference = load_reference(loans, result.model)  # the monitor's: features and outputs
    assert set(reference.features) == set(
        result.model.signature["features"][i]["name"]
        for i in range(len(result.model.signature["features"]))
    )
    assert reference.outputs and reference.rows == result.rows_train
    assert run.env["git"] is None or len(run.env["git"]["commit"]) == 40
    assert run.env["peak_rss_mib"] > 0 and run.env["fit_seconds"] > 0 and "gpus" in run.env


def test_same_data_params_and_seed_give_a_bit_identical_model(loans: Workspace) -> None:
    a = loans.train("loans@1", target="default", name="a", seed=7)
    b = loans.train("loans@1", target="default", name="b", seed=7)
    c = loans.train("loans@1", target="default", name="c", seed=8)
    assert a.model.artifact_sha == b.model.artifact_sha
    assert a.model.artifact_sha != c.model.artifact_sha


def test_kfold_reports_the_mean_and_spread_and_refits_on_every_row(loans: Workspace) -> None:
    result = loans.train(
        "loans@1", target="default", split="kfold", folds=3, params={"num_boost_round": 30}
    )
    assert result.rows_test == 0 and result.rows_train == loans.dataset("loans@1").num_rows
    assert {"auc", "auc_std", "log_loss", "log_loss_std"} <= set(result.metrics)
    assert 0.6 < result.metrics["auc"] < 0.98 and result.metrics["auc_std"] < 0.1
    run = loans.metadata.get_run(result.run.id)
    assert "holdout" not in run.artifacts
    assert len(json.loads(loans.artifacts.get_bytes(run.artifacts["curves"]))["folds"]) == 3


def test_time_split_holds_out_the_latest_rows(loans: Workspace) -> None:
    result = loans.train(
        "loans@1", target="default", split="time", time_column="application_date", test_size=0.25
    )
    run = loans.metadata.get_run(result.run.id)
    held = pq.read_table(io.BytesIO(loans.artifacts.get_bytes(run.artifacts["holdout"])))
    dates = read_table(loans, loans.dataset("loans@1")).column("application_date").to_numpy()
    mask = np.zeros(len(dates), dtype=bool)
    mask[held.column("row").to_numpy()] = True
    assert dates[mask].min() >= dates[~mask].max()
    with pytest.raises(SchemaError, match="time column 'annual_income' is float64"):
        loans.train("loans@1", target="default", split="time", time_column="annual_income")
    with pytest.raises(UserError, match="a time split needs --time-column"):
        loans.train("loans@1", target="default", split="time")


def test_continued_training_keeps_the_features_and_adds_trees(loans: Workspace) -> None:
    first = loans.train("loans@1", target="default", params={"num_boost_round": 20})
    more = loans.train(
        "loans@1", target="default", init_from="loans@1", params={"num_boost_round": 10}
    )
    assert more.model.version == 2 and more.model.signature == first.model.signature
    assert loans.predictor("loans@2").model.booster_.num_trees() == 30
    run = loans.metadata.get_run(more.run.id)
    assert run.params["init_from"] == "loans@1"
    with pytest.raises(UserError, match="cannot continue loans@1 \\(lightgbm\\) as model 'log"):
        loans.train("loans@1", target="default", init_from="loans@1", model="logistic")
    with pytest.raises(UserError, match="trained on target 'default', not 'interest_rate'"):
        loans.train("loans@1", target="interest_rate", init_from="loans@1")


def test_bad_hyperparameters_name_the_allowed_range(loans: Workspace) -> None:
    with pytest.raises(UserError, match=r"'num_leaves' of model 'lightgbm' must be an int in"):
        loans.train("loans@1", target="default", params={"num_leaves": 1})
    with pytest.raises(UserError, match="did you mean 'learning_rate'"):
        loans.train("loans@1", target="default", params={"learning_rat": 0.1})
    assert loans.models() == [] and loans.metadata.list_runs() == []
