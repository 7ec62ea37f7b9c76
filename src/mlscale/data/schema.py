"""The data contract of a dataset: column names, canonical types, nullability.

Types are a small canonical set so that every source (CSV, Parquet, JSON rows on the server) maps to
the same thing: ``int64``, ``float64``, ``bool``, ``string``, ``timestamp[us]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlscale.errors import SchemaError

INT, FLOAT, BOOL, STRING, TIMESTAMP = "int64", "float64", "bool", "string", "timestamp[us]"
TYPES = (INT, FLOAT, BOOL, STRING, TIMESTAMP)

_PATTERNS = {
    INT: r"^\s*[+-]?\d{1,18}\s*$",
    FLOAT: r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$",
    BOOL: r"^\s*(?i:true|false)\s*$",
    TIMESTAMP: r"^\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*$",
}
# Narrowest first: a column takes the first type that nearly all of its sample values parse as.
_INFERENCE_ORDER = (INT, FLOAT, BOOL, TIMESTAMP)
# Share of non-missing sample values that must parse for a type to be chosen; the rest are bad rows.
_MIN_PARSED_SHARE = 0.98


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True

    @property
    def arrow_type(self) -> pa.DataType:
        return pa.type_for_alias(self.type)


@dataclass(frozen=True)
class Schema:
    """An ordered set of columns.

    >>> s = Schema([Column("age", "int64"), Column("city", "string")])
    >>> s.names
    ['age', 'city']
    >>> Schema.from_dict(s.to_dict()) == s
    True
    """

    columns: list[Column]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise SchemaError(f"no column {name!r}; columns are: {', '.join(self.names)}")

    def to_arrow(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns])

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [
                {"name": c.name, "type": c.type, "nullable": c.nullable} for c in self.columns
            ]
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        return cls([Column(c["name"], c["type"], c.get("nullable", True)) for c in data["columns"]])


def canonical_type(arrow_type: pa.DataType) -> str:
    """Map any Arrow type to the canonical type it is stored as."""
    if pa.types.is_integer(arrow_type):
        return INT
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return FLOAT
    if pa.types.is_boolean(arrow_type):
        return BOOL
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return TIMESTAMP
    if pa.types.is_dictionary(arrow_type):
        return canonical_type(arrow_type.value_type)
    return STRING


def infer_from_strings(sample: pa.Table) -> Schema:
    """Infer column types from a sample read as strings, tolerating a few malformed values."""
    columns = []
    for name in sample.column_names:
        values = sample.column(name).combine_chunks()
        present = pc.drop_null(values)
        chosen = STRING
        if len(present):
            for type_ in _INFERENCE_ORDER:
                parsed = pc.sum(pc.match_substring_regex(present, _PATTERNS[type_])).as_py() or 0
                if parsed and parsed >= _MIN_PARSED_SHARE * len(present):
                    chosen = type_
                    break
        columns.append(Column(name, chosen))
    return Schema(columns)


def coerce_strings(
    batch: pa.RecordBatch, schema: Schema
) -> tuple[pa.RecordBatch, pa.Array, list[str | None]]:
    """Convert a batch of string columns to ``schema``'s types.

    Returns the converted batch (bad values set to null), a boolean mask of rows with at least one
    bad value, and per row the reason (None for good rows).
    """
    n = batch.num_rows
    arrays = []
    reasons: list[str | None] = [None] * n
    bad_any = pa.array([False] * n)
    for col in schema.columns:
        values = batch.column(col.name)
        if col.type == STRING:
            arrays.append(values)
            continue
        ok = pc.or_kleene(pc.is_null(values), pc.match_substring_regex(values, _PATTERNS[col.type]))
        ok = pc.fill_null(ok, True)
        bad = pc.invert(ok)
        if pc.any(bad).as_py():
            bad_any = pc.or_(bad_any, bad)
            for i in pc.indices_nonzero(bad).to_pylist():
                found = values[i].as_py()
                reason = f"column {col.name!r}: expected {col.type}, found {found!r}"
                reasons[i] = reason if reasons[i] is None else f"{reasons[i]}; {reason}"
            values = pc.if_else(ok, values, pa.scalar(None, pa.string()))
        arrays.append(_parse(values, col))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.to_arrow()), bad_any, reasons


def _parse(values: pa.Array, col: Column) -> pa.Array:
    if col.type == BOOL:
        return pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(values)), "true")
    if col.type == TIMESTAMP:
        return pc.cast(pc.utf8_trim_whitespace(values), pa.timestamp("us"))
    return pc.cast(pc.utf8_trim_whitespace(values), col.arrow_type)


def conform(batch: pa.RecordBatch, schema: Schema) -> pa.RecordBatch:
    """Cast an already typed batch (Parquet) to the canonical types of ``schema``."""
    arrays = []
    for col in schema.columns:
        values = batch.column(col.name)
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if values.type != col.arrow_type:
            values = pc.cast(values, col.arrow_type)
        arrays.append(values)
    return pa.RecordBatch.from_arrays(arrays, schema=schema.to_arrow())
