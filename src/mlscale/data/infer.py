"""Draft a contract from a sample: types, nullability, categories and ids; nothing stricter.

The draft is a starting point that a person edits, so its rules are few and predictable:

- **type**: text columns (strings, as read from CSV or JSON) get the narrowest type that nearly all
  of their values parse as (:func:`mlscale.data.schema.infer_from_strings`); typed columns (Parquet,
  SQL) keep their type, mapped to the canonical set (:func:`mlscale.data.schema.canonical_type`).
- **nullable**: false only when the sample has rows and none of them lacks the value.
- **allowed**: for string columns with at most :data:`MAX_CATEGORIES` distinct values *and* at
  least :data:`MIN_ROWS_PER_CATEGORY` rows per distinct value on average (so the sample has likely
  seen every category), the sorted distinct values.
- **unique**: for string and int64 columns whose values in the sample are all distinct and whose
  name's last word is ``id``, ``key`` or ``uuid`` (``id``, ``loan_id``, ``customerId``, ``ORDER-KEY``;
  not ``paid`` or ``valid``).
- never **min/max** (a sample's range is too narrow for tomorrow's data), **regex**, row checks or
  cleaning; evolution keeps its defaults.

>>> sample = pa.table({"id": ["1", "2", "3"], "city": ["Oslo", None, "Rome"]})
>>> [(c.name, c.type, c.nullable, c.unique) for c in infer_contract(sample).columns]
[('id', 'int64', False, True), ('city', 'string', True, False)]
"""

from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.contract import ColumnRule, Contract
from mlscale.data.schema import INT, STRING, canonical_type, infer_from_strings
from mlscale.errors import SchemaError

__all__ = ["MAX_CATEGORIES", "MIN_ROWS_PER_CATEGORY", "infer_contract", "looks_like_id"]

MAX_CATEGORIES = 50
MIN_ROWS_PER_CATEGORY = 20
# A separated last word (loan_id, order-key, ID) or a camel-case one (customerId, userID).
_ID_NAME = re.compile(r"(?:^|[\W_])(?i:id|key|uuid)$|[a-z0-9](?:Id|ID|Key|KEY|Uuid|UUID)$")


def infer_contract(sample: pa.Table) -> Contract:
    """A draft contract for data like ``sample``; see the module docstring for the rules."""
    repeated = [name for name, n in Counter(sample.column_names).items() if n > 1]
    if repeated:
        raise SchemaError(f"the sample has column(s) {repeated} more than once; names must differ")
    text = [n for n in sample.column_names if _is_text(sample.schema.field(n).type)]
    text_table = pa.table({n: _as_string(sample.column(n)) for n in text})
    inferred = {c.name: c.type for c in infer_from_strings(text_table).columns}
    rules = []
    for field in sample.schema:
        values = sample.column(field.name)
        if pa.types.is_dictionary(field.type):
            values = pa.chunked_array(
                [chunk.dictionary_decode() for chunk in values.chunks], field.type.value_type
            )
        type_ = inferred.get(field.name) or canonical_type(field.type)
        present = pc.drop_null(values)
        rules.append(
            ColumnRule(
                field.name,
                type_,
                nullable=values.null_count > 0 or len(values) == 0,
                allowed=_categories(present) if type_ == STRING else None,
                unique=(
                    type_ in (STRING, INT)
                    and len(present) > 0
                    and looks_like_id(field.name)
                    and pc.count_distinct(present).as_py() == len(present)
                ),
            )
        )
    return Contract(rules)


def looks_like_id(name: str) -> bool:
    """Whether a column name reads as an identifier: its last word is id, key or uuid.

    >>> [looks_like_id(n) for n in ("id", "loan_id", "customerId", "ORDER-KEY", "paid", "monkey")]
    [True, True, True, True, False, False]
    """
    return _ID_NAME.search(name) is not None


def _categories(present: pa.ChunkedArray) -> list[str] | None:
    if not _is_text(present.type) or len(present) == 0:
        return None
    distinct = pc.unique(present)
    if len(distinct) > MAX_CATEGORIES or len(present) < MIN_ROWS_PER_CATEGORY * len(distinct):
        return None
    return sorted(distinct.to_pylist())


def _is_text(type_: pa.DataType) -> bool:
    return (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_string_view(type_)
    )


def _as_string(values: pa.ChunkedArray) -> pa.ChunkedArray:
    # infer_from_strings' regex kernels want plain utf8.
    return values if values.type == pa.string() else values.cast(pa.string())
