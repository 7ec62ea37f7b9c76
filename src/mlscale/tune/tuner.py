"""``tune``: search a model's hyperparameters on a dataset version, register the best.

The rows are split as training splits them (the same holdout for the same seed), and trials are
scored on a validation share carved from the training side, so the holdout stays unseen until the
best trial's hyperparameters are trained and registered through :func:`mlscale.train.trainer.train`.

The study lives beside the workspace's metadata (:mod:`mlscale.tune.storage`) under a name
derived from what defines it (dataset version, target, model, metric, space, sampler, pruner,
seed). The same command again continues it up to ``trials`` in total; a study that is done and
registered is not trained again. Each invocation is a run of kind ``tune``; each trial a run of
kind ``trial`` whose parent is that run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlscale.compute import check_backend, run_parallel
from mlscale.compute.local import Workers
from mlscale.errors import MlscaleError, UserError
from mlscale.models.base import BaseModel, adapter_class
from mlscale.refs import Ref, check_name
from mlscale.train.environment import capture_environment
from mlscale.train.prepare import Prepared, prepare
from mlscale.train.splits import holdout_split
from mlscale.tune.objective import DIRECTIONS, TASK_METRICS, Objective, TrialData, threads_param
from mlscale.tune.pruning import DEFAULT_PRUNER, check_pruner, max_iterations, report_interval
from mlscale.tune.recovery import recover, register_invocation
from mlscale.tune.samplers import check_sampler
from mlscale.tune.space import Space, default_space, load_space
from mlscale.tune.storage import StudyStorage, study_storage
from mlscale.tune.worker import WorkerTask, counted_trials, run_trials, worker_modules

if TYPE_CHECKING:
    import optuna

    from mlscale.store.records import ModelVersion, Run
    from mlscale.workspace import Workspace

IDENTITY_ATTR = "mlscale_identity"
REGISTERED_ATTR = "mlscale_registered"
INTERRUPTED = "interrupted (Ctrl-C)"


@dataclass(frozen=True)
class TuneProgress:
    """Where a study stands: trials done (finished or pruned) of ``total``, the best so far."""

    done: int
    total: int
    pruned: int
    failed: int
    running: int
    best: float | None
    stage: str = "trials"  # "trials", then "training" the best


ProgressCallback = Callable[[TuneProgress], None]


@dataclass(frozen=True)
class TuneResult:
    study: str
    storage: str
    run: Run  # the tuning run that registered ``model``
    model: ModelVersion
    metric: str
    best_trial: int
    best_value: float  # on the validation rows
    best_params: dict[str, Any]
    complete: int
    pruned: int
    failed: int
    ran: int  # trials run by this call
    recovered: int  # abandoned trials found and marked failed
    stopped: str  # "done", "timeout" or "grid exhausted"


class TuneInterrupted(KeyboardInterrupt):
    """Ctrl-C during tuning: the study is saved; the same call resumes it."""

    def __init__(self, study: str, done: int, total: int) -> None:
        super().__init__(f"tuning interrupted after {done} of {total} trials (study {study!r})")
        self.study, self.done, self.total = study, done, total


def tune(
    ws: Workspace,
    dataset_ref: Ref,
    *,
    target: str,
    model: str = "lightgbm",
    trials: int = 20,
    parallel: int = 1,
    timeout: float | None = None,
    sampler: str = "tpe",
    pruner: str = DEFAULT_PRUNER,
    space: str | os.PathLike[str] | Space | None = None,
    study: str | None = None,
    metric: str | None = None,
    seed: int = 42,
    name: str | None = None,
    backend: str = "local",
    address: str | None = None,
    task: str | None = None,
    exclude: list[str] | None = None,
    test_size: float = 0.2,
    valid_size: float = 0.2,
    grid_points: int = 3,
    progress: ProgressCallback | None = None,
) -> TuneResult:
    """Run ``trials`` trials (in total, across interruptions) and register the best as a version.

    ``parallel`` workers run trials at once, each fit with ``cores // parallel`` threads;
    ``timeout`` (seconds) stops starting new trials. ``space`` is a YAML file of overrides (or a
    :class:`Space`); ``study`` names the study (default: derived from the options).
    """
    cls = adapter_class(model)
    _check_options(trials, parallel, timeout, metric, test_size, valid_size)
    check_sampler(sampler, chosen := _space(space, model, cls), grid_points)
    check_pruner(pruner)
    check_backend(backend, address)
    if name is not None:
        check_name(name, "model name")
    if study is not None and not study.strip():
        raise UserError("--study must not be empty")

    # Local worker processes start now, so that their start-up (imports) overlaps reading and
    # encoding the rows; this process runs trials as worker 0 (see ``_run``).
    with _local_workers(backend, min(parallel, trials) - 1, cls) as pool:
        prepared = prepare(ws, dataset_ref, target=target, model=model, task=task, exclude=exclude)
        metric = _check_metric(metric, prepared.task)
        data = _split(prepared, test_size=test_size, valid_size=valid_size, seed=seed)
        identity = {
            "dataset": prepared.dataset.ref,
            "target": target,
            "task": prepared.task,
            "model": model,
            "metric": metric,
            "space": chosen.to_dict(),
            "sampler": sampler,
            "grid_points": grid_points if sampler == "grid" else None,
            "pruner": pruner,
            "seed": seed,
            "test_size": test_size,
            "valid_size": valid_size,
            "features": prepared.signature.feature_names,
        }
        study_name = study or _study_name(identity)
        storage = study_storage(ws, study_name)

        with _optuna_quiet():
            opt_study = _open_study(storage, study_name, identity, DIRECTIONS[metric])
            recovered = recover(ws, opt_study)
            done = _finished(opt_study)
            registered = opt_study.user_attrs.get(REGISTERED_ATTR)
            best = _best(opt_study)
            if done >= trials and registered and best and registered["trial"] == best.number:
                return _already_done(ws, opt_study, storage, metric, registered, recovered)

            iterations = max_iterations(chosen, cls)
            workers = max(1, min(parallel, trials - counted_trials(opt_study)))
            settings = {
                "trials": trials,
                "parallel": parallel,
                "backend": backend,
                "timeout": timeout,
            }
            run = ws.metadata.create_run(
                "tune",
                params={"study": study_name, "storage": storage.describe()}
                | {k: v for k, v in identity.items() if k not in ("dataset", "features")}
                | settings
                | {
                    "direction": DIRECTIONS[metric],
                    "rows_fit": len(data.y_fit),
                    "rows_valid": len(data.y_valid),
                    "resumed_at": done,
                },
                dataset=prepared.dataset.ref,
            )
            register_invocation(opt_study, run.id)
            objective = Objective(
                data=data,
                model=model,
                space=chosen,
                metric=metric,
                seed=seed,
                study=study_name,
                study_run=run.id,
                dataset=prepared.dataset.ref,
                interval=report_interval(iterations),
                threads=_threads(cls, chosen, workers, backend),
            )
            task_ = WorkerTask(
                config=ws.config,
                storage=storage,
                study=study_name,
                objective=objective,
                sampler=sampler,
                pruner=pruner,
                grid_points=grid_points,
                n_trials=trials,
                deadline=None if timeout is None else time.time() + timeout,
                iterations=iterations,
            )
            report = _reporter(opt_study, trials, progress)
            try:
                ran = _run(ws, opt_study, task_, workers, backend, address, report, pool)
                report()
                return _register(
                    ws, opt_study, storage, run, prepared, identity, chosen,
                    name=name, exclude=exclude, ran=ran, recovered=recovered, trials=trials,
                    progress=progress,
                )  # fmt: skip
            except KeyboardInterrupt:
                _finish(ws, run, "failed", opt_study, metric, error=INTERRUPTED)
                recover(ws, opt_study, reason=INTERRUPTED)
                raise TuneInterrupted(study_name, _finished(opt_study), trials) from None
            except BaseException as exc:
                _finish(ws, run, "failed", opt_study, metric, error=repr(exc))
                recover(ws, opt_study, reason=f"stopped by an error of its tuning run: {exc!r}")
                raise


def _run(
    ws: Workspace,
    study: optuna.Study,
    task: WorkerTask,
    workers: int,
    backend: str,
    address: str | None,
    report: Callable[[], None],
    pool: Workers,
) -> int:
    if task.n_trials - counted_trials(study) <= 0:
        return 0
    if backend != "local":
        return sum(run_parallel(task, workers, backend=backend, address=address, poll=report))
    # This process is worker 0: started, its imports done, its rows at hand. The others run in
    # processes of their own; an error in one of them is raised after this process's next trial.
    try:
        pool.start(task, range(1, workers))

        def after_trial(_study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
            report()
            pool.check()

        ran = run_trials(task, ws, 0, on_trial=after_trial)
        return ran + sum(pool.wait(poll=report))
    except BaseException:
        pool.close()  # the others stop and record where they stopped before the study is read
        raise


def _local_workers(backend: str, n_workers: int, cls: type[BaseModel]) -> Workers:
    """``n_workers`` local worker processes (none for another backend) importing what trials of
    ``cls`` need while the rows are prepared."""
    return Workers(n_workers if backend == "local" else 0, preload=worker_modules(cls))


def _register(
    ws: Workspace,
    study: optuna.Study,
    storage: StudyStorage,
    run: Run,
    prepared: Prepared,
    identity: dict[str, Any],
    space: Space,
    *,
    name: str | None,
    exclude: list[str] | None,
    ran: int,
    recovered: int,
    trials: int,
    progress: ProgressCallback | None,
) -> TuneResult:
    """Train the best trial's hyperparameters on the training rows and register the version."""
    metric = identity["metric"]
    best = _best(study)
    if best is None:
        counts = _counts(study)
        hint = "run more trials (the same command continues the study) or use --pruner none"
        if _finished(study) < trials:
            hint = "give it a longer --timeout; the same command continues the study"
        raise MlscaleError(
            f"no trial of study {study.study_name!r} has completed ({counts['pruned']} pruned, "
            f"{counts['failed']} failed): nothing to register; {hint}"
        )
    if progress is not None:
        counts = _counts(study)
        progress(
            TuneProgress(
                counts["complete"] + counts["pruned"], trials, counts["pruned"], counts["failed"],
                0, best.value, stage="training",
            )
        )  # fmt: skip
    params = dict(best.params) | space.fixed
    trained = ws.train(
        prepared.dataset.ref,
        target=identity["target"],
        model=identity["model"],
        name=name,
        params=params,
        task=prepared.task,
        exclude=exclude,
        test_size=identity["test_size"],
        seed=identity["seed"],
        prepared=prepared,  # read and encoded once, for the trials and for this
    )
    study.set_user_attr(
        REGISTERED_ATTR,
        {
            "trial": best.number,
            "model": trained.model.ref,
            "train_run": trained.run.id,
            "tune_run": run.id,
        },
    )
    stopped = "done"
    if _finished(study) < trials:  # the workers stopped early: a grid ran out, or time did
        stopped = "grid exhausted" if identity["sampler"] == "grid" else "timeout"
    finished_run = _finish(
        ws,
        run,
        "finished",
        study,
        metric,
        env={
            "model_version": trained.model.ref,
            "train_run": trained.run.id,
            "best_trial": best.number,
            "best_params": params,
            "stopped": stopped,
            "recovered_trials": recovered,
        },
        holdout=trained.metrics,
    )
    counts = _counts(study)
    return TuneResult(
        study=study.study_name,
        storage=storage.describe(),
        run=finished_run,
        model=trained.model,
        metric=metric,
        best_trial=best.number,
        best_value=float(best.value),  # type: ignore[arg-type]
        best_params=params,
        complete=counts["complete"],
        pruned=counts["pruned"],
        failed=counts["failed"],
        ran=ran,
        recovered=recovered,
        stopped=stopped,
    )


