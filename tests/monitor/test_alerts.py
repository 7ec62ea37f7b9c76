"""Alert rules on windows, de-duplicated events, the log, and webhooks on a local HTTP receiver."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.e2e.conftest import run_cli
from tests.monitor.conftest import NOW, log_traffic
from tests.monitor.test_labels import log_requests

from mlscale import Workspace
from mlscale.monitor import (
    AlertNotifier,
    AlertRulesError,
    active_alerts,
    alert_events,
    drift_report,
    evaluate_alerts,
    ingest_labels,
    load_alert_config,
    loads_alert_config,
    performance_report,
)
from mlscale.monitor.alert_metrics import MetricSource, RuleError
from mlscale.monitor.alert_rules import parse_metric, rules_path
from mlscale.monitor.alerts import alert_store_path
from mlscale.monitor.quality import window_quality
from mlscale.monitor.windows import load_window, log_folder
from mlscale.quickstart.loans import generate_loans


class Receiver:
    """A local HTTP server that keeps the JSON bodies POSTed to it and answers ``status``;
    with ``gate``, each answer waits until the gate opens (or 10 s pass)."""

    def __init__(self, status: int = 200, gate: threading.Event | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.bodies.append(json.loads(body))
                receiver.headers.append(dict(self.headers))
                if gate is not None:
                    gate.wait(10)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=s3cret"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def refused_url() -> str:
    """The URL of a port nothing listens on: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"


@pytest.fixture
def rules_file(fresh_ws: Workspace) -> Iterator[Path]:
    """The workspace's monitor.yaml, removed afterwards (the workspace is shared)."""
    path = rules_path(fresh_ws.root)
    yield path
    path.unlink(missing_ok=True)


def per_minute(ws: Workspace, counts: list[int], start: float = NOW) -> None:
    """Log ``counts[i]`` single-row requests in minute ``i`` after ``start``."""
    requests = [
        (f"m{i}-{j}", [0.5], start + 60 * i + j) for i, n in enumerate(counts) for j in range(n)
    ]
    log_requests(ws, requests)


def test_a_rule_fires_after_n_windows_once_and_resolves(
    fresh_ws: Workspace, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    ws = fresh_ws
    per_minute(ws, [10, 10, 10, 2, 0])
    config = loads_alert_config(
        f"""
webhooks:
  - url: {receiver.url}
    headers: {{X-Team: ml}}
rules:
  - name: busy
    metric: traffic.rows
    op: ">"
    threshold: 5
    window: 1m
    for: 2
    models: [loans]
    severity: critical
"""
    )
    with AlertNotifier(alert_store_path(ws)) as notifier:

        def status_at(minutes: float) -> tuple[str, list[str]]:
            ev = evaluate_alerts(ws, "loans", config=config, now=NOW + 60 * minutes,
                                 notifier=notifier)  # fmt: skip
            [result] = ev.results
            return result.status, [e.status for e in ev.events]

        with caplog.at_level(logging.INFO, logger="mlscale.monitor.alerts"):
            assert status_at(1) == ("pending", [])  # the minute before had no traffic
            assert status_at(2) == ("firing", ["firing"])  # two busy minutes
            assert status_at(2.5) == ("firing", [])  # the same windows again: not re-sent
            assert status_at(3) == ("firing", [])  # still firing: not re-sent either
            assert [a.rule for a in active_alerts(ws, "loans")] == ["busy"]
            assert status_at(4) == ("ok", ["resolved"])  # the newest minute had 2 rows
            assert status_at(5) == ("ok", [])
        assert notifier.flush(timeout=30)
    assert active_alerts(ws) == []
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("alerts")]
    assert [(e["status"], e["value"]) for e in logged] == [("firing", 10.0), ("resolved", 2.0)]
    assert [r.levelname for r in caplog.records if r.name.endswith("alerts")] == [
        "WARNING",
        "INFO",
    ]
    # The webhook got the same JSON, with its header; the stored events say it was delivered.
    assert [(b["alert"], b["status"], b["values"]) for b in receiver.bodies] == [
        ("busy", "firing", [10.0, 10.0]),
        ("busy", "resolved", [10.0, 2.0]),
    ]
    first = receiver.bodies[0]
    assert (first["model"], first["version"], first["severity"]) == ("loans", 1, "critical")
    assert first["window_end"] == "2027-01-15T08:02:00+00:00"
    assert first["message"] == (
        "loans: traffic.rows = 10, traffic.rows > 5 for 2 consecutive windows of 1m"
    )
    assert receiver.headers[0]["X-Team"] == "ml"
    events = alert_events(ws, "loans")
    assert [e.status for e in events] == ["resolved", "firing"]  # newest first
    hook = f"http://127.0.0.1:{receiver.server.server_address[1]}/hook"  # no query: no secret
    assert events[1].deliveries == {
        "log": {"status": "sent", "tries": 1, "error": None},
        hook: {"status": "sent", "tries": 1, "error": None},
    }


