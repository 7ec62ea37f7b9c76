"""What the dashboard collects: traffic, latency, errors and drift over time, from real logs."""

from __future__ import annotations

import math

import pytest
from tests.dashboard.conftest import CALM_ROWS, ROWS_PER_REQUEST, SHIFTED_ROWS

from mlscale import NotFoundError, UserError, Workspace
from mlscale.dashboard import (
    Collector,
    CountsHistory,
    TrafficIndex,
    counts_from_metrics,
    render_model,
)
from mlscale.dashboard.counts import counts_from_files
from mlscale.monitor import ingest_labels
from mlscale.monitor.alert_rules import loads_alert_config
from mlscale.monitor.alerts import evaluate_alerts
from mlscale.monitor.windows import log_folder
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.metrics import ServerMetrics
from mlscale.serve.predlog import PredictionLog

SHIFTED = ("annual_income", "interest_rate", "purpose", "state")
UNCHANGED = ("age", "term_months", "home_ownership", "num_open_accounts")


def test_a_model_page_has_traffic_latency_and_drift_over_time(
    traffic_ws: Workspace, traffic_now: float
) -> None:
    panel = Collector(traffic_ws).model("loans", window="6h")
    assert panel.version.ref == "loans@1"
    assert panel.total.rows == CALM_ROWS + SHIFTED_ROWS
    assert panel.total.requests == (CALM_ROWS + SHIFTED_ROWS) // ROWS_PER_REQUEST
    assert sum(p.rows for p in panel.traffic) == panel.total.rows
    assert panel.traffic_by_version.keys() == {1}
    assert 0.85 < panel.total.p50_ms < 1.15  # every logged request took 1 ms
    # The range starts at the first traffic (two hours ago), not six hours back.
    assert traffic_now - 7_200 - panel.drift.step <= panel.since <= traffic_now - 7_200
    drift = panel.drift
    assert drift is not None and len(drift.starts) <= 16 and drift.step == 600
    assert drift.outputs == ["prediction", "proba.1"]
    assert drift.columns == [*(f.feature for f in panel.latest.report.features), *drift.outputs]
    # Periods wholly inside the calm hour and the drifted one (a period at an edge may hold a
    # few rows only, where the clock happens to cut).
    full = [k for k in range(len(drift.starts)) if drift.rows[k] >= 200]
    calm = [k for k in full if drift.starts[k] + drift.step <= traffic_now - 3_600]
    shifted = [k for k in full if drift.starts[k] >= traffic_now - 3_000]
    assert len(calm) >= 4 and len(shifted) >= 3
    for k in calm:
        assert drift.verdicts["interest_rate"][k] != "drift", drift.starts[k]
    for k in shifted:
        assert drift.verdicts["interest_rate"][k] == "drift", drift.starts[k]
        assert drift.scores["interest_rate"][k] > drift.thresholds["interest_rate"][k]
    for name in UNCHANGED:
        assert "drift" not in drift.verdicts[name], name
    latest = panel.latest
    assert latest is not None and latest.report.rows >= SHIFTED_ROWS
    assert set(SHIFTED) <= set(latest.report.drifted)
    assert {q.column for q in latest.quality} == {f.feature for f in latest.report.features}
    assert panel.notes == []


def test_performance_from_delayed_labels(traffic_ws: Workspace) -> None:
    ws = traffic_ws
    # The true outcomes of the first 600 drifted loans arrive (log_traffic logs row r as row
    # r % 50 of request "req-<r - r % 50>").
    truth = generate_loans(SHIFTED_ROWS, seed=9, shift=True).column("default").to_pylist()
    labels = [{"id": f"req-{r - r % 50}:{r % 50}", "label": truth[r]} for r in range(600)]
    assert ingest_labels(ws, "loans", labels, label_column="label").stored == 600
    perf = Collector(ws).model("loans", window="6h").performance
    assert perf.metric == "auc" and perf.labelled_rows == 600
    assert perf.training == ws.model("loans@1").metrics["auc"]
    labelled = [k for k, v in enumerate(perf.realised) if math.isfinite(v)]
    assert len(labelled) >= 2 and all(0.5 < perf.realised[k] < 1 for k in labelled)
    assert all(0 < perf.coverage[k] <= 1 for k in labelled)
    # The estimate covers every period with predictions, labelled or not.
    estimated = {k for k, v in enumerate(perf.estimated) if math.isfinite(v)}
    assert set(labelled) < estimated
    assert perf.calibration in ("well calibrated", "not well calibrated")
    assert perf.note == ""


