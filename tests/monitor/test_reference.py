"""References: bins from training rows or from a stored profile, JSON, and the bad cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from mlscale import NotFoundError, Workspace
from mlscale.models.signature import Feature, Signature
from mlscale.monitor import Reference, attach_reference, build_reference, load_reference
from mlscale.monitor.reference import output_columns
from mlscale.quickstart.loans import generate_loans

SIG = Signature(
    "binary",
    "y",
    [
        Feature("term", "int64", "numeric"),
        Feature("income", "float64", "numeric"),
        Feature("home", "string", "categorical", ["rent", "own", "mortgage"]),
        Feature("vip", "bool", "categorical", ["false", "true"]),
    ],
    classes=[0, 1],
)


def table(n: int = 5_000) -> pa.Table:
    rng = np.random.default_rng(0)
    income = rng.lognormal(10, 0.5, n)
    return pa.table(
        {
            "term": rng.choice([36, 60], n),
            "income": pa.array(income, mask=rng.uniform(0, 1, n) < 0.1),
            "home": rng.choice(["rent", "own"], n),
            "vip": rng.uniform(0, 1, n) < 0.2,
        }
    )


def test_bins_counts_outputs_and_json() -> None:
    probabilities = np.random.default_rng(1).dirichlet([2, 5], 5_000)
    ref = build_reference(table(), SIG, probabilities)
    term, income = ref.features["term"], ref.features["income"]
    assert term.edges[1:].tolist() == [36.0, 60.0]  # a value per bin when there are few
    assert term.counts[0] == term.counts[-1] == 0 and term.count == 5_000
    assert 19 <= len(income.edges) <= 21 and income.count + income.missing == 5_000
    assert income.missing == pytest.approx(500, abs=60)
    assert income.fine_counts.sum() == income.count and len(income.fine_edges) > 150
    assert income.fine_sums.sum() == pytest.approx(
        float(np.nansum(table()["income"].to_numpy(zero_copy_only=False)))
    )
    home = ref.features["home"]
    assert home.categories[-1] == "mortgage" and home.counts[-2:].tolist() == [0, 0]
    assert ref.features["vip"].categories == ["false", "true"]
    assert list(ref.outputs) == output_columns(SIG) == ["prediction", "proba.1"]
    assert ref.outputs["prediction"].labels == [0, 1]
    back = Reference.from_json(ref.to_json())
    assert back.to_json() == ref.to_json()
    assert np.array_equal(back.features["income"].sample, income.sample)


def test_the_trainer_records_one_and_old_versions_fall_back_to_their_profile(
    model_ws: Workspace,
) -> None:
    trained = load_reference(model_ws, model_ws.model("loans@1"))
    assert trained.source == "training" and list(trained.outputs) == ["prediction", "proba.1"]
    version = dataclasses.replace(model_ws.model("loans@1"), run_id=None)  # as before references
    ref = load_reference(model_ws, version)
    assert ref.source == "profile" and ref.outputs == {}
    assert list(ref.features) == [f["name"] for f in version.signature["features"]]
    rows = model_ws.dataset("loans@1").num_rows
    for name, col in ref.features.items():
        assert 0.7 * rows < col.count + col.missing <= rows, name  # the training share of rows
    assert ref.features["term_months"].edges[1:].tolist() == [12.0, 24.0, 36.0, 48.0, 60.0]


def test_an_attached_reference_wins_and_a_missing_one_is_named(model_ws: Workspace) -> None:
    version = dataclasses.replace(model_ws.model("loans@1"), run_id=None)
    attached = build_reference(generate_loans(500, seed=3), Signature.from_dict(version.signature))
    attach_reference(model_ws, version, attached)
    try:
        assert load_reference(model_ws, version).source == "training"
    finally:
        from mlscale.monitor.store import open_store

        with open_store(model_ws) as store, store.transaction():
            store._db.execute("DELETE FROM refs")
    broken = dataclasses.replace(version, profile_sha="0" * 64)
    with pytest.raises(NotFoundError, match=r"loans@1 has no usable reference profile"):
        load_reference(model_ws, broken)
