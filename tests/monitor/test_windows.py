"""Live windows from the real prediction log: incremental updates, bad segments, window choice."""

from __future__ import annotations

import pytest
from tests.monitor.conftest import NOW, log_traffic

from mlscale import ConfigError, UserError, Workspace
from mlscale.monitor import Summarizer, load_reference, load_window, update_windows
from mlscale.monitor.store import open_store
from mlscale.monitor.windows import log_folder
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.predlog import PredictionLog


def counts(window_or_summary) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    s = getattr(window_or_summary, "summary", window_or_summary)
    return {
        name: [*col.counts.tolist(), *getattr(col, "fine", []), col.missing, col.violations]
        for name, col in (*s.features.items(), *s.outputs.items())
    }


def test_updates_are_incremental_and_exact(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    first, second = generate_loans(600, seed=8), generate_loans(400, seed=9)
    log_traffic(ws, first, start=NOW - 3000)
    [result] = update_windows(ws)
    assert (result.model, result.rows, result.skipped_rows, result.problems) == (
        "loans",
        600,
        0,
        [],
    )
    assert result.buckets == 10  # 600 rows, one a second: ten minutes
    assert update_windows(ws)[0].rows == 0  # nothing new: nothing read twice
    log_traffic(ws, second, start=NOW - 2400)  # a new segment, overlapping the same minutes
    assert update_windows(ws, "loans")[0].rows == 400

    incremental = load_window(ws, "loans", update=False)
    assert incremental.summary.rows == 1_000 and incremental.version.ref == "loans@1"
    # The same counts as summarising every row at once, and as rebuilding from the log.
    reference = load_reference(ws, ws.model("loans@1"))
    whole = Summarizer(reference, feature_prefix="", outputs=False).summarize(
        generate_loans(600, seed=8).select(list(reference.features))
    )[0]
    whole.merge(
        Summarizer(reference, feature_prefix="", outputs=False).summarize(
            second.select(list(reference.features))
        )[0]
    )
    assert {k: v for k, v in counts(incremental).items() if k in reference.features} == counts(
        whole
    )
    update_windows(ws, "loans", rebuild=True)
    rebuilt = load_window(ws, "loans", update=False)
    assert counts(rebuilt) == counts(incremental)
    assert rebuilt.summary.features["age"].fine.sum() == 1_000
    assert len(rebuilt.summary.features["age"].sample.values) == 500


def test_an_open_segment_is_read_as_it_grows(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    predictor = ws.predictor("loans@1")
    names = predictor.signature.feature_names
    rows = generate_loans(30, seed=3).to_pylist()
    plog = PredictionLog(log_folder(ws), background=False)
    try:
        for i, row in enumerate(rows):
            plog.append("loans", 1, f"r{i}", {n: [row[n]] for n in names}, {}, 1.0, ts=NOW + i)
            if i in (9, 19):
                plog.flush()
                assert update_windows(ws)[0].rows == 10
    finally:
        plog.close()  # flushes the last ten rows and seals the segment
    assert update_windows(ws)[0].rows == 10
    assert update_windows(ws)[0].rows == 0
    assert load_window(ws, "loans@1", update=False).summary.rows == 30


def test_a_corrupt_segment_is_reported_and_the_rest_goes_on(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    log_traffic(ws, generate_loans(100, seed=1), start=NOW - 500)
    bad = log_folder(ws) / "loans" / "seg-20270101T000000000000Z-000.arrows"
    bad.write_bytes(b"this is not an Arrow stream")
    [result] = update_windows(ws)
    assert result.rows == 100
    assert any("corrupt" in p and bad.name in p for p in result.problems)
    with open_store(ws) as store:
        assert any(bad.name in note for note in store.notes("loans"))
    assert update_windows(ws)[0].problems == []  # remembered: reported once, not every time
    log_traffic(ws, generate_loans(50, seed=2), start=NOW - 100)
    assert update_windows(ws)[0].rows == 50


def test_rows_of_an_unknown_version_are_skipped_with_a_note(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    log_traffic(ws, generate_loans(100, seed=1), start=NOW - 500)
    log_traffic(ws, generate_loans(100, seed=2), start=NOW - 500, version=7)
    [result] = update_windows(ws)
    assert (result.rows, result.skipped_rows) == (100, 100)
    assert any("loans@7" in p for p in result.problems)
    assert load_window(ws, "loans@1", update=False).summary.rows == 100


def test_windows_by_time_and_by_rows(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    # 3 hours of traffic: a request of 10 rows a minute.
    log_traffic(
        ws, generate_loans(1_800, seed=4), start=NOW - 3 * 3600, seconds_per_row=6, request_rows=10
    )
    hour = load_window(ws, "loans", window="1h", now=NOW)
    assert 600 <= hour.summary.rows <= 610 and hour.description == "last 1h"
    assert hour.end.timestamp() <= NOW + 60
    last = load_window(ws, "loans", last_rows=95, update=False)
    assert 95 <= last.summary.rows < 95 + 10 and last.buckets == 10
    assert load_window(ws, "loans", update=False).summary.rows == 1_800
    with pytest.raises(
        UserError, match=r"no predictions of loans@1 in the last 1h; the log holds 1,800 rows"
    ):
        load_window(ws, "loans", window="1h", now=NOW + 86_400)
    with pytest.raises(UserError, match="not both"):
        load_window(ws, "loans", window="1h", last_rows=5)


def test_no_traffic_and_resolution_changes(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    with pytest.raises(UserError, match="no predictions of loans@1 are logged"):
        load_window(ws, "loans@production")
    log_traffic(ws, generate_loans(120, seed=5), start=NOW - 120)
    update_windows(ws)
    [result] = update_windows(ws, "loans", resolution="5m")
    assert "rebuild" in result.problems[0]  # reported, not raised: other models would go on
    with pytest.raises(ConfigError, match="invalid duration"):
        update_windows(ws, "loans", resolution="5 parsecs", rebuild=True)
    [result] = update_windows(ws, "loans", resolution="5m", rebuild=True)
    assert result.rows == 120 and result.buckets == 1
    window = load_window(ws, "loans", update=False)
    assert window.end.timestamp() - window.start.timestamp() == 300
    assert window.summary.features["age"].fine.sum() == 120