def test_repeat_resends_a_firing_alert_after_its_interval(fresh_ws: Workspace) -> None:
    config = loads_alert_config(
        "rules:\n  - {name: idle, metric: traffic.rows, below: 1, window: 1m, repeat: 2m}\n"
    )

    def events_at(minutes: int) -> list[tuple[str, bool]]:
        ev = evaluate_alerts(fresh_ws, "loans", config=config, now=NOW + 60 * minutes)
        return [(e.status, e.payload["repeat"]) for e in ev.events]

    assert events_at(0) == [("firing", False)]
    assert events_at(1) == []
    assert events_at(2) == [("firing", True)]
    assert events_at(3) == []


def test_a_down_or_failing_webhook_is_retried_then_recorded_and_never_waited_for(
    fresh_ws: Workspace,
) -> None:
    ws = fresh_ws
    gate = threading.Event()
    failing, held = Receiver(status=500), Receiver(gate=gate)
    down = refused_url()
    try:
        config = loads_alert_config(
            f"""
webhooks:
  - {{url: {down}, tries: 3, backoff: 0.01}}
  - {{url: "{failing.url}", tries: 3, backoff: 0.01}}
  - {{url: "{held.url}", timeout: 20}}
rules:
  - {{name: idle, metric: traffic.rows, below: 1, window: 1m}}
"""
        )
        notifier = AlertNotifier(alert_store_path(ws))
        try:
            ev = evaluate_alerts(ws, "loans", config=config, now=NOW, notifier=notifier)
            # The evaluation is back while the last receiver still holds its answer.
            assert [r.status for r in ev.results] == ["firing"]
            [event] = alert_events(ws)
            held_name = held.url.partition("?")[0]
            assert event.deliveries[held_name]["status"] != "sent"
            gate.set()
            assert notifier.flush(timeout=60)
        finally:
            notifier.close()
        [event] = alert_events(ws)
        by_sink = event.deliveries
        assert by_sink[down]["status"] == "failed" and by_sink[down]["tries"] == 3
        assert "ConnectError" in by_sink[down]["error"]
        assert by_sink[failing.url.partition("?")[0]] == {
            "status": "failed",
            "tries": 3,
            "error": "HTTP 500 Internal Server Error",
        }
        assert len(failing.bodies) == 3  # every try reached it
        assert by_sink[held_name]["status"] == "sent" and len(held.bodies) == 1
        assert by_sink["log"]["status"] == "sent"
    finally:
        gate.set()
        failing.close()
        held.close()


def test_an_empty_window_is_no_evidence_and_keeps_the_state(
    fresh_ws: Workspace, tmp_path: Path
) -> None:
    ws = fresh_ws
    rng = np.random.default_rng(2)
    p = rng.random(400)
    log_requests(ws, [(f"r{i}", [p[i]], NOW + i) for i in range(400)])
    config = loads_alert_config(
        "rules:\n  - {name: weak, metric: performance.auc, below: 0.99, window: 10m}\n"
    )
    ev = evaluate_alerts(ws, "loans", config=config, now=NOW + 600)
    assert [(r.status, r.values[0][2]) for r in ev.results] == [("no data", None)]  # no labels
    flipped = [{"id": f"r{i}", "label": int(p[i] < 0.5)} for i in range(400)]  # a bad model
    ingest_labels(ws, "loans", flipped, label_column="label")
    ev = evaluate_alerts(ws, "loans", config=config, now=NOW + 600)
    assert [e.status for e in ev.events] == ["firing"] and ev.results[0].values[0][2] < 0.1
    # The next window has no predictions at all: no evidence either way, the alert stays.
    ev = evaluate_alerts(ws, "loans", config=config, now=NOW + 1_200)
    assert [r.status for r in ev.results] == ["firing"] and ev.events == []


