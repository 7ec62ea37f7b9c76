"""Training on datasets larger than memory: stream the Parquet parts, never load them whole.

One pass over the dataset version encodes each batch with the model's encoder, splits it into
training and holdout rows by a hash of the row position (so the split does not depend on batch
sizes), profiles the training rows for the drift reference, and spills the encoded training rows
to float32 chunk files in the workspace's scratch folder. Then each library trains from the
chunks in its own out-of-core way:

- LightGBM: a ``lightgbm.Sequence`` per chunk: bins are built from a row sample, then rows are
  pushed into the binned dataset a batch at a time;
- XGBoost: an ``xgboost.DataIter`` over the chunks feeding an ``ExtMemQuantileDMatrix``, whose
  quantised pages are cached on disk;
- linear models: preprocessing fitted on a row sample, then ``partial_fit`` of an SGD model over
  the chunks for a few epochs.

Memory holds one chunk, the row sample, the binned data (LightGBM) and up to
``MAX_HOLDOUT_ROWS`` holdout rows for evaluation; holdout rows beyond that are left out of
training but not evaluated (the run says how many).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.datasets import iter_batches, read_profile, read_table
from mlscale.data.profile import ProfileBuilder
from mlscale.data.schema import Schema
from mlscale.errors import SchemaError, UserError
from mlscale.models.base import BaseModel, adapter_class
from mlscale.models.signature import FeatureEncoder, Signature
from mlscale.refs import Ref, check_name
from mlscale.train.evaluation import evaluation_details
from mlscale.train.metrics import evaluate
from mlscale.train.task import choose_features, infer_task
from mlscale.train.trainer import TrainResult, failed_run_recorded, register

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

MODELS = ("lightgbm", "xgboost", "logistic", "linear")
CHUNK_ROWS = 262_144
MAX_HOLDOUT_ROWS = 1_000_000
SAMPLE_ROWS = 200_000  # rows kept for LightGBM's bins and the linear models' preprocessing
LINEAR_EPOCHS = 3


def holdout_mask(positions: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """True for the rows (by position in the dataset) that belong to the holdout.

    A SplitMix64 hash of (position, seed): the same rows whatever the batch sizes.

    >>> mask = holdout_mask(np.arange(100_000), 0.2, seed=1)
    >>> round(float(mask.mean()), 2), bool((mask == holdout_mask(np.arange(100_000), 0.2, 1)).all())
    (0.2, True)
    """
    with np.errstate(over="ignore"):
        z = positions.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < test_size


@dataclass
class Spill:
    """Encoded training rows in chunk files, and what stayed in memory."""

    folder: Path
    chunks: list[tuple[Path, int]] = field(default_factory=list)  # (file, rows)
    labels: list[np.ndarray] = field(default_factory=list)
    holdout_X: list[np.ndarray] = field(default_factory=list)
    holdout_y: list[np.ndarray] = field(default_factory=list)
    holdout_rows: list[np.ndarray] = field(default_factory=list)
    holdout_skipped: int = 0
    sample: list[np.ndarray] = field(default_factory=list)
    rows_train: int = 0
    rows_without_target: int = 0

    def load(self, index: int) -> np.ndarray:
        return np.load(self.chunks[index][0])

    @property
    def y(self) -> np.ndarray:
        return np.concatenate(self.labels) if self.labels else np.empty(0)

    def holdout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.holdout_X:
            raise UserError("the holdout is empty; use a larger dataset or --test-size")
        return (
            np.concatenate(self.holdout_X),
            np.concatenate(self.holdout_y),
            np.concatenate(self.holdout_rows),
        )


def train_out_of_core(
    ws: Workspace,
    dataset_ref: Ref,
    *,
    target: str,
    model: str = "lightgbm",
    name: str | None = None,
    params: dict[str, Any] | None = None,
    task: str | None = None,
    exclude: list[str] | None = None,
    test_size: float = 0.2,
    seed: int = 42,
    progress: Callable[[str, int], None] | None = None,
) -> TrainResult:
    """Like :func:`mlscale.train.trainer.train` with a random holdout, in bounded memory.

    ``progress(stage, done)`` is told of rows spilled, then of training iterations.
    """
    if model not in MODELS:
        raise UserError(
            f"model {model!r} cannot train out of core; choose one of {', '.join(MODELS)}"
        )
    if not 0.0 < test_size < 1.0:
        raise UserError(f"test size must be between 0 and 1 (exclusive), got {test_size}")
    cls = adapter_class(model)
    params = cls.check_params(params or {}, name=model)
    dataset = ws.metadata.get_dataset_version(dataset_ref)
    model_name = check_name(name or dataset.name, "model name")
    signature = _signature(ws, dataset, target, model, task, exclude or [])
    adapter = cls(task=signature.task, categorical=signature.categorical_indices, params=params)
    run = ws.metadata.create_run(
        "train",
        params={
            "model": model,
            "target": target,
            "task": signature.task,
            "split": "holdout",
            "test_size": test_size,
            "seed": seed,
            "out_of_core": True,
            "hyperparameters": adapter.effective_params(),
            "features": signature.feature_names,
            "excluded": signature.excluded,
        },
        dataset=dataset.ref,
    )
    report = progress or (lambda stage, done: None)
    started = time.perf_counter()
    with failed_run_recorded(ws, run), _scratch(ws) as folder:
        reference = ProfileBuilder(signature.input_schema())
        spill = _spill(ws, dataset, signature, test_size, seed, folder, reference, report)
        if spill.rows_train == 0:
            raise UserError(f"{dataset.ref} has no labelled training rows for target {target!r}")
        Xh, yh, rows_h = spill.holdout()
        num_classes = len(signature.classes)
        fit = {"lightgbm": _fit_lightgbm, "xgboost": _fit_xgboost}.get(model, _fit_linear)
        fit(adapter, spill, (Xh, yh), num_classes, seed, lambda step: report("iterations", step))
        predicted = adapter.predict(Xh.astype(np.float64))
        metrics = evaluate(signature.task, yh, predicted)
        return register(
            ws,
            run,
            name=model_name,
            adapter=adapter,
            signature=signature,
            metrics=metrics,
            reference=reference.finish(),
            holdout_rows=rows_h,
            curves=adapter.curves_,
            evaluation=evaluation_details(signature.task, yh, predicted, signature.classes),
            rows_train=spill.rows_train,
            rows_without_target=spill.rows_without_target,
            env={
                "fit_seconds": time.perf_counter() - started,
                "holdout_rows_evaluated": len(yh),
                "holdout_rows_not_evaluated": spill.holdout_skipped,
            },
        )


def _signature(
    ws: Workspace, dataset: Any, target: str, model: str, task: str | None, exclude: list[str]
) -> Signature:
    schema = Schema.from_dict(dataset.schema)
    if target not in schema.names:
        raise SchemaError(
            f"unknown target column {target!r} in {dataset.ref}; columns are: "
            f"{', '.join(schema.names)}"
        )
    # One column fits in memory even when the table does not.
    y = read_table(ws, dataset, columns=[target]).column(target)
    task = infer_task(y, target, schema.column(target).type, task)
    if model == "logistic" and task == "regression":
        raise UserError(f"model 'logistic' is a classifier but target {target!r} is a regression")
    features, excluded = choose_features(
        schema, read_profile(ws, dataset.profile_sha), target, exclude
    )
    classes = [] if task == "regression" else sorted(pc.unique(pc.drop_null(y)).to_pylist())
    return Signature(task, target, features, classes, excluded)


@contextmanager
def _scratch(ws: Workspace) -> Iterator[Path]:
    """A scratch folder in the workspace, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix="ooc-", dir=ws.scratch_dir()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _spill(
    ws: Workspace,
    dataset: Any,
    signature: Signature,
    test_size: float,
    seed: int,
    folder: Path,
    reference: ProfileBuilder,
    report: Callable[[str, int], None],
) -> Spill:
    encoder = FeatureEncoder(signature)
    spill = Spill(folder)
    target = signature.target
    classes = pa.array(signature.classes) if signature.classes else None
    sample_rate = min(1.0, SAMPLE_ROWS / max(1, dataset.num_rows * (1 - test_size)))
    rng = np.random.default_rng(seed)
    pending_X: list[np.ndarray] = []
    pending_y: list[np.ndarray] = []
    pending = 0
    holdout_kept = 0
    position = 0

    def flush() -> None:
        nonlocal pending
        if not pending:
            return
        path = folder / f"chunk-{len(spill.chunks):05d}.npy"
        np.save(path, np.concatenate(pending_X))
        spill.chunks.append((path, pending))
        spill.labels.append(np.concatenate(pending_y))
        pending_X.clear()
        pending_y.clear()
        pending = 0

    columns = [*signature.feature_names, target]
    for batch in iter_batches(ws, dataset, columns=columns):
        n = batch.num_rows
        positions = np.arange(position, position + n, dtype=np.int64)
        position += n
        labelled = np.asarray(pc.is_valid(batch.column(target)), dtype=bool)
        spill.rows_without_target += int(n - labelled.sum())
        in_holdout = holdout_mask(positions, test_size, seed) & labelled
        in_train = labelled & ~in_holdout
        X = encoder.encode_table(batch).astype(np.float32)
        values = batch.column(target)
        if classes is not None:
            y = np.asarray(pc.fill_null(pc.index_in(values, value_set=classes), -1))
        else:
            y = np.asarray(pc.fill_null(pc.cast(values, pa.float64()), np.nan))
        y = y.astype(np.float32)
        train_X = X[in_train]
        pending_X.append(train_X)
        pending_y.append(y[in_train])
        pending += len(train_X)
        spill.rows_train += len(train_X)
        reference.update(batch.filter(pa.array(in_train)).select(signature.feature_names))
        take = rng.random(len(train_X)) < sample_rate
        if take.any():
            spill.sample.append(train_X[take])
        held = np.flatnonzero(in_holdout)
        room = MAX_HOLDOUT_ROWS - holdout_kept
        spill.holdout_skipped += max(0, len(held) - room)
        held = held[:room]
        if len(held):
            spill.holdout_X.append(X[held])
            spill.holdout_y.append(y[held])
            spill.holdout_rows.append(positions[held])
            holdout_kept += len(held)
        if pending >= CHUNK_ROWS:
            flush()
        report("rows", position)
    flush()
    if classes is not None:  # class codes, as the metrics expect
        spill.holdout_y = [h.astype(np.int64) for h in spill.holdout_y]
    return spill