def _already_done(
    ws: Workspace,
    study: optuna.Study,
    storage: StudyStorage,
    metric: str,
    registered: dict[str, Any],
    recovered: int,
) -> TuneResult:
    best = _best(study)
    assert best is not None
    counts = _counts(study)
    return TuneResult(
        study=study.study_name,
        storage=storage.describe(),
        run=ws.metadata.get_run(registered["tune_run"]),
        model=ws.model(registered["model"]),
        metric=metric,
        best_trial=best.number,
        best_value=float(best.value),  # type: ignore[arg-type]
        best_params=dict(best.params),
        complete=counts["complete"],
        pruned=counts["pruned"],
        failed=counts["failed"],
        ran=0,
        recovered=recovered,
        stopped="done",
    )


def _finish(
    ws: Workspace,
    run: Run,
    status: str,
    study: optuna.Study,
    metric: str,
    *,
    env: dict[str, Any] | None = None,
    holdout: dict[str, float] | None = None,
    error: str | None = None,
) -> Run:
    counts = _counts(study)
    best = _best(study)
    metrics: dict[str, float] = {f"trials_{k}": float(v) for k, v in counts.items()}
    if best is not None:
        metrics[f"valid_{metric}"] = float(best.value)  # type: ignore[arg-type]
    for key, value in (holdout or {}).items():
        metrics[f"holdout_{key}"] = value
    return ws.metadata.finish_run(
        run.id,
        status=status,
        metrics=metrics,
        env=capture_environment() | (env or {}),
        error=error,
    )