def test_alerts_firing_now_and_their_events(traffic_ws: Workspace, traffic_now: float) -> None:
    ws = traffic_ws
    config = loads_alert_config(
        "rules:\n"
        "  - {name: rates-drifted, metric: drift.feature.interest_rate.psi, above: 0.2,\n"
        "     window: 10m, for: 2, severity: critical}\n"
        "  - {name: quiet, metric: traffic.rows, below: 1, window: 10m}\n"
    )
    evaluation = evaluate_alerts(ws, "loans", config=config, now=traffic_now)
    assert [r.status for r in evaluation.results] == ["firing", "ok"]
    collector = Collector(ws)
    panel = collector.model("loans", window="6h")
    (firing,) = panel.firing
    assert (firing.rule, firing.state, firing.severity) == ("rates-drifted", "firing", "critical")
    assert "interest_rate.psi" in firing.message and firing.at == traffic_now
    assert [(a.rule, a.state) for a in panel.alerts] == [("rates-drifted", "firing")]
    overview = collector.overview()
    assert overview.models[0].alerts_firing == 1 and overview.firing == panel.firing
    html = render_model(panel)
    assert "<span class='badge bad'>firing</span> <b>loans</b> rates-drifted (critical)" in html
    assert '<span class="badge">1 firing</span>' in html


def test_finished_periods_are_kept_and_only_the_newest_is_recomputed(
    traffic_ws: Workspace,
) -> None:
    collector = Collector(traffic_ws)
    first = collector.model("loans", window="6h")
    kept = dict(collector._periods)
    second = collector.model("loans", window="6h")
    assert second.drift.scores == first.drift.scores
    assert all(collector._periods[key] is period for key, period in kept.items())


def test_overview_rows(traffic_ws: Workspace) -> None:
    overview = Collector(traffic_ws).overview(window="24h")
    (row,) = overview.models
    assert row.name == "loans" and row.aliases == {"production": 1} and row.versions == 1
    assert row.rows == CALM_ROWS + SHIFTED_ROWS and sum(row.activity) == row.requests
    assert set(SHIFTED) <= set(row.drifted) and row.features == 12
    (move,) = overview.moves
    assert (move.alias, move.to_version, move.reason) == ("production", 1, "first model")
    assert overview.alerts == []


def test_quiet_model_and_unknown_names(quiet_ws: Workspace) -> None:
    collector = Collector(quiet_ws)
    panel = collector.model("loans")
    assert panel.total.requests == 0 and panel.drift is None and panel.latest is None
    assert any("no predictions of loans are logged" in n for n in panel.notes)
    assert panel.performance.note.startswith("no labels yet: send outcomes")
    assert panel.performance.training == quiet_ws.model("loans@1").metrics["auc"]
    assert collector.overview().models[0].drifted is None
    with pytest.raises(NotFoundError, match=r"no model named 'nope' \(models: loans\)"):
        collector.model("nope")
    with pytest.raises(NotFoundError, match=r"loans has no version 7 \(versions: 1\)"):
        collector.model("loans", version=7)
    with pytest.raises(UserError, match="unknown window '2h'; expected one of 1h, 6h, 24h, 7d"):
        collector.model("loans", window="2h")


