"""Choosing the task and the features from the data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.profile import Profile
from mlscale.data.schema import BOOL, FLOAT, INT, STRING, TIMESTAMP, Schema
from mlscale.errors import SchemaError, UserError
from mlscale.models.signature import Feature

MAX_CLASSES = 100
MAX_INT_CLASSES = 20  # an integer target with more distinct values than this is a regression
MAX_CATEGORIES = 200  # a string column with more distinct values is an identifier, not a feature
TASKS = ("binary", "multiclass", "regression")


def infer_task(target: pa.ChunkedArray, name: str, type_: str, task: str | None = None) -> str:
    """Binary, multiclass or regression from the target's type and distinct values."""
    present = pc.drop_null(target)
    if len(present) == 0:
        raise SchemaError(f"target column {name!r} has no values (all {len(target)} are missing)")
    if type_ == TIMESTAMP:
        raise SchemaError(f"target column {name!r} is a timestamp; expected a label or a number")
    distinct = pc.count_distinct(present).as_py()
    if task is not None:
        if task not in TASKS:
            raise UserError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
        if task == "regression" and type_ not in (INT, FLOAT):
            raise SchemaError(f"target column {name!r} is {type_}; regression needs numbers")
    elif type_ in (STRING, BOOL) or (type_ == INT and distinct <= MAX_INT_CLASSES):
        task = "binary" if distinct <= 2 else "multiclass"
    elif type_ == FLOAT and distinct <= 2:
        task = "binary"
    else:
        task = "regression"
    if task != "regression":
        if distinct < 2:
            only = present[0].as_py()
            raise SchemaError(
                f"target column {name!r} has one class ({only!r}) in all {len(present)} rows; "
                "a classifier needs at least two"
            )
        if distinct > MAX_CLASSES:
            raise SchemaError(
                f"target column {name!r} has {distinct} distinct values; at most {MAX_CLASSES} "
                "classes are supported (pass --task regression for a numeric target)"
            )
        if task == "binary" and distinct > 2:
            raise SchemaError(f"target column {name!r} has {distinct} classes; binary needs 2")
    elif float(np.nanstd(np.asarray(pc.cast(present, pa.float64())))) == 0.0:
        raise SchemaError(f"target column {name!r} is constant; nothing to learn")
    return task


def choose_features(
    schema: Schema, profile: Profile, target: str, exclude: list[str]
) -> tuple[list[Feature], dict[str, str]]:
    """Every column but the target, except timestamps, identifiers and those excluded by name."""
    unknown = [c for c in exclude if c not in schema.names]
    if unknown:
        raise SchemaError(
            f"cannot exclude unknown column(s) {', '.join(map(repr, unknown))}; "
            f"columns are: {', '.join(schema.names)}"
        )
    features: list[Feature] = []
    excluded: dict[str, str] = {}
    for col in schema.columns:
        stats: dict[str, Any] = profile.columns[col.name]
        if col.name == target:
            continue
        if col.name in exclude:
            excluded[col.name] = "excluded on request"
        elif col.type == TIMESTAMP:
            excluded[col.name] = "timestamp (not used as a feature)"
        elif col.type in (INT, FLOAT):
            features.append(Feature(col.name, col.type, "numeric"))
        elif not stats["distinct_exact"] or stats["distinct"] > MAX_CATEGORIES:
            excluded[col.name] = (
                f"identifier-like: {stats['distinct']}{'+' if not stats['distinct_exact'] else ''} "
                f"distinct values (more than {MAX_CATEGORIES})"
            )
        else:
            features.append(Feature(col.name, col.type, "categorical", sorted(stats["categories"])))
    if not features:
        raise SchemaError(f"no usable feature columns besides the target {target!r}")
    return features, excluded
