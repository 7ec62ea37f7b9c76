"""``train``: a dataset version in, an evaluated, registered model version out.

Every training is a run: its parameters, metrics, environment and artifacts (the holdout rows,
per-iteration curves) are recorded, and the model version points back at the run and the
dataset version it came from.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.data.profile import Profile, profile_table
from mlscale.errors import UserError
from mlscale.models.base import ADAPTERS, BaseModel, adapter_class
from mlscale.models.signature import Signature
from mlscale.refs import Ref, check_name
from mlscale.store.records import ModelVersion, Run
from mlscale.train.environment import capture_environment, peak_rss_mib
from mlscale.train.evaluation import evaluation_details
from mlscale.train.metrics import evaluate
from mlscale.train.prepare import Prepared, prepare
from mlscale.train.splits import SPLITS, Split, holdout_split, kfold_splits, time_split

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

REFERENCE_ROWS = 100_000
#: Holdout rows the per-iteration loss curve is tracked on. LightGBM scores every new tree on them
#: (at 20k rows that was ~6% of a 200-round fit, counted in instructions); 10k rows put the curve's
#: sampling error near 0.005 in log loss, well under the drop a curve shows.
CURVE_ROWS = 10_000

#: Told of training progress: (iteration, planned iterations or None, that iteration's metrics).
ProgressCallback = Callable[[int, int | None, dict[str, float]], None]


@dataclass(frozen=True)
class TrainResult:
    run: Run
    model: ModelVersion
    metrics: dict[str, float]
    rows_train: int
    rows_test: int
    rows_without_target: int


def train(
    ws: Workspace,
    dataset_ref: Ref,
    *,
    target: str,
    model: str | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    task: str | None = None,
    exclude: list[str] | None = None,
    split: str = "holdout",
    test_size: float = 0.2,
    folds: int = 5,
    time_column: str | None = None,
    seed: int = 42,
    init_from: str | None = None,
    out_of_core: bool = False,
    progress: ProgressCallback | None = None,
    backend: str = "local",
    address: str | None = None,
    workers: int = 2,
    prepared: Prepared | None = None,
) -> TrainResult:
    """Split, fit, evaluate, and register ``name`` (default: the dataset's name).

    ``split`` is ``holdout`` (random, stratified for classes), ``time`` (the latest rows by
    ``time_column`` are the holdout) or ``kfold`` (``folds`` cross-validated fits give the metrics,
    then the model is refit on every row). ``init_from`` (``name@version``) continues training
    that model on this data, with its features and classes. ``out_of_core`` streams the dataset
    instead of loading it (:mod:`mlscale.train.out_of_core`; random holdout only).
    ``backend="ray"`` fits lightgbm or xgboost data-parallel on ``workers`` Ray Train workers,
    on the cluster at ``address`` or on Ray started in this process (:mod:`mlscale.compute.ray`).
    ``prepared``: the rows as the caller has already read and encoded them for the same target,
    model, task and exclusions (tuning registers its best trial without reading them again).
    """
    compute = _Compute(backend, address, workers, ws.scratch_dir() if backend == "ray" else None)
    if out_of_core and backend != "local":
        raise UserError("out-of-core training runs locally; use --backend local")
    if out_of_core:
        if split != "holdout" or init_from:
            raise UserError("out-of-core training supports --split holdout, without --init-from")
        from mlscale.train.out_of_core import train_out_of_core

        return train_out_of_core(
            ws,
            dataset_ref,
            target=target,
            model=model or "lightgbm",
            name=name,
            params=params,
            task=task,
            exclude=exclude,
            test_size=test_size,
            seed=seed,
            progress=None
            if progress is None
            else lambda stage, done: progress(done, None, {}) if stage == "iterations" else None,
        )
    start = _init_model(ws, init_from)
    model = model or (start.flavor_name if start else "lightgbm")
    if model not in ADAPTERS:
        raise UserError(f"unknown model {model!r}; available: {', '.join(sorted(ADAPTERS))}")
    cls = adapter_class(model)
    params = cls.check_params(params or {}, name=model)
    _check_split(split, test_size, folds, time_column)
    compute.check(model)
    if start is not None and adapter_class(start.version.flavor) is not cls:
        raise UserError(
            f"cannot continue {start.version.ref} ({start.version.flavor}) as model {model!r}; "
            f"leave out --model or pass --model {start.version.flavor}"
        )

    if prepared is None or start is not None or prepared.dataset.ref != str(dataset_ref):
        prepared = prepare(
            ws,
            dataset_ref,
            target=target,
            model=model,
            task=task,
            exclude=exclude,
            signature=start.predictor.signature if start else None,
        )
    model_name = check_name(name or prepared.dataset.name, "model name")
    signature = prepared.signature

    def new_adapter() -> BaseModel:
        return cls(task=signature.task, categorical=signature.categorical_indices, params=params)

    run = ws.metadata.create_run(
        "train",
        params={
            "model": model,
            "target": target,
            "task": signature.task,
            "split": split,
            "test_size": test_size if split != "kfold" else None,
            "folds": folds if split == "kfold" else None,
            "time_column": time_column,
            "seed": seed,
            "init_from": start.version.ref if start else None,
            "hyperparameters": new_adapter().effective_params(),
            "features": signature.feature_names,
            "excluded": signature.excluded,
            "backend": backend,
            "workers": workers if backend == "ray" else None,
        },
        dataset=prepared.dataset.ref,
    )
    started = time.perf_counter()
    with failed_run_recorded(ws, run):
        fitted = _fit_and_evaluate(
            prepared, new_adapter, split, test_size, folds, time_column, seed, start, progress,
            compute,
        )  # fmt: skip
        fit_seconds = time.perf_counter() - started
        reference = profile_table(
            prepared.table.take(pa.array(fitted.train_rows)).select(signature.feature_names),
            signature.input_schema(),
        )
        holdout = None if fitted.holdout_rows is None else prepared.rows[fitted.holdout_rows]
        drift_reference = _drift_reference(prepared, fitted, seed)
        ws.metadata.log_run_artifact(run.id, "reference", ws.artifacts.put_bytes(drift_reference))
        return register(
            ws,
            run,
            name=model_name,
            adapter=fitted.adapter,
            signature=signature,
            metrics=fitted.metrics,
            reference=reference,
            holdout_rows=holdout,
            curves=fitted.curves,
            evaluation=fitted.evaluation,
            rows_train=len(fitted.train_rows),
            rows_without_target=prepared.rows_without_target,
            env={"fit_seconds": fit_seconds},
        )


@contextmanager
def failed_run_recorded(ws: Workspace, run: Run) -> Iterator[None]:
    """Mark ``run`` failed, with the error, if the block raises (Ctrl-C included)."""
    try:
        yield
    except BaseException as exc:
        ws.metadata.finish_run(
            run.id, status="failed", metrics={}, env=capture_environment(), error=repr(exc)
        )
        raise


def register(
    ws: Workspace,
    run: Run,
    *,
    name: str,
    adapter: BaseModel,
    signature: Signature,
    metrics: dict[str, float],
    reference: Profile,
    holdout_rows: np.ndarray | None,
    curves: dict[str, Any],
    evaluation: dict[str, Any],
    rows_train: int,
    rows_without_target: int,
    env: dict[str, Any],
) -> TrainResult:
    """Store the run's artifacts and the model, register the version and finish the run."""
    evaluation_sha = ws.artifacts.put_bytes(json.dumps(evaluation).encode())
    ws.metadata.log_run_artifact(run.id, "evaluation", evaluation_sha)
    if holdout_rows is not None:
        rows = ws.artifacts.put_bytes(_rows(holdout_rows))
        ws.metadata.log_run_artifact(run.id, "holdout", rows)
    if curves:
        curves_sha = ws.artifacts.put_bytes(json.dumps(curves).encode())
        ws.metadata.log_run_artifact(run.id, "curves", curves_sha)
    version = ws.metadata.add_model_version(
        name,
        flavor=adapter.flavor,
        artifact_sha=ws.artifacts.put_bytes(adapter.save()),
        signature=signature.to_dict(),
        metrics=metrics,
        profile_sha=ws.artifacts.put_bytes(reference.to_json()),
        run_id=run.id,
        dataset=run.dataset,
    )
    env = (
        capture_environment()
        | env
        | {
            "peak_rss_mib": peak_rss_mib(),
            "model_version": version.ref,
        }
    )
    run = ws.metadata.finish_run(run.id, status="finished", metrics=metrics, env=env)
    rows_test = 0 if holdout_rows is None else len(holdout_rows)
    return TrainResult(run, version, metrics, rows_train, rows_test, rows_without_target)


@dataclass
class _Start:
    """The model that continued training starts from."""

    version: ModelVersion
    predictor: Any  # mlscale.models.predictor.Predictor

    @property
    def flavor_name(self) -> str:
        return "logistic" if self.version.flavor == "linear" else self.version.flavor


@dataclass(frozen=True)
class _Compute:
    """Where fitting runs: ``local`` (this process) or ``ray`` (data-parallel, Ray Train)."""

    backend: str
    address: str | None
    workers: int
    scratch: Path | None  # Ray Train's checkpoint goes here: in the workspace, shared by nodes

    def check(self, model: str) -> None:
        """Refuse what cannot run; connect to Ray now, so a bad address fails before any work."""
        from mlscale.compute import check_backend

        check_backend(self.backend, self.address)
        if self.backend == "ray":
            from mlscale.compute.ray import check_distributed, connect

            check_distributed(model, self.workers)
            connect(self.address)

    def fit(self, adapter: BaseModel) -> Callable[..., BaseModel]:
        """``adapter.fit``, or the same call run data-parallel on Ray."""
        if self.backend == "local":
            return adapter.fit
        from mlscale.compute.ray import fit_distributed

        return partial(
            fit_distributed,
            adapter,
            workers=self.workers,
            address=self.address,
            storage=self.scratch,
        )


@dataclass
class _Fitted:
    adapter: BaseModel
    metrics: dict[str, float]
    train_rows: np.ndarray  # positions in ``Prepared`` of the rows the final model saw
    holdout_rows: np.ndarray | None  # positions in ``Prepared`` of the holdout (None: k-fold)
    curves: dict[str, Any]
    evaluation: dict[str, Any]  # holdout (or out-of-fold) details for the run's page
    outputs: np.ndarray  # the model's outputs on the holdout (or out of fold): unseen rows


def _init_model(ws: Workspace, ref: str | None) -> _Start | None:
    if ref is None:
        return None
    from mlscale.models.predictor import Predictor

    version = ws.metadata.get_model_version(Ref.parse(ref))
    predictor = Predictor.load(ws, version)
    if not type(predictor.model).warm_start:
        raise UserError(
            f"{version.ref} is a {version.flavor} model, which cannot continue training"
        )
    return _Start(version, predictor)


def _check_split(split: str, test_size: float, folds: int, time_column: str | None) -> None:
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if split != "kfold" and not 0.0 < test_size < 1.0:
        raise UserError(f"test size must be between 0 and 1 (exclusive), got {test_size}")
    if split == "time" and not time_column:
        raise UserError("a time split needs --time-column, the timestamp column to split on")
    if split != "time" and time_column:
        raise UserError(f"--time-column is only used with --split time, not --split {split}")
    if split == "kfold" and folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}")