def test_a_version_without_a_reference_shows_traffic_and_says_why_there_is_no_drift(
    quiet_ws: Workspace,
) -> None:
    ws = quiet_ws
    v1 = ws.model("loans@1")
    # A version registered without a run or a training profile: nothing to compare with.
    bare = ws.metadata.add_model_version(
        "loans", flavor=v1.flavor, artifact_sha=v1.artifact_sha, signature=v1.signature,
        metrics={}, profile_sha="", run_id=None, dataset=None,
    )  # fmt: skip
    with PredictionLog(log_folder(ws)) as plog:
        plog.append("loans", bare.version, "r1", {"age": [30]}, {"prediction": [0]}, 2.0)
    panel = Collector(ws).model("loans", version=bare.version, window="1h")
    assert panel.total.requests == 1 and panel.drift is None
    assert any(f"no drift for loans@{bare.version}" in n for n in panel.notes), panel.notes


def test_traffic_index_reads_only_new_rows_and_splits_requests(tmp_path) -> None:
    index = TrafficIndex(tmp_path)
    with PredictionLog(tmp_path) as plog:
        plog.append("m", 1, "a", {"x": [1.0, 2.0]}, {"prediction": [0, 1]}, 10.0, ts=1_000)
        plog.append("m", 2, "a", {"x": [3.0]}, {"prediction": [1]}, 30.0, ts=1_001)  # a shadow
    assert index.update("m", now=2_000) == 3
    assert index.update("m", now=2_000) == 0  # nothing new
    with PredictionLog(tmp_path) as plog:
        plog.append("m", 1, "b", {"x": [4.0]}, {"prediction": [0]}, 20.0, ts=1_070)
    assert index.update("m", now=2_000) == 1
    (minute_1, minute_2) = index.series("m", since=960, until=1_080, step=60, now=2_000)
    assert (minute_1.requests, minute_1.rows) == (2, 3)
    assert (minute_2.requests, minute_2.rows) == (1, 1)
    (v1,) = index.series("m", since=960, until=1_020, step=60, version=1, now=2_000)
    assert (v1.requests, v1.rows) == (1, 2) and abs(v1.p50_ms / 10 - 1) < 0.12
    assert index.versions("m") == [1, 2]
    # Minutes older than what is kept are forgotten.
    assert index.update("m", now=1_020 + index.keep_s) == 0
    assert index.total("m", since=0, until=10**10).requests == 1


def test_error_rates_from_the_server_counters(tmp_path) -> None:
    metrics = ServerMetrics()
    history = CountsHistory(lambda: counts_from_metrics(metrics))
    metrics.observe_request("loans", 1, 200, 0.01)
    history.sample(now=120)  # the baseline
    for _ in range(3):
        metrics.observe_request("loans", 1, 200, 0.01)
    metrics.observe_request("loans", 1, 503, 0.01)
    history.sample(now=180)
    metrics.observe_request("-", "-", 404, 0.01)
    history.sample(now=240)
    a, b, c = history.series("loans", since=120, until=300, step=60)
    assert (a.requests, a.errors, a.rate) == (4, 1, 0.25)
    assert (b.requests, b.errors) == (0, 0) and math.isnan(b.rate)
    assert (c.requests, c.errors) == (0, 0)
    assert history.totals("loans") == {200: 4, 503: 1}
    assert history.models() == ["-", "loans"]
    # A restarted server counts from zero: the drop is not a negative rate.
    fresh = ServerMetrics()
    history.read = lambda: counts_from_metrics(fresh)
    fresh.observe_request("loans", 1, 500, 0.01)
    history.sample(now=300)
    (d,) = history.series("loans", since=240, until=300, step=60)
    assert (d.requests, d.errors) == (1, 1)


def test_counts_shared_by_the_workers_of_a_server(tmp_path) -> None:
    run_dir = tmp_path / "run"
    worker = ServerMetrics(run_dir / "metrics-8000")
    worker.observe_request("loans", 1, 200, 0.01)
    worker.observe_request("loans", 1, 422, 0.01)
    worker.close()  # writes its file
    assert counts_from_files(run_dir) == {"loans": {200: 1, 422: 1}}
    assert counts_from_files(tmp_path / "nothing") == {}
