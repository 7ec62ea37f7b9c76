"""``mlscale tune`` as a user runs it: JSON output, errors, and Ctrl-C then the same command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mlscale import Workspace
from mlscale.cli.tune import PRUNERS, SAMPLERS
from mlscale.tune import pruning, samplers
from mlscale.tune.storage import study_storage

#: Trials of a few hundred rounds: long enough that Ctrl-C lands while one is running.
SLOW_SPACE = """\
inherit_defaults: false
num_boost_round: 150
num_leaves: {low: 8, high: 32}
num_threads: 1
"""


def command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mlscale", "--workspace", str(root), "tune", "loans@1",
            "--target", "default", "--exclude", "loan_id", *args]  # fmt: skip


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLSCALE_")}


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(root, *args), env=environment(), capture_output=True, text=True, timeout=300
    )


def test_choices_match_the_core() -> None:
    assert SAMPLERS == samplers.SAMPLERS and PRUNERS == pruning.PRUNERS


def test_tune_prints_json_and_user_errors_exit_2(loans_ws: Workspace, small_space: Path) -> None:
    done = run(loans_ws.root, "--trials", "3", "--space", str(small_space), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["model"] == "loans@1" and out["metric"] == "auc"
    assert out["trials"]["complete"] + out["trials"]["pruned"] == 3
    assert set(out["holdout"]) == {"auc", "log_loss", "accuracy"}
    assert "3/3 trials" in done.stderr  # the progress line when not on a terminal

    bad = run(loans_ws.root, "--model", "catboost", "--space", str(small_space))
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown model 'catboost'")
    assert "Traceback" not in bad.stderr
    space = loans_ws.root / "bad.yaml"
    space.write_text("num_leaves: {low: 1, high: 64}\n")
    bad = run(loans_ws.root, "--space", str(space))
    assert bad.returncode == 2 and "bad.yaml, line 1: num_leaves: low 1 is not allowed" in (
        bad.stderr
    )
    assert "must be an int in [2, 131072]" in bad.stderr


def test_ctrl_c_then_the_same_command_completes_the_study(loans_ws: Workspace) -> None:
    space = loans_ws.root / "slow.yaml"
    space.write_text(SLOW_SPACE)
    args = ("--trials", "8", "--pruner", "none", "--space", str(space))
    process = subprocess.Popen(
        command(loans_ws.root, *args),
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(loans_ws.metadata.list_runs(20, kind="trial")) < 2:  # the 2nd trial started
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no trial started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "run the same command again to continue it" in stderr and "Traceback" not in stderr

    tune_run = loans_ws.metadata.list_runs(5, kind="tune")[0]
    assert tune_run.status == "failed" and "interrupted" in (tune_run.error or "")
    name = tune_run.params["study"]
    study = optuna.load_study(study_name=name, storage=study_storage(loans_ws, name).open())
    assert not study.get_trials(states=(TrialState.RUNNING,))  # nothing left running
    done_before = len(study.get_trials(states=(TrialState.COMPLETE,)))
    assert done_before < 8
    for trial_run in loans_ws.metadata.list_runs(20, kind="trial"):
        assert trial_run.status in ("finished", "failed")
        if trial_run.status == "failed":  # the trial Ctrl-C landed in
            assert "interrupted" in (trial_run.error or ""), trial_run.error

    resumed = run(loans_ws.root, *args, "--json")
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout)
    assert out["trials"]["ran"] == 8 - done_before and out["trials"]["complete"] == 8
    assert out["study"] == name and out["model"] == "loans@1"
