"""Out-of-core training: several chunks, the same quality as in memory, nothing left behind."""

from pathlib import Path

import numpy as np
import pytest

import mlscale.train.out_of_core as ooc
from mlscale import UserError, Workspace
from mlscale.data.datasets import read_table


@pytest.fixture
def loans(ws: Workspace, loans_csv: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setattr(ooc, "CHUNK_ROWS", 1_500)  # several chunks from a small dataset
    ws.ingest(loans_csv, name="loans")
    return ws


@pytest.mark.parametrize("model", ["lightgbm", "xgboost", "logistic"])
def test_streamed_training_matches_in_memory_quality(loans: Workspace, model: str) -> None:
    params = {"num_boost_round": 60} if model != "logistic" else {}
    streamed = loans.train(
        "loans@1", target="default", model=model, out_of_core=True, name="s", params=params
    )
    loaded = loans.train("loans@1", target="default", model=model, name="m", params=params)
    # Different holdouts (a hash of the row position, a stratified draw): only noise apart.
    assert abs(streamed.metrics["auc"] - loaded.metrics["auc"]) < 0.06
    assert streamed.metrics["auc"] > 0.7
    run = loans.metadata.get_run(streamed.run.id)
    assert run.params["out_of_core"] is True and run.env["peak_rss_mib"] > 0
    assert streamed.rows_train + streamed.rows_test == loans.dataset("loans@1").num_rows
    assert set(run.artifacts) == {"holdout", "curves", "evaluation"}
    predictor = loans.predictor(streamed.model.ref)  # servable like any other version
    rows = read_table(loans, loans.dataset("loans@1")).slice(0, 5)
    assert len(predictor.predict_table(rows).predictions) == 5
    assert not any(loans.scratch_dir().iterdir())  # the spilled chunks are gone


def test_streamed_regression_and_holdout_is_stable(loans: Workspace) -> None:
    a = loans.train("loans@1", target="interest_rate", out_of_core=True, name="a")
    b = loans.train("loans@1", target="interest_rate", out_of_core=True, name="b")
    assert a.metrics["r2"] > 0.5 and a.model.artifact_sha == b.model.artifact_sha
    mask = ooc.holdout_mask(np.arange(1_000), 0.2, seed=42)
    assert mask.tolist() == ooc.holdout_mask(np.arange(1_000), 0.2, seed=42).tolist()


def test_out_of_core_refuses_what_it_cannot_do(loans: Workspace) -> None:
    with pytest.raises(UserError, match="model 'random_forest' cannot train out of core"):
        loans.train("loans@1", target="default", model="random_forest", out_of_core=True)
    with pytest.raises(UserError, match="supports --split holdout"):
        loans.train("loans@1", target="default", split="kfold", out_of_core=True)
    assert loans.models() == []


def test_the_model_does_not_depend_on_the_chunk_size(
    loans: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = loans.train("loans@1", target="default", out_of_core=True, name="a")
    monkeypatch.setattr(ooc, "CHUNK_ROWS", 1_000_000)
    one_chunk = loans.train("loans@1", target="default", out_of_core=True, name="b")
    assert small.model.artifact_sha == one_chunk.model.artifact_sha
