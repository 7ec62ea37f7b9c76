"""``mlscale models promote|rollback|history|show`` in subprocesses, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlscale import Workspace
from mlscale.quickstart.loans import write_loans_csv
from mlscale.train.trainer import TrainResult
from tests.e2e.conftest import run_cli

# Without the strongest columns the model is clearly worse (AUC near 0.55 against 0.7).
WEAK = ("loan_id", "credit_score", "annual_income", "interest_rate", "debt_to_income")


def ok(root: Path, *args: str) -> str:
    result = run_cli(root, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(root: Path, *args: str) -> str:
    result = run_cli(root, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TrainResult]]:
    """loans@1 weak, loans@2 strong, loans@3 weak again: all from loans@1 with the same seed.

    Built with the Python API (fewer slow subprocesses); the models commands are the CLI's.
    """
    root = tmp_path_factory.mktemp("registry")
    ws = Workspace.init(root)
    ws.ingest(write_loans_csv(root / "loans.csv", 1_500), name="loans")
    trained = [
        ws.train("loans@1", target="default", exclude=list(exclude))
        for exclude in (WEAK, ["loan_id"], WEAK)
    ]
    ws.metadata.close()  # type: ignore[attr-defined]
    return root, trained


def test_promote_with_a_required_metric(registry: tuple[Path, list[TrainResult]]) -> None:
    root, trained = registry
    weak, strong = (f"{t.metrics['auc']:.4f}" for t in trained[:2])

    first = ok(root, "models", "promote", "loans", "1", "--require-better", "auc")
    assert "no current production to compare with" in first
    assert "loans@production -> version 1 (new alias)" in first

    # The figures are those the trainer recorded: the same holdout rows, the same metric.
    better = ok(root, "models", "promote", "loans", "2", "--require-better", "auc",
                "--reason", "all features")  # fmt: skip
    assert "auc on the holdout of loans@2 (300 rows of loans@1):" in better
    lines = better.splitlines()
    assert any("loans@2" in x and "challenger" in x and strong in x for x in lines)
    assert any("loans@1" in x and "current production" in x and weak in x for x in lines)
    assert "better by" in better and "loans@production -> version 2 (was 1)" in better

    worse = refused(root, "models", "promote", "loans", "3", "--require-better", "auc")
    assert worse.startswith("error: refused to move loans@production to version 3: auc ")
    assert f"vs {strong} for loans@2 (the current production)" in worse
    assert "worse by" in worse and "stays at version 2" in worse

    small = refused(root, "models", "promote", "loans", "3", "--require-better", "f1")
    assert "unknown metric 'f1' for binary models: expected one of accuracy, auc, log_loss" in small
    history = ok(root, "models", "history", "loans", "--alias", "production")
    assert "when (UTC)" in history and "from -> to" in history
    assert "- -> 1" in history and "1 -> 2" in history and "all features" in history
    moves = json.loads(ok(root, "models", "history", "loans", "--json"))
    assert [(m["alias"], m["from"], m["to"]) for m in moves] == [
        ("production", None, 1),
        ("production", 1, 2),
    ]
    assert moves[1]["reason"].startswith(
        f"all features; auc {strong} for loans@2 vs {weak} for loans@1 (the current production)"
    )
    assert all(m["actor"] for m in moves)


def test_rollback_and_lineage(registry: tuple[Path, list[TrainResult]]) -> None:
    root, trained = registry
    ok(root, "models", "promote", "loans", "1", "--alias", "staging")
    ok(root, "models", "promote", "loans", "2", "--alias", "staging")
    back = ok(root, "models", "rollback", "loans", "--alias", "staging", "--reason", "latency")
    assert "loans@staging -> version 1 (was 2)" in back
    again = ok(root, "models", "rollback", "loans", "--alias", "staging")
    assert "loans@staging -> version 2 (was 1)" in again

    ok(root, "models", "promote", "loans", "3", "--alias", "canary")
    removed = ok(root, "models", "rollback", "loans", "--alias", "canary")
    assert "loans@canary removed (was 3)" in removed
    never = refused(root, "models", "rollback", "loans", "--alias", "shadow")
    assert "error: loans@shadow has never been moved, so there is nothing to roll back" in never

    reasons = [
        m["reason"]
        for m in json.loads(ok(root, "models", "history", "loans", "--alias", "staging", "--json"))
    ]
    assert reasons[2].startswith("latency; rollback of loans@staging: 1 -> 2 made ")
    assert reasons[3].startswith("rollback of loans@staging: 2 -> 1 made ")

    shown = ok(root, "models", "show", "loans@2")
    assert "lineage: dataset loans@1 -> run " in shown
    assert f"run {trained[1].run.id}: train, finished" in shown
    assert "rows from " in shown and "loans.csv" in shown
    assert "target=default" in shown and "alias moves of loans@2" in shown
    lineage = json.loads(ok(root, "models", "show", "loans@2", "--json"))["lineage"]
    assert lineage["dataset"]["ref"] == "loans@1"
    assert lineage["dataset"]["source"].endswith("loans.csv")
    assert lineage["run"]["id"] == trained[1].run.id
    assert "holdout" in lineage["run"]["artifacts"]
    assert [
        (m["alias"], m["from"], m["to"]) for m in lineage["moves"] if m["alias"] == "staging"
    ] == [
        ("staging", 1, 2),
        ("staging", 2, 1),
        ("staging", 1, 2),
    ]
