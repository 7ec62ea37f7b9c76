"""Tuning end to end on the Python API: registration, run trail, pruning, resume, parallel."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mlscale import MlscaleError, UserError, Workspace
from mlscale.compute import check_backend
from mlscale.tune import TuneInterrupted, TuneProgress
from mlscale.tune.objective import OWNER_ATTR
from mlscale.tune.recovery import ABANDONED
from mlscale.tune.storage import study_storage


def tune(ws: Workspace, space: Path, **options: object):  # type: ignore[no-untyped-def]
    options = {"trials": 8, "exclude": ["loan_id"], "space": space} | options
    return ws.tune("loans@1", target="default", **options)


def study_of(ws: Workspace, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=study_storage(ws, name).open())


def test_tuning_registers_the_best_trial_with_a_run_trail(
    loans_ws: Workspace, small_space: Path
) -> None:
    seen: list[TuneProgress] = []
    result = tune(loans_ws, small_space, progress=seen.append)
    ws = loans_ws

    assert result.complete + result.pruned == 8 and result.ran == 8 and result.stopped == "done"
    assert result.model.ref == "loans@1" and result.metric == "auc"
    assert 0.6 < result.best_value <= 1.0
    assert set(result.best_params) == {
        "learning_rate",
        "num_leaves",
        "num_boost_round",
        "num_threads",
    }
    assert result.best_params["num_boost_round"] == 40  # the fixed value travels with the best

    study_run = ws.metadata.get_run(result.run.id)
    assert study_run.kind == "tune" and study_run.status == "finished"
    assert study_run.params["study"] == result.study and study_run.params["sampler"] == "tpe"
    assert study_run.metrics["valid_auc"] == pytest.approx(result.best_value)
    assert study_run.metrics["holdout_auc"] == pytest.approx(result.model.metrics["auc"])
    assert study_run.env["model_version"] == "loans@1"

    trials = ws.metadata.list_runs(100, kind="trial", parent_id=result.run.id)
    assert len(trials) == 8
    assert {t.env["state"] for t in trials} <= {"complete", "pruned"}
    best_trial = next(t for t in trials if t.params["number"] == result.best_trial)
    assert best_trial.metrics["auc"] == pytest.approx(result.best_value)

    # The registered version was trained by an ordinary training run on the best parameters.
    train_run = ws.metadata.get_run(result.model.run_id)
    assert train_run.kind == "train" and study_run.env["train_run"] == train_run.id
    for key, value in result.best_params.items():
        assert train_run.params["hyperparameters"][key] == pytest.approx(value)

    assert seen[-1].stage == "training" and seen[-1].done == 8 and seen[-1].best is not None
    assert [p.done for p in seen if p.stage == "trials"] == sorted(
        p.done for p in seen if p.stage == "trials"
    )


def test_the_median_pruner_stops_trials_early(loans_ws: Workspace, small_space: Path) -> None:
    result = tune(loans_ws, small_space, trials=12, sampler="random", seed=3, pruner="median")
    assert result.pruned >= 1 and result.complete >= 5  # 5 complete before pruning starts
    trials = loans_ws.metadata.list_runs(100, kind="trial", parent_id=result.run.id)
    pruned = [t for t in trials if t.env["state"] == "pruned"]
    assert len(pruned) == result.pruned
    assert all(t.env["pruned_at_step"] < 40 for t in pruned)  # stopped before its last round
    study = study_of(loans_ws, result.study)
    for t in study.get_trials(states=(TrialState.PRUNED,)):
        assert max(t.intermediate_values) < 40 and all(
            v < 0 for v in t.intermediate_values.values()
        )

    unpruned = tune(loans_ws, small_space, trials=12, sampler="random", seed=3, pruner="none")
    assert unpruned.pruned == 0 and unpruned.complete == 12 and unpruned.study != result.study


def test_hyperband_is_the_default_and_stops_trials_at_its_rungs(
    loans_ws: Workspace, small_space: Path
) -> None:
    result = tune(loans_ws, small_space, trials=12, sampler="random", seed=3)
    assert loans_ws.metadata.get_run(result.run.id).params["pruner"] == "hyperband"
    assert result.pruned >= 1 and result.complete >= 1
    study = study_of(loans_ws, result.study)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert len(pruned) == result.pruned
    # Rungs sit at min_resource * 3**k iterations, with min_resource the report interval (2 for
    # a 40-round space), so every pruned trial stopped at 2, 6 or 18 of its 40 rounds.
    assert {max(t.intermediate_values) for t in pruned} <= {2, 6, 18}


def test_an_interrupted_study_resumes_with_the_remaining_trials_only(
    loans_ws: Workspace, small_space: Path
) -> None:
    def stop_after_three(p: TuneProgress) -> None:
        if p.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(TuneInterrupted) as stopped:
        tune(loans_ws, small_space, progress=stop_after_three)
    assert stopped.value.done == 3 and stopped.value.total == 8
    first = loans_ws.metadata.list_runs(10, kind="tune")[0]
    assert first.status == "failed" and "interrupted" in (first.error or "")
    assert loans_ws.models() == []

    result = tune(loans_ws, small_space)
    assert result.ran == 5 and result.complete + result.pruned == 8
    assert result.study == stopped.value.study and result.model.ref == "loans@1"
    assert result.run.params["resumed_at"] == 3
    trial_runs = loans_ws.metadata.list_runs(100, kind="trial")
    assert len(trial_runs) == 8 and {t.parent_id for t in trial_runs} == {first.id, result.run.id}

    again = tune(loans_ws, small_space)  # done and registered: nothing to run, nothing new
    assert again.ran == 0 and again.model.ref == "loans@1" and again.run.id == result.run.id
    assert len(loans_ws.models()) == 1


def test_a_trial_left_running_by_a_killed_process_is_failed_on_resume(
    loans_ws: Workspace, small_space: Path
) -> None:
    first = tune(loans_ws, small_space, trials=2)
    study = study_of(loans_ws, first.study)
    # What a process killed mid-trial leaves: a running trial, its run and its tuning run.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    tune_run = loans_ws.metadata.create_run("tune", params={}, dataset="loans@1")
    trial_run = loans_ws.metadata.create_run(
        "trial", params={}, dataset="loans@1", parent_id=tune_run.id
    )
    trial = study.ask()
    owner = {"pid": int(dead.stdout), "host": socket.gethostname()}
    trial.set_user_attr(OWNER_ATTR, {"run": trial_run.id, "tune_run": tune_run.id, **owner})
    study.set_user_attr(
        "mlscale_runs", [*study.user_attrs["mlscale_runs"], {"run": tune_run.id, **owner}]
    )

    resumed = tune(loans_ws, small_space, trials=4)
    assert resumed.recovered == 1 and resumed.ran == 2 and resumed.failed == 1
    assert study_of(loans_ws, first.study).trials[trial.number].state == TrialState.FAIL
    for run_id in (trial_run.id, tune_run.id):
        abandoned = loans_ws.metadata.get_run(run_id)
        assert abandoned.status == "failed" and abandoned.error == ABANDONED


def test_parallel_workers_share_one_study(loans_ws: Workspace, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(  # no fixed thread count: each worker gets cores // 2
        "inherit_defaults: false\nnum_boost_round: 30\nnum_leaves: {low: 4, high: 32}\n"
    )

    def owners() -> set[int]:
        trials = study_of(loans_ws, "parallel").trials
        return {t.user_attrs[OWNER_ATTR]["pid"] for t in trials if OWNER_ATTR in t.user_attrs}

    def wait_for_the_other_worker(p: TuneProgress) -> None:
        # This process is worker 0 and starts at once; the other one imports first. Small
        # trials would all be done before it starts: wait for its first trial.
        deadline = time.monotonic() + 60
        while p.stage == "trials" and len(owners()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    result = tune(
        loans_ws, space, trials=6, parallel=2, study="parallel", progress=wait_for_the_other_worker
    )
    assert result.complete + result.pruned == 6 and result.ran == 6
    trials = loans_ws.metadata.list_runs(100, kind="trial", parent_id=result.run.id)
    assert len(trials) == 6
    cores = len(os.sched_getaffinity(0))
    assert {t.env["threads"]["num_threads"] for t in trials} == {max(1, cores // 2)}
    assert os.getpid() in owners() and len(owners()) == 2  # this process and one worker process
    assert "num_threads" not in result.best_params  # a setting of the workers, not registered


def test_grid_and_random_samplers(loans_ws: Workspace, tmp_path: Path) -> None:
    space = tmp_path / "grid.yaml"
    space.write_text(
        "inherit_defaults: false\nnum_boost_round: 20\nnum_threads: 1\n"
        "num_leaves: {choices: [4, 16]}\nlearning_rate: {low: 0.05, high: 0.2, log: true}\n"
    )
    grid = tune(loans_ws, space, trials=10, sampler="grid", grid_points=2, pruner="none")
    assert grid.stopped == "grid exhausted" and grid.complete == 4
    points = {
        (t.params["num_leaves"], round(t.params["learning_rate"], 6))
        for t in study_of(loans_ws, grid.study).trials
    }
    assert points == {(4, 0.05), (4, 0.2), (16, 0.05), (16, 0.2)}

    rand = tune(loans_ws, space, trials=3, sampler="random", name="loans-random")
    assert rand.complete + rand.pruned == 3 and rand.model.ref == "loans-random@1"


def test_bad_requests_fail_before_any_work(loans_ws: Workspace, small_space: Path) -> None:
    with pytest.raises(UserError, match=r"unknown model 'lgbm'; available: .*lightgbm"):
        tune(loans_ws, small_space, model="lgbm")
    with pytest.raises(UserError, match="--trials must be a whole number >= 1, got 0"):
        tune(loans_ws, small_space, trials=0)
    with pytest.raises(UserError, match="metric 'rmse' does not apply to a binary task"):
        tune(loans_ws, small_space, metric="rmse")
    with pytest.raises(UserError, match="unknown pruner 'early'"):
        tune(loans_ws, small_space, pruner="early")
    with pytest.raises(UserError, match="--address names a Ray cluster"):
        tune(loans_ws, small_space, address="ray://head:10001")
    with pytest.raises(UserError, match="the search space is for model 'lightgbm', not 'xgboost'"):
        from mlscale.models.lightgbm import LightGBMModel
        from mlscale.tune import load_space

        tune(loans_ws, load_space(small_space, "lightgbm", LightGBMModel), model="xgboost")
    assert loans_ws.metadata.list_runs(10) == [] and loans_ws.models() == []


def test_a_study_name_reused_for_other_options_is_refused(
    loans_ws: Workspace, small_space: Path
) -> None:
    tune(loans_ws, small_space, trials=1, study="mine")
    with pytest.raises(UserError, match=r"study 'mine' was made by a different tuning \(metric"):
        tune(loans_ws, small_space, trials=2, study="mine", metric="log_loss")


def test_the_ray_backend_is_refused_until_it_exists() -> None:
    if importlib.util.find_spec("mlscale.compute.ray") is None:
        with pytest.raises(UserError, match="the ray backend is not available yet"):
            check_backend("ray", None)
    else:
        assert check_backend("ray", None) == "ray"


#: Per model, fixed values that keep a trial to milliseconds on 3,000 rows.
SMALL = {
    "lightgbm": {"num_boost_round": 12, "num_threads": 1},
    "xgboost": {"num_boost_round": 12, "nthread": 1},
    "random_forest": {"n_estimators": 10, "n_jobs": 1},
    "torch_mlp": {"epochs": 3, "num_threads": 1},
    "logistic": {},
}


@pytest.mark.parametrize("model", sorted(SMALL))
def test_every_adapter_can_be_tuned_through_the_contract(loans_ws: Workspace, model: str) -> None:
    from dataclasses import replace

    from mlscale.models.base import adapter_class
    from mlscale.tune.space import default_space

    cls = adapter_class(model)
    fixed = SMALL[model]
    space = default_space(model, cls)
    space = replace(
        space, dims={k: v for k, v in space.dims.items() if k not in fixed}, fixed=fixed
    )
    result = loans_ws.tune(
        "loans@1", target="default", exclude=["loan_id"], model=model, space=space, trials=2,
        sampler="random",
    )  # fmt: skip
    assert result.complete == 2 and result.model.ref == "loans@1"
    trials = study_of(loans_ws, result.study).trials
    if cls.iterations_param is not None:  # iterative models report for pruning
        assert all(t.intermediate_values for t in trials)
    else:
        assert not any(t.intermediate_values for t in trials)


def test_a_postgresql_workspace_keeps_its_studies_in_their_own_schema(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, loans_csv: Path, small_space: Path
) -> None:
    import sqlalchemy as sa

    monkeypatch.setenv("MLSCALE_DB_URL", pg_url)
    ws = Workspace.init(tmp_path / "pg")
    ws.ingest(loans_csv, name="loans")
    first = tune(ws, small_space, trials=2)
    assert study_storage(ws, first.study).kind == "rdb"
    resumed = tune(ws, small_space, trials=3)  # the same study, continued
    assert resumed.study == first.study and resumed.ran == 1
    engine = sa.create_engine(sa.make_url(pg_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            tables = set(
                conn.exec_driver_sql(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables"
                ).scalars()
            )
            mlscale_revision = conn.exec_driver_sql(
                "SELECT version_num FROM public.alembic_version"
            )
            assert mlscale_revision.scalar()  # mlscale's migrations table is its own
    finally:
        engine.dispose()
    assert {"optuna.studies", "optuna.trials", "optuna.alembic_version"} <= tables
    assert "public.studies" not in tables and "public.runs" in tables


def test_the_package_lists_its_public_names() -> None:
    import types

    import mlscale.tune

    public = {
        name
        for name in dir(mlscale.tune)
        if not name.startswith("_")
        and not isinstance(getattr(mlscale.tune, name), types.ModuleType)
    }
    assert public == set(mlscale.tune.__all__)


def test_a_timeout_stops_starting_trials_and_registers_the_best_so_far(
    loans_ws: Workspace, small_space: Path
) -> None:
    result = tune(loans_ws, small_space, trials=10_000, timeout=1.0, pruner="none")
    assert result.stopped == "timeout" and 1 <= result.complete < 10_000
    assert result.model.ref == "loans@1"
    with pytest.raises(MlscaleError, match=r"has completed .* give it a longer --timeout"):
        tune(loans_ws, small_space, trials=10_000, timeout=1e-9, study="instant")
