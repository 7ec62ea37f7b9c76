"""Performance per window of prediction time: realised against sklearn, and CBPE estimates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics
from tests.e2e.conftest import run_cli
from tests.monitor.conftest import NOW, log_traffic
from tests.monitor.test_labels import log_requests

from mlscale import UserError, Workspace
from mlscale.monitor import estimate, expected_auc, ingest_labels, performance_report
from mlscale.monitor.windows import log_folder
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.predlog import PredictionLog


def test_window_metrics_match_sklearn_on_the_labelled_rows(
    fresh_ws: Workspace, tmp_path: Path
) -> None:
    ws = fresh_ws
    table = generate_loans(900, seed=8)
    # 18 requests of 50 rows, one every 100 s: three 10-minute periods of 300 rows each.
    log_traffic(ws, table, start=NOW - 1_800, seconds_per_row=2.0)
    truth = np.array(table.column("default").to_pylist())
    proba = ws.predictor("loans@1").predict_table(table).probabilities
    labelled = np.array([i % 10 < 7 for i in range(900)])  # 70% of the rows get their outcome
    lines = [f"req-{i // 50 * 50}:{i % 50},{truth[i]}" for i in np.flatnonzero(labelled)]
    (tmp_path / "labels.csv").write_text("\n".join(["request_id,default", *lines]) + "\n")
    result = ingest_labels(ws, "loans", tmp_path / "labels.csv", id_column="request_id")
    assert (result.stored, result.joined, result.unknown) == (630, 630, 0)

    report = performance_report(ws, "loans", since=NOW - 1_800, until=NOW, every="10m")
    assert report.model == "loans@1" and report.task == "binary"
    assert (report.overall.rows, report.overall.labelled, report.overall.coverage) == (
        900,
        630,
        0.7,
    )
    assert len(report.periods) == 3
    for k, period in enumerate(report.periods):
        rows = np.zeros(900, bool)
        rows[k * 300 : (k + 1) * 300] = True
        y, p = truth[rows & labelled], proba[rows & labelled]
        assert (period.rows, period.labelled) == (300, 210)
        assert period.realised["auc"] == pytest.approx(metrics.roc_auc_score(y, p[:, 1]), 1e-12)
        assert period.realised["accuracy"] == metrics.accuracy_score(y, p.argmax(axis=1))
        assert period.realised["log_loss"] == pytest.approx(metrics.log_loss(y, p), 1e-9)
        assert set(period.estimated) == {"accuracy", "auc", "log_loss"}
    # The trained model's evaluation has a calibration verdict; the report carries it.
    assert report.calibration in ("well calibrated", "not well calibrated")
    data = report.to_dict()
    assert data["overall"]["coverage"] == 0.7 and data["labels"] == 630
    assert data["periods"][0]["start"].startswith("2027-01-15T07:30")


def calibrated_traffic(ws: Workspace, n: int, *, seed: int, sharpen: float = 1.0) -> np.ndarray:
    """Log ``n`` rows (requests of 100) scored ``p ** sharpen`` whose outcomes are drawn with
    probability ``p``: calibrated when ``sharpen == 1``. Returns the outcomes."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.3, 1.3, n)
    y = (rng.random(n) < p).astype(int)
    scores = p**sharpen
    log_requests(ws, [(f"b{k}", scores[k : k + 100], NOW + k) for k in range(0, n, 100)])
    return y