def _fit_lightgbm(
    adapter: BaseModel,
    spill: Spill,
    valid: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    seed: int,
    report: Callable[[int], None],
) -> None:
    import lightgbm as lgb

    cache: dict[int, np.ndarray] = {}

    class Chunk(lgb.Sequence):
        batch_size = 65_536

        def __init__(self, index: int, rows: int) -> None:
            self.index, self.rows = index, rows

        def __len__(self) -> int:
            return self.rows

        def __getitem__(self, idx: Any) -> np.ndarray:
            if self.index not in cache:  # one chunk in memory at a time
                cache.clear()
                cache[self.index] = spill.load(self.index)
            rows = cache[self.index][idx]
            # LightGBM wants doubles for its bin sample (single rows); float32 batches are fine.
            return rows.astype(np.float64) if rows.ndim == 1 else rows

    # LightGBM samples ``bin_construct_sample_cnt`` rows (200,000 by default) through random
    # access for its bins, then pushes every chunk in batches of ``batch_size`` rows.
    chunks = [Chunk(i, rows) for i, (_, rows) in enumerate(spill.chunks)]
    data = lgb.Dataset(
        chunks, label=spill.y, categorical_feature=adapter.categorical, free_raw_data=True
    )
    adapter.fit_dataset(  # type: ignore[attr-defined]
        data,
        num_classes=num_classes,
        seed=seed,
        valid=(valid[0], valid[1]),
        on_iteration=lambda step, _: report(step) or False,
    )
    cache.clear()


