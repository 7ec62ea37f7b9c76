"""``train``: a dataset version in, an evaluated, registered model version out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.model_selection import train_test_split

from mlscale.data.datasets import read_profile, read_table
from mlscale.data.profile import profile_table
from mlscale.data.schema import Schema
from mlscale.errors import SchemaError, UserError
from mlscale.models.base import adapter_class
from mlscale.models.signature import FeatureEncoder, Signature
from mlscale.refs import Ref, check_name
from mlscale.store.records import ModelVersion, Run
from mlscale.train.environment import capture_environment, peak_rss_mib
from mlscale.train.metrics import evaluate
from mlscale.train.task import choose_features, infer_task

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

MODELS = ("lightgbm", "logistic", "linear")


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
    model: str = "lightgbm",
    name: str | None = None,
    params: dict[str, Any] | None = None,
    task: str | None = None,
    exclude: list[str] | None = None,
    test_size: float = 0.2,
    seed: int = 42,
) -> TrainResult:
    """Split, fit, evaluate, and register ``name`` (default: the dataset's name)."""
    if model not in MODELS:
        raise UserError(f"unknown model {model!r}; available: {', '.join(MODELS)}")
    if not 0.0 < test_size < 1.0:
        raise UserError(f"test size must be between 0 and 1 (exclusive), got {test_size}")
    dataset = ws.metadata.get_dataset_version(dataset_ref)
    model_name = check_name(name or dataset.name, "model name")
    schema = Schema.from_dict(dataset.schema)
    if target not in schema.names:
        raise SchemaError(
            f"unknown target column {target!r} in {dataset.ref}; columns are: "
            f"{', '.join(schema.names)}"
        )
    table = read_table(ws, dataset)
    labelled = pc.is_valid(table.column(target))
    rows_without_target = table.num_rows - pc.sum(labelled).as_py() if table.num_rows else 0
    table = table.filter(labelled)
    target_type = schema.column(target).type
    task = infer_task(table.column(target), target, target_type, task)
    if model == "logistic" and task == "regression":
        raise UserError(
            f"model 'logistic' is a classifier but target {target!r} is numeric with many values "
            "(regression); use --model lightgbm or --model linear, or pass --task"
        )
    if model == "linear" and task != "regression":
        model = "logistic"  # the same adapter: linear for values, logistic for classes
    features, excluded = choose_features(
        schema, read_profile(ws, dataset.profile_sha), target, exclude or []
    )
    classes: list[Any] = []
    y_values = table.column(target)
    if task == "regression":
        y = np.asarray(pc.cast(y_values, pa.float64()), dtype=np.float64)
    else:
        classes = sorted(pc.unique(y_values).to_pylist())
        y = np.asarray(pc.index_in(y_values, value_set=pa.array(classes)), dtype=np.int64)
    signature = Signature(task, target, features, classes, excluded)
    X = FeatureEncoder(signature).encode_table(table)

    stratify = y if task != "regression" and np.bincount(y).min() >= 2 else None
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=test_size, random_state=seed, stratify=stratify
    )
    adapter = adapter_class(model)(
        task=task, categorical=signature.categorical_indices, params=params
    )
    run = ws.metadata.create_run(
        "train",
        params={
            "model": model,
            "target": target,
            "task": task,
            "test_size": test_size,
            "seed": seed,
            "hyperparameters": adapter.effective_params(),
            "features": signature.feature_names,
            "excluded": excluded,
        },
        dataset=dataset.ref,
    )
    started = time.perf_counter()
    try:
        adapter.fit(X[train_idx], y[train_idx], num_classes=len(classes), seed=seed)
        metrics = evaluate(task, y[test_idx], adapter.predict(X[test_idx]))
        reference = profile_table(
            table.take(pa.array(train_idx)).select(signature.feature_names),
            signature.input_schema(),
        )
        version = ws.metadata.add_model_version(
            model_name,
            flavor=adapter.flavor,
            artifact_sha=ws.artifacts.put_bytes(adapter.save()),
            signature=signature.to_dict(),
            metrics=metrics,
            profile_sha=ws.artifacts.put_bytes(reference.to_json()),
            run_id=run.id,
            dataset=dataset.ref,
        )
    except BaseException as exc:
        ws.metadata.finish_run(
            run.id, status="failed", metrics={}, env=capture_environment(), error=repr(exc)
        )
        raise
    env = capture_environment() | {
        "fit_seconds": time.perf_counter() - started,
        "peak_rss_mib": peak_rss_mib(),
        "model_version": version.ref,
    }
    run = ws.metadata.finish_run(run.id, status="finished", metrics=metrics, env=env)
    return TrainResult(run, version, metrics, len(train_idx), len(test_idx), rows_without_target)