def _fit_and_evaluate(
    prepared: Prepared,
    new_adapter: Callable[[], BaseModel],
    split: str,
    test_size: float,
    folds: int,
    time_column: str | None,
    seed: int,
    start: _Start | None,
    progress: ProgressCallback | None,
    compute: _Compute,
) -> _Fitted:
    X, y, task = prepared.X, prepared.y, prepared.task
    init = start.predictor.model if start else None
    classes = prepared.signature.classes
    if split == "kfold":
        fold_metrics, fold_curves = [], []
        out_of_fold: np.ndarray | None = None
        for fold in kfold_splits(y, folds=folds, seed=seed, stratify=task != "regression"):
            adapter = _fit(new_adapter(), prepared, fold, seed, init, progress, compute)
            predicted = adapter.predict(X[fold.test])
            if out_of_fold is None:
                out_of_fold = np.zeros((len(y), *predicted.shape[1:]))
            out_of_fold[fold.test] = predicted
            fold_metrics.append(evaluate(task, y[fold.test], predicted))
            fold_curves.append(adapter.curves_)
        fit_all = compute.fit(new_adapter())
        final = fit_all(X, y, num_classes=prepared.num_classes, seed=seed, init_from=init)
        metrics = _mean_and_std(fold_metrics)
        assert out_of_fold is not None
        evaluation = evaluation_details(task, y, out_of_fold, classes) | {"rows_kind": "oof"}
        curves = {"folds": fold_curves}
        return _Fitted(final, metrics, np.arange(len(y)), None, curves, evaluation, out_of_fold)
    if split == "time":
        assert time_column is not None
        chosen = time_split(prepared.times(time_column), test_size=test_size)
    else:
        chosen = holdout_split(y, test_size=test_size, seed=seed, stratify=task != "regression")
    adapter = _fit(new_adapter(), prepared, chosen, seed, init, progress, compute)
    predicted = adapter.predict(X[chosen.test])
    metrics = evaluate(task, y[chosen.test], predicted)
    evaluation = evaluation_details(task, y[chosen.test], predicted, classes)
    return _Fitted(
        adapter, metrics, chosen.train, chosen.test, adapter.curves_, evaluation, predicted
    )