# -- checks and set-up ------------------------------------------------------------------------
def _check_options(
    trials: int,
    parallel: int,
    timeout: float | None,
    metric: str | None,
    test_size: float,
    valid_size: float,
) -> None:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise UserError(f"--trials must be a whole number >= 1, got {trials!r}")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise UserError(f"--parallel must be a whole number >= 1, got {parallel!r}")
    if timeout is not None and not timeout > 0:
        raise UserError(f"--timeout must be a number of seconds > 0, got {timeout!r}")
    if metric is not None and metric not in DIRECTIONS:
        raise UserError(f"unknown metric {metric!r}; expected one of {', '.join(DIRECTIONS)}")
    for option, value in (("test size", test_size), ("validation size", valid_size)):
        if not 0.0 < value < 1.0:
            raise UserError(f"{option} must be between 0 and 1 (exclusive), got {value}")


def _space(space: str | os.PathLike[str] | Space | None, model: str, cls: Any) -> Space:
    if space is None:
        return default_space(model, cls)
    if isinstance(space, Space):
        if space.model != model:
            raise UserError(f"the search space is for model {space.model!r}, not {model!r}")
        return space
    return load_space(Path(space), model, cls)


def _check_metric(metric: str | None, task: str) -> str:
    allowed = TASK_METRICS[task]
    if metric is None:
        return allowed[0]
    if metric not in allowed:
        raise UserError(
            f"metric {metric!r} does not apply to a {task} task; expected one of "
            f"{', '.join(allowed)}"
        )
    return metric


