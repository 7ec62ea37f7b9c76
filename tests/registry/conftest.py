"""A workspace with one small dataset, and model versions fitted on it as the trainer would.

The versions are built straight from the adapters so that each test chooses its features and its
holdout rows: a run with ``params["target"]`` and a ``holdout`` artifact (one int64 column
``row``), the contract :mod:`mlscale.registry.holdout` reads.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mlscale import Workspace
from mlscale.data.datasets import read_table
from mlscale.models.base import adapter_class
from mlscale.models.signature import Feature, FeatureEncoder, Signature
from mlscale.store.records import ModelVersion
from mlscale.train.metrics import evaluate

ROWS = 400
Register = Callable[..., ModelVersion]


def write_data(path: Path, seed: int = 0, *, extra: bool = False) -> Path:
    """``label`` (0/1) and ``rate`` (a number) depend mostly on ``x1``, a little on ``x2``.

    ``extra`` adds a column ``x3`` that only some models use.
    """
    rng = np.random.default_rng(seed)
    x1, x2, x3, noise = rng.normal(size=(4, ROWS))
    columns = {
        "x1": x1,
        "x2": x2,
        "label": (x1 + 0.3 * x2 + 0.5 * noise > 0).astype(np.int64),
        "rate": 2.0 * x1 + 0.5 * x2 + 0.5 * noise,
    }
    pq.write_table(pa.table(columns | ({"x3": x3} if extra else {})), path)
    return path


def holdout_bytes(rows: np.ndarray) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"row": pa.array(rows, pa.int64())}), sink)
    return sink.getvalue()


def register_version(
    ws: Workspace,
    *,
    features: list[str],
    target: str = "label",
    name: str = "loans",
    dataset: str = "loans@1",
    holdout_offset: int = 0,
    with_holdout: bool = True,
) -> ModelVersion:
    """Fit a linear model on ``features``; every 4th row (from ``holdout_offset``) is held out."""
    ds = ws.dataset(dataset)
    table = read_table(ws, ds)
    task = "regression" if target == "rate" else "binary"
    labels = table.column(target)
    classes = [] if task == "regression" else sorted(pc.unique(labels).to_pylist())
    signature = Signature(
        task, target, [Feature(f, "float64", "numeric") for f in features], classes
    )
    X = FeatureEncoder(signature).encode_table(table)
    if task == "regression":
        y = np.asarray(labels, dtype=np.float64)
    else:
        y = np.asarray(pc.index_in(labels, value_set=pa.array(classes)), dtype=np.int64)
    rows = np.arange(table.num_rows)
    test, train = rows[rows % 4 == holdout_offset], rows[rows % 4 != holdout_offset]
    model = adapter_class("linear")(task=task, categorical=[])
    model.fit(X[train], y[train], num_classes=len(classes), seed=0)
    metrics = evaluate(task, y[test], model.predict(X[test]))
    run = ws.metadata.create_run(
        "train", params={"model": "linear", "target": target, "task": task}, dataset=ds.ref
    )
    if with_holdout:
        ws.metadata.log_run_artifact(run.id, "holdout", ws.artifacts.put_bytes(holdout_bytes(test)))
    version = ws.metadata.add_model_version(
        name,
        flavor=model.flavor,
        artifact_sha=ws.artifacts.put_bytes(model.save()),
        signature=signature.to_dict(),
        metrics=metrics,
        profile_sha=ds.profile_sha,
        run_id=run.id,
        dataset=ds.ref,
    )
    ws.metadata.finish_run(run.id, status="finished", metrics=metrics, env={})
    return version


@pytest.fixture
def data_ws(ws: Workspace, tmp_path: Path) -> Workspace:
    """A workspace with dataset ``loans@1`` (400 rows: x1, x2, label, rate)."""
    ws.ingest(write_data(tmp_path / "loans.parquet"), name="loans")
    return ws


@pytest.fixture
def register(data_ws: Workspace) -> Register:
    """``register(features=[...], target="label", ...)``: a new version of ``loans``."""

    def make(**kwargs: object) -> ModelVersion:
        return register_version(data_ws, **kwargs)  # type: ignore[arg-type]

    return make
