"""``mlscale retrain`` and ``mlscale watch`` in subprocesses, as a user (or cron) runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans, write_loans_csv
from tests.e2e.conftest import run_cli
from tests.monitor.conftest import NOW, log_traffic


def ok(root: Path, *args: str) -> str:
    result = run_cli(root, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def root(tmp_path: Path, loans_csv: Path) -> Path:
    """loans@1 trained on 400 loans and promoted; 3,000 new loans ingested as loans@2.

    Built with the Python API (fewer slow subprocesses); retrain and watch are the CLI's.
    """
    ws = Workspace.init(tmp_path / "ws")
    ws.ingest(write_loans_csv(tmp_path / "old.csv", 400, seed=1), name="loans")
    ws.train(
        "loans@1",
        target="default",
        exclude=["loan_id"],
        params={"num_boost_round": 30, "num_threads": 1},
    )
    ws.promote("loans", 1)
    ws.ingest(loans_csv, name="loans")
    ws.metadata.close()  # type: ignore[attr-defined]
    return ws.root


def test_retrain_prints_the_decision_with_its_figures(root: Path) -> None:
    kept = json.loads(ok(root, "retrain", "loans", "--min-delta", "0.5", "--json"))
    assert (kept["decision"], kept["champion"], kept["challenger"]) == (
        "kept",
        "loans@1",
        "loans@2",
    )
    assert 0 < kept["gain"] < 0.5 and kept["metric"] == "auc"

    out = ok(root, "retrain", "loans", "--data", "loans@2")
    assert out.startswith("loans@production: promoted (trigger: manual, champion loans@1, ")
    assert "challenger loans@3" in out
    figures = next(line for line in out.splitlines() if line.strip().startswith("auc:"))
    assert "for loans@3 vs" in figures and "for loans@1 on the holdout of loans@3" in figures
    assert "moved:    loans@production: 1 -> 3" in out

    recorded = Workspace.open(root).runs(kind="retrain")
    assert [r.params["decision"] for r in recorded] == ["promoted", "kept"]
    assert recorded[1].id == kept["run"]
    assert f"recorded: run {recorded[0].id[:8]} (mlscale runs show {recorded[0].id[:8]})" in out


def test_bad_arguments_exit_2_with_the_reason(root: Path) -> None:
    bad = run_cli(root, "retrain", "loans", "--canary", "150")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "error: canary percentage must be above 0 and at most 100, got 150\n"


def test_watch_once_runs_one_tick(root: Path) -> None:
    ws = Workspace.open(root)
    log_traffic(ws, generate_loans(1_000, seed=22, shift=True, label=False), start=NOW)
    ws.metadata.close()  # type: ignore[attr-defined]

    out = ok(root, "watch", "--once").splitlines()
    assert out[0].endswith(
        "UTC: 1,000 new logged rows; 0 alerts firing; 1 model checked, 1 retrained"
    )
    assert out[1].startswith("  loans@production (loans@1): promoted (drift): ")
    assert "features drifted" in out[1] and "auc " in out[1]

    again = json.loads(ok(root, "watch", "loans", "--once", "--json"))
    assert again["new_rows"] == 0
    assert [d["decision"] for d in again["decisions"]] == ["skipped"]
    assert again["decisions"][0]["champion"] == "loans@2"


def test_watch_stops_cleanly_on_ctrl_c(root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSCALE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlscale", "watch", "--every", "1h"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("watching every model with @production")
        tick = proc.stdout.readline()  # the first tick is done: the watch is sleeping now
        assert "0 new logged rows; 0 alerts firing; 1 model checked" in tick
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.strip().endswith("watch stopped") and "Traceback" not in err
