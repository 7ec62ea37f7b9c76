"""Drift and quality of logged traffic, through the API and the ``mlscale monitor`` command."""

from __future__ import annotations

import json

import pytest
from tests.e2e.conftest import run_cli
from tests.monitor.conftest import NOW, log_traffic

from mlscale import UserError, Workspace
from mlscale.monitor import (
    Summarizer,
    build_reference,
    compare,
    drift_report,
    quality_report,
    update_windows,
)
from mlscale.monitor.windows import log_folder
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.predlog_reader import read_log


def test_calm_traffic_is_stable_shifted_traffic_drifts(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    log_traffic(ws, generate_loans(2_000, seed=8), start=NOW - 7_200)  # an hour before the shift
    log_traffic(
        ws, generate_loans(2_000, seed=9, shift=True), start=NOW - 1_800, seconds_per_row=0.5
    )
    calm = drift_report(ws, "loans", since=NOW - 7_200, until=NOW - 3_600)
    assert calm.drifted == [] and calm.rows == 2_000 and calm.reference == "training"
    assert [o.feature for o in calm.outputs] == ["prediction", "proba.1"]
    shifted = drift_report(ws, "loans@production", window="30m", now=NOW, update=False)
    assert shifted.rows == 2_000
    assert {"annual_income", "interest_rate", "purpose", "state"} <= set(shifted.drifted)
    verdicts = {f.feature: f.verdict for f in shifted.features}
    for unchanged in ("age", "term_months", "home_ownership", "num_open_accounts"):
        assert verdicts[unchanged] == "stable", unchanged
    data = shifted.to_dict()
    assert data["share_drifted"] == len(shifted.drifted) / len(shifted.features)
    assert data["window"]["description"] == "last 30m"
    both = drift_report(ws, "loans", numeric_method="wasserstein", update=False)
    assert both.rows == 4_000 and all(
        f.method in ("wasserstein", "jensen_shannon") for f in both.features
    )
    with pytest.raises(UserError, match="unknown numeric drift method"):
        drift_report(ws, "loans", numeric_method="p-value")


def test_prediction_drift_against_a_holdout_reference(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    predictor = ws.predictor("loans@1")
    holdout = generate_loans(3_000, seed=3)
    outputs = predictor.model.predict(predictor.encoder.encode_table(holdout))
    reference = build_reference(holdout, predictor.signature, outputs)
    log_traffic(ws, generate_loans(2_000, seed=8), start=NOW - 7_200)
    log_traffic(ws, generate_loans(2_000, seed=9, shift=True), start=NOW - 1_800)
    summarizer = Summarizer(reference)  # on the log's own columns: f.<feature>, outputs
    folder = log_folder(ws)
    calm = compare(reference, summarizer.summarize(read_log(folder, "loans", until=NOW - 3_600))[0])
    shifted = compare(
        reference, summarizer.summarize(read_log(folder, "loans", since=NOW - 3_600))[0]
    )
    assert calm.prediction_drift is False and calm.drifted == []
    assert shifted.prediction_drift is True
    assert {o.feature: o.verdict for o in shifted.outputs}["proba.1"] == "drift"


def test_quality_counts_missing_unseen_out_of_range_and_violations(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    rows = generate_loans(300, seed=4)
    odd = rows.to_pylist()
    for row in odd[:30]:
        row.update(state="ZZ", annual_income=None, age=150)  # unseen, missing, out of range
    import pyarrow as pa

    log_traffic(ws, pa.Table.from_pylist(odd, schema=rows.schema), start=NOW - 600)
    log_traffic(ws, generate_loans(100, seed=5), start=NOW - 300, drop=("debt_to_income",))
    report = quality_report(ws, "loans", window="1h", every="5m", now=NOW)
    q = {c.column: c for c in report.features}
    assert report.rows == 400
    assert q["state"].unseen_rate == pytest.approx(30 / 400) and q["state"].top_unseen == {"ZZ": 30}
    assert q["age"].out_of_range_rate == pytest.approx(30 / 400)
    assert q["annual_income"].missing_rate >= 30 / 400
    assert report.violations == {"debt_to_income": 100}
    assert q["debt_to_income"].violations == 100 and q["debt_to_income"].missing_rate == 0
    assert sum(b.rows for b in report.buckets) == 400 and len(report.buckets) >= 2


def test_the_monitor_command(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    log_traffic(ws, generate_loans(500, seed=6, shift=True), start=NOW - 600)
    root = ws.root
    updated = run_cli(root, "monitor", "update", "--json")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)[0]["rows"] == 500
    drift = run_cli(root, "monitor", "drift", "loans", "--json", "--fail-on-drift")
    assert drift.returncode == 3, drift.stderr  # drifted, as asked to signal
    report = json.loads(drift.stdout)
    assert report["rows"] == 500 and "interest_rate" in report["drifted"]
    table = run_cli(root, "monitor", "quality", "loans@1", "--every", "5m")
    assert table.returncode == 0 and "debt_to_income" in table.stdout
    empty = run_cli(root, "monitor", "drift", "loans", "--window", "1m")
    assert empty.returncode == 2
    assert empty.stderr.startswith("error: no predictions of loans@1 in the last 1m")
    assert "Traceback" not in empty.stderr


def test_one_bad_model_does_not_stop_the_others(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    log_traffic(ws, generate_loans(50, seed=7), start=NOW - 60)
    (ws.root / ".mlscale" / "predictions" / "ghost").mkdir()
    (
        ws.root / ".mlscale" / "predictions" / "ghost" / "seg-20270101T000000000000Z-000.arrows"
    ).write_bytes(b"")
    results = {r.model: r for r in update_windows(ws)}
    assert results["loans"].rows == 50 and results["ghost"].rows == 0