def _fit_xgboost(
    adapter: BaseModel,
    spill: Spill,
    valid: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    seed: int,
    report: Callable[[int], None],
) -> None:
    import xgboost as xgb

    feature_types = adapter._feature_types(valid[0].shape[1])  # type: ignore[attr-defined]

    class Chunks(xgb.DataIter):
        def __init__(self) -> None:
            self.index = 0
            super().__init__(cache_prefix=str(spill.folder / "xgb-cache"))

        def next(self, input_data: Callable[..., None]) -> bool:
            if self.index == len(spill.chunks):
                return False
            input_data(
                data=spill.load(self.index),
                label=spill.labels[self.index],
                feature_types=feature_types,
            )
            self.index += 1
            return True

        def reset(self) -> None:
            self.index = 0

    params = adapter.effective_params()
    dtrain = xgb.ExtMemQuantileDMatrix(
        Chunks(), max_bin=params["max_bin"], enable_categorical=True, missing=np.nan
    )
    dvalid = xgb.DMatrix(
        valid[0],
        label=valid[1],
        missing=np.nan,
        feature_types=feature_types,
        enable_categorical=True,
    )
    adapter.fit_dmatrix(  # type: ignore[attr-defined]
        dtrain,
        num_classes=num_classes,
        seed=seed,
        valid=dvalid,
        on_iteration=lambda step, _: report(step) or False,
    )


