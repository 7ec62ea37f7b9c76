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