def _split(prepared: Prepared, *, test_size: float, valid_size: float, seed: int) -> TrialData:
    """The training side of the trainer's holdout, split again into fit and validation rows."""
    y, task = prepared.y, prepared.task
    stratify = task != "regression"
    outer = holdout_split(y, test_size=test_size, seed=seed, stratify=stratify)
    inner = holdout_split(y[outer.train], test_size=valid_size, seed=seed, stratify=stratify)
    fit_rows, valid_rows = outer.train[inner.train], outer.train[inner.test]
    return TrialData(
        X_fit=prepared.X[fit_rows],
        y_fit=y[fit_rows],
        X_valid=prepared.X[valid_rows],
        y_valid=y[valid_rows],
        task=task,
        categorical=prepared.signature.categorical_indices,
        num_classes=prepared.num_classes,
    )


def _study_name(identity: dict[str, Any]) -> str:
    """``<model>-<dataset@version>-<target>-<hash of the rest>``."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    return (
        f"{identity['model']}-{identity['dataset']}-{identity['target']}-{digest.hexdigest()[:8]}"
    )


def _open_study(
    storage: StudyStorage, name: str, identity: dict[str, Any], direction: str
) -> optuna.Study:
    import optuna

    study = optuna.create_study(
        study_name=name, storage=storage.open(create=True), direction=direction, load_if_exists=True
    )
    stored = study.user_attrs.get(IDENTITY_ATTR)
    if stored is None:
        study.set_user_attr(IDENTITY_ATTR, json.loads(json.dumps(identity, default=str)))
        return study
    current = json.loads(json.dumps(identity, default=str))
    differs = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
    if differs:
        detail = "; ".join(
            f"{k}: {_short(stored.get(k))} in the study, {_short(current.get(k))} now"
            for k in differs
        )
        raise UserError(
            f"study {name!r} was made by a different tuning ({detail}); repeat its options to "
            "resume it, or pass another --study name"
        )
    return study


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _threads(cls: Any, space: Space, workers: int, backend: str) -> dict[str, int]:
    """Threads per fit when several trials share the machine: its cores split between them."""
    name = threads_param(cls)
    if name is None or name in space.fixed or name in space.dims:
        return {}
    if backend == "local" and workers == 1:
        return {}  # the library's default: every core
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {name: max(1, (cores or 1) // workers)}


# -- reading the study ------------------------------------------------------------------------
def _counts(study: optuna.Study) -> dict[str, int]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    count = {state: 0 for state in TrialState}
    for t in trials:
        count[t.state] += 1
    return {
        "complete": count[TrialState.COMPLETE],
        "pruned": count[TrialState.PRUNED],
        "failed": count[TrialState.FAIL],
        "running": count[TrialState.RUNNING],
    }


def _finished(study: optuna.Study) -> int:
    counts = _counts(study)
    return counts["complete"] + counts["pruned"]


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    pick = max if study.direction.name == "MAXIMIZE" else min
    return pick(complete, key=lambda t: t.value)  # type: ignore[arg-type,return-value]


def _reporter(
    study: optuna.Study, total: int, progress: ProgressCallback | None
) -> Callable[[], None]:
    def report() -> None:
        if progress is None:
            return
        counts = _counts(study)
        best = _best(study)
        progress(
            TuneProgress(
                done=counts["complete"] + counts["pruned"],
                total=total,
                pruned=counts["pruned"],
                failed=counts["failed"],
                running=counts["running"],
                best=None if best is None else float(best.value),  # type: ignore[arg-type]
            )
        )

    return report


class _optuna_quiet:
    """Optuna logs every trial at INFO; mlscale shows its own progress and records each trial."""

    def __enter__(self) -> None:
        import optuna

        self.level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        import optuna

        optuna.logging.set_verbosity(self.level)