def _fit_linear(
    adapter: BaseModel,
    spill: Spill,
    valid: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    seed: int,
    report: Callable[[int], None],
) -> None:
    """Preprocessing fitted on the row sample, then SGD ``partial_fit`` over the chunks.

    The penalty and ``C`` keep LogisticRegression's meaning: SGD's ``alpha`` is ``1 / (n C)``
    because it averages the loss over the n rows where LogisticRegression sums it.
    """
    from sklearn.linear_model import SGDClassifier, SGDRegressor
    from sklearn.pipeline import Pipeline

    params = adapter.effective_params()
    penalty = params.get("penalty", "l2")
    sgd: dict[str, Any] = {
        "penalty": None if penalty == "none" else penalty,
        "alpha": 1.0 / (spill.rows_train * params["C"]),
        "l1_ratio": params.get("l1_ratio", 0.15),
        "random_state": seed,
        # Averaged SGD with a small constant step: robust for the tiny alpha of large n.
        "learning_rate": "constant",
        "eta0": 0.01,
        "average": True,
    }
    estimator: Any = (
        SGDRegressor(**sgd) if adapter.task == "regression" else SGDClassifier("log_loss", **sgd)
    )
    prep = _linear_preprocessing(adapter.categorical, valid[0].shape[1])
    prep.fit(np.concatenate(spill.sample).astype(np.float64))
    classes = np.arange(num_classes)
    losses: list[float] = []
    rng = np.random.default_rng(seed)
    for epoch in range(1, LINEAR_EPOCHS + 1):
        for index in rng.permutation(len(spill.chunks)):
            Xc = prep.transform(spill.load(int(index)).astype(np.float64))
            yc = spill.labels[index]
            if adapter.task == "regression":
                estimator.partial_fit(Xc, yc)
            else:
                estimator.partial_fit(Xc, yc.astype(np.int64), classes=classes)
        pipeline = Pipeline([("prep", prep), ("model", estimator)])
        adapter.pipeline_ = pipeline  # type: ignore[attr-defined]
        Xv = valid[0].astype(np.float64)
        losses.append(_loss(adapter.task, valid[1], adapter.predict(Xv)))
        report(epoch)
    adapter.curves_ = {"valid_loss": losses}


def _linear_preprocessing(categorical: list[int], n_features: int) -> Any:
    """The linear adapter's preprocessing: median-impute and scale numbers, one-hot categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [i for i in range(n_features) if i not in categorical]
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1.0),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )


def _loss(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    metrics = evaluate(task, y, predicted)
    return metrics["log_loss"] if task != "regression" else metrics["rmse"] ** 2
