"""A model's signature, and the one converter from input rows to the model's feature matrix.

The server (JSON rows) and batch scoring (Arrow batches) both go through :class:`FeatureEncoder`,
so an online and an offline prediction of the same row are identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.profile import category_values
from mlscale.data.schema import BOOL, FLOAT, INT, STRING, Column, Schema
from mlscale.errors import SchemaError


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # canonical input type
    kind: str  # "numeric" | "categorical"
    categories: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Signature:
    """What a model takes and gives.

    >>> sig = Signature(task="binary", target="y", classes=[0, 1],
    ...                 features=[Feature("x", "float64", "numeric"),
    ...                           Feature("c", "string", "categorical", ["a", "b"])])
    >>> FeatureEncoder(sig).encode_records([{"x": 1.5, "c": "b"}, {"x": None, "c": "zzz"}]).tolist()
    [[1.5, 1.0], [nan, nan]]
    """

    task: str  # "binary" | "multiclass" | "regression"
    target: str
    features: list[Feature]
    classes: list[Any] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if f.kind == "categorical"]

    def input_schema(self) -> Schema:
        return Schema([Column(f.name, f.type) for f in self.features])

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "target": self.target,
            "classes": self.classes,
            "features": [
                {"name": f.name, "type": f.type, "kind": f.kind}
                | ({"categories": f.categories} if f.kind == "categorical" else {})
                for f in self.features
            ],
            "excluded": self.excluded,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            task=data["task"],
            target=data["target"],
            classes=data.get("classes", []),
            features=[
                Feature(f["name"], f["type"], f["kind"], f.get("categories", []))
                for f in data["features"]
            ],
            excluded=data.get("excluded", {}),
        )


_EXPECTED = {INT: "a number", FLOAT: "a number", STRING: "a string", BOOL: "true or false"}


class FeatureEncoder:
    """Turns rows into the float64 matrix a model was trained on; categories become their codes."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self._names = self.names = signature.feature_names
        self._name_set = set(self._names)
        self._value_sets = {
            f.name: pa.array(f.categories, pa.string())
            for f in signature.features
            if f.kind == "categorical"
        }
        # (name, type, category -> code or None for numbers), for the row-by-row path.
        self._plan = [
            (
                f.name,
                f.type,
                {c: float(k) for k, c in enumerate(f.categories)}
                if f.kind == "categorical"
                else None,
            )
            for f in signature.features
        ]

    def encode_table(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        """Encode the feature columns of a typed table (extra columns are ignored)."""
        out = np.empty((table.num_rows, len(self._names)), dtype=np.float64)
        for j, feature in enumerate(self.signature.features):
            values = table.column(feature.name)
            if feature.kind == "categorical":
                values = pc.index_in(
                    category_values(values), value_set=self._value_sets[feature.name]
                )
            out[:, j] = np.asarray(
                pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
            )
        return out

    def encode_records(self, records: list[Any]) -> np.ndarray:
        """Encode JSON rows straight to the matrix: the server's per-request path.

        Plain Python per value (no Arrow arrays to build for one row); the codes and missing
        values are exactly those of :meth:`encode_table`, which the tests check.
        """
        out = np.empty((len(records), len(self._names)), dtype=np.float64)
        plan = self._plan
        names = self._name_set
        for i, row in enumerate(records):
            if not isinstance(row, dict):
                raise SchemaError(
                    f"row {i}: expected an object of feature values, found {_kind(row)}"
                )
            if row.keys() != names:
                self._key_error(i, row)
            for j, (name, type_, codes) in enumerate(plan):
                value = row[name]
                if value is None:
                    out[i, j] = np.nan
                elif codes is None:  # numeric
                    if type(value) is float or (type(value) is int):
                        out[i, j] = value
                    else:
                        raise _type_error(i, name, type_, value)
                elif type_ == BOOL:
                    if type(value) is not bool:
                        raise _type_error(i, name, type_, value)
                    out[i, j] = codes.get("true" if value else "false", np.nan)
                elif type(value) is str:
                    out[i, j] = codes.get(value, np.nan)
                else:
                    raise _type_error(i, name, type_, value)
        return out

    def table_from_records(self, records: list[Any]) -> pa.Table:
        """Validate JSON rows (each an object with exactly the features) and type them."""
        for i, row in enumerate(records):
            if not isinstance(row, dict):
                raise SchemaError(
                    f"row {i}: expected an object of feature values, found {_kind(row)}"
                )
            if row.keys() != self._name_set:
                self._key_error(i, row)
        return self.table_from_columns({n: [row[n] for row in records] for n in self._names})

    def table_from_columns(self, columns: dict[str, Any]) -> pa.Table:
        """Validate columnar JSON (feature name -> list of values) and type it."""
        if columns.keys() != self._name_set:
            self._key_error(None, columns)
        arrays = {}
        lengths = set()
        for feature in self.signature.features:
            values = columns[feature.name]
            if not isinstance(values, list):
                raise SchemaError(f"feature {feature.name!r}: expected a list of values")
            lengths.add(len(values))
            arrays[feature.name] = _typed_array(feature, values)
        if len(lengths) > 1:
            raise SchemaError(f"columns have different lengths: {sorted(lengths)}")
        return pa.table(arrays)

    def _key_error(self, row: int | None, given: dict[str, Any]) -> None:
        missing = [n for n in self._names if n not in given]
        extra = [k for k in given if k not in self._name_set]
        where = f"row {row}: " if row is not None else ""
        parts = []
        if missing:
            parts.append(f"missing feature(s) {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"unknown field(s) {', '.join(map(repr, extra))}")
        raise SchemaError(f"{where}{'; '.join(parts)}; expected exactly: {', '.join(self._names)}")


def _type_error(row: int, name: str, type_: str, value: Any) -> SchemaError:
    return SchemaError(f"row {row}, feature {name!r}: expected {_EXPECTED[type_]}, found {value!r}")


def _typed_array(feature: Feature, values: list[Any]) -> pa.Array:
    type_ = pa.float64() if feature.type in (INT, FLOAT) else pa.type_for_alias(feature.type)
    for i, value in enumerate(values):
        if value is None:
            continue
        ok = (
            isinstance(value, int | float) and not isinstance(value, bool)
            if feature.type in (INT, FLOAT)
            else isinstance(value, bool)
            if feature.type == BOOL
            else isinstance(value, str)
        )
        if not ok:
            raise SchemaError(
                f"row {i}, feature {feature.name!r}: expected {_EXPECTED[feature.type]}, "
                f"found {value!r}"
            )
    return pa.array(values, type=type_)


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
