"""Resuming a study: trials and runs left "running" by a process that is gone are marked failed.

Ctrl-C needs no recovery: the interrupted trial is marked failed on the way out (Optuna does so
for a KeyboardInterrupt raised in the objective, and the trial's run is finished as failed). A
process killed outright (SIGKILL, a crash, a lost machine) leaves its trial running; the next run
of the same command finds it here. A trial counts as live only while the tuning run it belongs to
is still running and, on this machine, its process still exists.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from mlscale.errors import NotFoundError
from mlscale.tune.objective import OWNER_ATTR

if TYPE_CHECKING:
    import optuna

    from mlscale.workspace import Workspace

#: The study user attribute listing the tuning runs (one per invocation) that worked on it.
RUNS_ATTR = "mlscale_runs"
_ALL = 1_000_000  # list_runs needs a limit
ABANDONED = "abandoned: the process running it ended without finishing it (killed?)"


def owner() -> dict[str, Any]:
    """This process, as recorded on what it owns."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def recover(ws: Workspace, study: optuna.Study, *, reason: str = ABANDONED) -> int:
    """Mark the abandoned running trials of ``study`` failed (their runs too); return how many.

    Called before a run starts its trials, and by a run that stops on an error or Ctrl-C, to
    clean up after itself (a Ctrl-C can land between two steps of starting a trial); ``reason``
    is the error recorded on the runs it finishes.
    """
    from optuna.trial import TrialState

    invocations: list[dict[str, Any]] = study.user_attrs.get(RUNS_ATTR, [])
    live_runs = set()
    for inv in invocations:
        if _live(ws, inv["run"], inv):
            live_runs.add(inv["run"])
            continue
        _fail_run(ws, inv["run"], reason)
        # Trial runs cut off before their trial recorded its owner, too.
        for child in ws.metadata.list_runs(_ALL, kind="trial", parent_id=inv["run"]):
            _fail_run(ws, child.id, reason)
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        info = trial.user_attrs.get(OWNER_ATTR)
        if info is None:
            # Asked for but never started: live only if some invocation still is.
            if live_runs:
                continue
        elif info["tune_run"] in live_runs and _process_alive(info):
            continue
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if info is not None:
            _fail_run(ws, info["run"], reason)
        failed += 1
    return failed


def register_invocation(study: optuna.Study, run_id: str) -> None:
    """Record that tuning run ``run_id``, in this process, works on ``study``."""
    invocations = list(study.user_attrs.get(RUNS_ATTR, []))
    study.set_user_attr(RUNS_ATTR, [*invocations, {"run": run_id, **owner()}])


def _live(ws: Workspace, run_id: str, info: dict[str, Any]) -> bool:
    try:
        run = ws.metadata.get_run(run_id)
    except NotFoundError:  # a study kept while its workspace's runs were reset
        return False
    return run.status == "running" and _process_alive(info)


def _process_alive(info: dict[str, Any]) -> bool:
    if info.get("host") != socket.gethostname():
        return True  # another machine: only its own run's status can say it ended
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _fail_run(ws: Workspace, run_id: str, reason: str) -> None:
    """Finish run ``run_id`` as abandoned if it is still marked running."""
    try:
        run = ws.metadata.get_run(run_id)
    except NotFoundError:
        return
    if run.status != "running":
        return
    ws.metadata.finish_run(run.id, status="failed", metrics=run.metrics, env=run.env, error=reason)