def test_metrics_are_the_figures_of_the_reports(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    table = generate_loans(600, seed=8)
    log_traffic(ws, table, start=NOW, request_rows=1)
    truth = table.column("default").to_pylist()
    ingest_labels(
        ws, "loans", [{"id": f"req-{i}", "label": truth[i]} for i in range(0, 600, 2)],
        label_column="label",
    )  # fmt: skip
    source = MetricSource(ws, ws.model("loans@1"))
    start, end = NOW, NOW + 600

    def value(metric: str) -> float | None:
        return source.value(parse_metric(metric), start, end)

    drift = drift_report(ws, "loans", since=start, until=end)
    assert value("drift.share_drifted") == drift.share_drifted
    assert value("drift.drifted") == len(drift.drifted)
    age = next(f for f in drift.features if f.feature == "age")
    assert value("drift.feature.age.psi") == age.psi and value("drift.feature.age.ks") == age.ks
    proba = next(o for o in drift.outputs if o.feature == "proba.1")
    assert value("drift.output.proba.1.js") == proba.js
    window = load_window(ws, "loans", since=start, until=end, update=False)
    features, _ = window_quality(window.reference, window.summary)
    assert value("quality.missing_rate") == pytest.approx(
        np.mean([f.missing_rate for f in features])
    )
    income = next(f for f in features if f.column == "annual_income")
    assert value("quality.feature.annual_income.missing_rate") == income.missing_rate > 0
    overall = performance_report(ws, "loans", since=start, until=end).overall
    assert value("performance.auc") == overall.realised["auc"]
    assert value("performance.estimated_auc") == overall.estimated["auc"]
    assert value("performance.coverage") == 0.5 and value("traffic.rows") == 600
    assert source.value(parse_metric("drift.share_drifted"), end, end + 600) is None
    with pytest.raises(RuleError, match=r"has no feature 'agee'; it has: age, "):
        value("drift.feature.agee.psi")
    with pytest.raises(RuleError, match=r"binary model; its metrics are auc, log_loss, accuracy"):
        value("performance.rmse")
    with pytest.raises(RuleError, match="ks does not apply to categorical columns"):
        value("drift.feature.purpose.ks")


def test_a_rule_that_cannot_apply_or_a_corrupt_segment_is_reported_and_the_rest_goes_on(
    fresh_ws: Workspace,
) -> None:
    per_minute(fresh_ws, [3])
    (log_folder(fresh_ws) / "loans" / "seg-00000000T000000000000Z-000.arrows").write_bytes(b"??")
    config = loads_alert_config(
        """
rules:
  - {name: typo, metric: drift.feature.agee.psi, above: 0.2, window: 1m}
  - {name: quiet, metric: traffic.rows, below: 5, window: 1m}
"""
    )
    ev = evaluate_alerts(fresh_ws, "loans", config=config, now=NOW + 60)
    assert [(r.rule, r.status) for r in ev.results] == [("typo", "error"), ("quiet", "firing")]
    assert any("rule 'typo' on loans: drift.feature.agee.psi" in p for p in ev.problems)
    assert any("corrupt log segment skipped" in p for p in ev.problems)
    assert ev.results[1].values[0][2] == 3  # the good segment's rows are all counted


def test_rules_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        """rules:
  - name: a
    metric: drift.shared
    above: 0.3
  - name: b
    metric: traffic.rows
    op: >
    threshold: 3
  - name: c
    metric: performance.auc
    below: high
    for: 0
  - {name: a, metric: traffic.rows, below: 1}
webhooks:
  - url: ftp://example.com/x
  - url: http://example.com/${MLSCALE_TEST_UNSET_VARIABLE}
"""
    )
    with pytest.raises(AlertRulesError) as caught:
        load_alert_config(path)
    assert caught.value.problems == [
        f"{path}, line 3: rule 'a': unknown metric 'drift.shared'; did you mean "
        "'drift.share_drifted'?",
        f"{path}, line 7: rule 'b': op must be one of >, >=, <, <=, ==, !=, found '' (a bare > "
        'or | starts a YAML block: quote it, op: ">")',
        f"{path}, line 11: rule 'c': below must be a number, found 'high'",
        f"{path}, line 12: rule 'c': for must be a whole number of windows, 1 or more; found 0",
        f"{path}, line 13: rule 'a' appears twice (first at line 2)",
        f"{path}, line 15: webhook url must start with http:// or https://, found "
        "'ftp://example.com/x'",
        f"{path}, line 16: webhook url: environment variable MLSCALE_TEST_UNSET_VARIABLE is not "
        "set",
    ]
    path.write_text("rules:\n  - name: [unclosed\n")
    with pytest.raises(AlertRulesError, match=rf"^{path}, line 3: invalid YAML"):
        load_alert_config(path)
    assert load_alert_config(tmp_path / "absent.yaml").rules == ()


def test_the_cli_lists_evaluates_and_shows_alerts(fresh_ws: Workspace, rules_file: Path) -> None:
    ws = fresh_ws
    rules_file.write_text(
        "rules:\n  - {name: no-traffic, metric: traffic.rows, below: 1, window: 1m}\n"
    )
    out = run_cli(ws.root, "monitor", "alerts", "loans", "--evaluate", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [r["name"] for r in data["rules"]] == ["no-traffic"]
    assert [r["status"] for r in data["evaluation"]["results"]] == ["firing"]
    assert [e["status"] for e in data["events"]] == ["firing"]
    out = run_cli(ws.root, "monitor", "alerts")
    assert out.returncode == 0, out.stderr
    assert "firing: no-traffic on loans since" in out.stdout
    assert "traffic.rows < 1 for 1 window of 1m" in out.stdout
    rules_file.write_text("rules:\n  - {name: x, metric: traffic.rowz, below: 1}\n")
    out = run_cli(ws.root, "monitor", "alerts", "--evaluate")
    assert out.returncode == 2
    assert f"error: {rules_file}, line 2: rule 'x': unknown metric 'traffic.rowz'" in out.stderr