def test_cbpe_is_close_to_the_realised_metrics_of_a_calibrated_model(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    n = 4_000
    y = calibrated_traffic(ws, n, seed=3)
    # Only every other row gets its label: the estimate covers all rows, labelled or not.
    labels = [{"id": f"b{i // 100 * 100}:{i % 100}", "label": int(y[i])} for i in range(0, n, 2)]
    ingest_labels(ws, "loans", labels, label_column="label")
    overall = performance_report(ws, "loans").overall
    assert (overall.rows, overall.labelled) == (n, n // 2)
    for metric in ("auc", "accuracy", "log_loss"):
        realised = overall.realised[metric]
        assert abs(overall.estimated_labelled[metric] - realised) < 0.02, metric
        assert abs(overall.estimated[metric] - realised) < 0.03, metric


def test_cbpe_misses_when_the_model_is_not_calibrated(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    y = calibrated_traffic(ws, 2_000, seed=4, sharpen=3.0)  # scores p**3: far too low
    labels = [{"id": f"b{i // 100 * 100}:{i % 100}", "label": int(y[i])} for i in range(2_000)]
    ingest_labels(ws, "loans", labels, label_column="label")
    overall = performance_report(ws, "loans").overall
    assert abs(overall.estimated["accuracy"] - overall.realised["accuracy"]) > 0.05


def test_expected_auc_agrees_with_sklearn_on_outcomes_drawn_from_the_scores() -> None:
    rng = np.random.default_rng(5)
    p = rng.beta(0.8, 1.5, 20_000)
    y = rng.random(len(p)) < p
    assert expected_auc(p) == pytest.approx(metrics.roc_auc_score(y, p), abs=0.01)
    assert np.isnan(expected_auc(np.zeros(5)))  # every row certain: no positives to expect
    three = rng.dirichlet([1.0, 1.0, 1.0], 20_000)
    drawn = np.array([rng.choice(3, p=row) for row in three])
    est = estimate("multiclass", three)
    assert est["auc"] == pytest.approx(
        metrics.roc_auc_score(drawn, three, multi_class="ovr"), abs=0.01
    )
    assert est["accuracy"] == pytest.approx(
        metrics.accuracy_score(drawn, three.argmax(1)), abs=0.01
    )
    assert estimate("regression", np.zeros((3, 1))) == {}


def test_an_empty_window_names_what_is_logged(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    with pytest.raises(UserError, match=r"no predictions of loans@1 are logged; serve it"):
        performance_report(ws, "loans")
    log_requests(ws, [("a", [0.3], NOW)])
    with pytest.raises(
        UserError, match=r"no predictions of loans@1 in the last 1h; the log holds 1 rows from 2027"
    ):
        performance_report(ws, "loans", window="1h", now=NOW + 86_400)
    report = performance_report(ws, "loans", since=NOW - 60, until=NOW + 60, every="1m")
    assert [p.rows for p in report.periods] == [0, 1]  # an empty period is there, with no rows
    assert report.periods[0].coverage is None and report.periods[0].realised == {}


@pytest.fixture(scope="module")
def rates_ws(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Workspace:
    """A linear regressor of the interest rate (its own workspace: the shared one stays as is)."""
    ws = Workspace.init(tmp_path_factory.mktemp("rates") / "ws")
    ws.ingest(loans_csv, name="loans")
    ws.train("loans@1", target="interest_rate", name="rates", model="linear",
             exclude=["loan_id", "default"])  # fmt: skip
    return ws


def test_regressor_metrics_from_delayed_labels(rates_ws: Workspace, tmp_path: Path) -> None:
    ws = rates_ws
    predictor = ws.predictor("rates@1")
    table = generate_loans(200, seed=11)
    predicted = np.array(predictor.predict_table(table).predictions)
    names = predictor.signature.feature_names
    with PredictionLog(log_folder(ws)) as plog:
        for i in range(200):
            plog.append("rates", 1, f"q{i}", {n: [table.column(n)[i].as_py()] for n in names},
                        {"prediction": [predicted[i]]}, 1.0, ts=NOW + i)  # fmt: skip
    truth = np.array(table.column("interest_rate").to_pylist())
    lines = "".join(f"q{i},{float(truth[i])!r}\n" for i in range(150))
    (tmp_path / "rates.csv").write_text("id,rate\n" + lines)
    result = ingest_labels(ws, "rates", tmp_path / "rates.csv", label_column="rate")
    assert (result.joined, result.invalid) == (150, 0)
    report = performance_report(ws, "rates")
    assert report.calibration == "calibration unknown" and report.overall.estimated == {}
    assert report.overall.coverage == 0.75
    assert report.overall.realised["rmse"] == pytest.approx(
        metrics.root_mean_squared_error(truth[:150], predicted[:150]), 1e-9
    )
    assert report.overall.realised["r2"] == pytest.approx(
        metrics.r2_score(truth[:150], predicted[:150]), 1e-9
    )


def test_the_cli_ingests_labels_and_reports_performance(
    fresh_ws: Workspace, tmp_path: Path
) -> None:
    ws = fresh_ws
    y = calibrated_traffic(ws, 400, seed=6)
    lines = [f"b{i // 100 * 100}:{i % 100},{y[i]}" for i in range(300)] + ["ghost,1", "b0:1,x"]
    (tmp_path / "l.csv").write_text("\n".join(["rid,default", *lines]) + "\n")
    out = run_cli(
        ws.root, "monitor", "labels", "loans", str(tmp_path / "l.csv"), "--id-column", "rid"
    )
    assert out.returncode == 0, out.stderr
    assert "301 stored" in out.stdout and "300 joined" in out.stdout
    assert "1 unknown id" in out.stdout and "ghost" in out.stdout
    assert "1 invalid" in out.stdout and "row 302 (id 'b0:1')" in out.stdout
    out = run_cli(ws.root, "monitor", "performance", "loans", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["overall"]["labelled"] == 300 and data["overall"]["coverage"] == 0.75
    out = run_cli(ws.root, "monitor", "performance", "loans")
    assert out.returncode == 0 and "estimated" in out.stdout and "coverage" in out.stdout
