"""From a dataset version to a feature matrix and a target: the part every training shares.

Training, tuning and continued training all start here, so they encode features the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.datasets import read_profile, read_table
from mlscale.data.schema import TIMESTAMP, Schema
from mlscale.errors import SchemaError, UserError
from mlscale.models.signature import FeatureEncoder, Signature
from mlscale.refs import Ref
from mlscale.store.records import DatasetVersion
from mlscale.train.task import choose_features, infer_task

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


@dataclass
class Prepared:
    """The labelled rows of a dataset version, encoded for a model."""

    dataset: DatasetVersion
    table: pa.Table  # labelled rows only
    rows: np.ndarray  # each labelled row's position in the dataset version (for the holdout)
    X: np.ndarray
    y: np.ndarray  # class codes in ``signature.classes`` order, or float values
    signature: Signature
    rows_without_target: int

    @property
    def task(self) -> str:
        return self.signature.task

    @property
    def num_classes(self) -> int:
        return len(self.signature.classes)

    def times(self, column: str) -> np.ndarray:
        """A timestamp column as int64 microseconds, for a time-based split."""
        schema = Schema.from_dict(self.dataset.schema)
        if column not in schema.names:
            raise SchemaError(
                f"unknown time column {column!r} in {self.dataset.ref}; columns are: "
                f"{', '.join(schema.names)}"
            )
        if schema.column(column).type != TIMESTAMP:
            raise SchemaError(
                f"time column {column!r} is {schema.column(column).type}; a time split needs "
                "a timestamp column"
            )
        values = self.table.column(column)
        missing = values.null_count
        if missing:
            raise SchemaError(
                f"time column {column!r} has {missing} missing value(s) among the labelled rows; "
                "a time split needs every row's time"
            )
        return np.asarray(pc.cast(values, pa.int64()), dtype=np.int64)


def prepare(
    ws: Workspace,
    dataset_ref: Ref,
    *,
    target: str,
    model: str,
    task: str | None = None,
    exclude: list[str] | None = None,
    signature: Signature | None = None,
) -> Prepared:
    """Read ``dataset_ref``, keep labelled rows, infer the task and features, encode.

    With ``signature`` (continued training), the earlier model's features and classes are kept,
    so the new rows are encoded exactly as the model expects.
    """
    dataset = ws.metadata.get_dataset_version(dataset_ref)
    schema = Schema.from_dict(dataset.schema)
    if target not in schema.names:
        raise SchemaError(
            f"unknown target column {target!r} in {dataset.ref}; columns are: "
            f"{', '.join(schema.names)}"
        )
    if signature is not None and target != signature.target:
        raise UserError(
            f"the model to continue was trained on target {signature.target!r}, not {target!r}"
        )
    table = read_table(ws, dataset)
    labelled = pc.is_valid(table.column(target))
    rows = np.flatnonzero(np.asarray(labelled, dtype=bool))
    rows_without_target = table.num_rows - len(rows)
    if rows_without_target:
        table = table.filter(labelled)
    target_type = schema.column(target).type
    task = infer_task(
        table.column(target), target, target_type, signature.task if signature else task
    )
    if model == "logistic" and task == "regression":
        raise UserError(
            f"model 'logistic' is a classifier but target {target!r} is numeric with many values "
            "(regression); use --model lightgbm or --model linear, or pass --task"
        )
    y_values = table.column(target)
    if signature is None:
        features, excluded = choose_features(
            schema, read_profile(ws, dataset.profile_sha), target, exclude or []
        )
        classes: list[Any] = [] if task == "regression" else sorted(pc.unique(y_values).to_pylist())
        signature = Signature(task, target, features, classes, excluded)
    else:
        _check_continuable(signature, schema, target, y_values, dataset.ref)
    if task == "regression":
        y = np.asarray(pc.cast(y_values, pa.float64()), dtype=np.float64)
    else:
        y = np.asarray(pc.index_in(y_values, value_set=pa.array(signature.classes)), dtype=np.int64)
    X = FeatureEncoder(signature).encode_table(table)
    return Prepared(dataset, table, rows, X, y, signature, rows_without_target)


def _check_continuable(
    signature: Signature, schema: Schema, target: str, y_values: pa.ChunkedArray, where: str
) -> None:
    missing = [f for f in signature.feature_names if f not in schema.names]
    if missing:
        raise SchemaError(
            f"{where} lacks feature column(s) {', '.join(map(repr, missing))} that the model to "
            "continue was trained on"
        )
    if signature.task != "regression":
        new = sorted(set(pc.unique(y_values).to_pylist()) - set(signature.classes))
        if new:
            raise SchemaError(
                f"target {target!r} in {where} has class(es) {new} that the model to continue "
                f"does not know (its classes: {signature.classes}); train a new model instead"
            )