def _fit(
    adapter: BaseModel,
    prepared: Prepared,
    split: Split,
    seed: int,
    init: BaseModel | None,
    progress: ProgressCallback | None,
    compute: _Compute,
) -> BaseModel:
    planned = None
    if adapter.iterations_param is not None:
        planned = int(adapter.effective_params()[adapter.iterations_param])

    def report(step: int, metrics: dict[str, float]) -> bool:
        if progress is not None:
            progress(step, planned, metrics)
        return False

    X, y = prepared.X, prepared.y
    # The per-iteration curve is tracked on at most CURVE_ROWS holdout rows; the metrics are
    # computed on the whole holdout afterwards.
    curve_rows = split.test
    if len(curve_rows) > CURVE_ROWS:
        pick = np.random.default_rng(seed).choice(len(curve_rows), CURVE_ROWS, replace=False)
        curve_rows = curve_rows[np.sort(pick)]
    return compute.fit(adapter)(
        X[split.train],
        y[split.train],
        num_classes=prepared.num_classes,
        seed=seed,
        valid=(X[curve_rows], y[curve_rows]),
        on_iteration=report,
        init_from=init,
    )


def _drift_reference(prepared: Prepared, fitted: _Fitted, seed: int) -> bytes:
    """The monitor's reference: training rows (a sample of at most ``REFERENCE_ROWS``) on fixed
    bins, and the model's outputs on rows it did not learn from (the holdout, or out of fold).

    Outputs on the training rows would be more confident than on any new data, so ordinary
    traffic would read as prediction drift.
    """
    from mlscale.monitor.reference import build_reference

    rows = fitted.train_rows
    rng = np.random.default_rng(seed)
    if len(rows) > REFERENCE_ROWS:
        rows = np.sort(rng.choice(rows, REFERENCE_ROWS, replace=False))
    outputs = fitted.outputs
    if len(outputs) > REFERENCE_ROWS:
        outputs = outputs[np.sort(rng.choice(len(outputs), REFERENCE_ROWS, replace=False))]
    signature = prepared.signature
    table = prepared.table.take(pa.array(rows)).select(signature.feature_names)
    return build_reference(table, signature, outputs, seed=seed).to_json()


def _mean_and_std(fold_metrics: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the folds, and its spread as ``<metric>_std``."""
    out: dict[str, float] = {}
    for key in fold_metrics[0]:
        values = [m[key] for m in fold_metrics if key in m]
        out[key] = float(np.mean(values))
        out[f"{key}_std"] = float(np.std(values))
    return out


def _rows(rows: np.ndarray) -> bytes:
    """The holdout row positions as a one-column Parquet file."""
    sink = io.BytesIO()
    pq.write_table(pa.table({"row": pa.array(rows, pa.int64())}), sink, compression="zstd")
    return sink.getvalue()
