"""The data contract: what every row of a dataset must satisfy, and how rows are cleaned.

Written as YAML (``mlscale schema infer`` drafts one; people edit it), loaded by
:mod:`mlscale.data.contract_io`, enforced batch by batch by :mod:`mlscale.data.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlscale.data.schema import Column, Schema

FillStrategy = Literal["drop", "median", "mode", "constant"]
Policy = Literal["accept", "refuse"]


@dataclass(frozen=True)
class ColumnRule:
    """One column: its type and the checks on each value. ``None`` means no check."""

    name: str
    type: str  # a canonical type: int64, float64, bool, string, timestamp[us]
    nullable: bool = True
    min: float | str | None = None  # numbers, or ISO timestamps for timestamp columns
    max: float | str | None = None
    allowed: list[str] | None = None  # allowed values (categories) for string columns
    regex: str | None = None  # the whole value must match (string columns)
    unique: bool = False


@dataclass(frozen=True)
class RowCheck:
    """A row-level rule as a SQL boolean expression over the columns; false means rejected."""

    name: str
    sql: str


@dataclass(frozen=True)
class Fill:
    strategy: FillStrategy
    value: Any = None  # for "constant"


@dataclass(frozen=True)
class Cleaning:
    """Fixes applied to accepted rows, in this order: normalise, impute, clip, de-duplicate."""

    # column -> steps among "trim", "lower", "upper" (string columns)
    normalize: dict[str, list[str]] = field(default_factory=dict)
    # column -> how to fill missing values
    missing: dict[str, Fill] = field(default_factory=dict)
    # column -> (low, high); either may be None
    clip: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    # key columns; later rows with a key already seen go to quarantine ("duplicate key")
    duplicates_key: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evolution:
    """What to do when a source's columns differ from the contract's."""

    new_columns: Policy = "refuse"
    dropped_columns: Policy = "refuse"  # accepted ones are filled with nulls (must be nullable)
    widened_types: Policy = "accept"  # int64 -> float64 only


@dataclass(frozen=True)
class Contract:
    columns: list[ColumnRule]
    checks: list[RowCheck] = field(default_factory=list)
    cleaning: Cleaning = field(default_factory=Cleaning)
    evolution: Evolution = field(default_factory=Evolution)
    path: str | None = None  # the file it was loaded from, for messages

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnRule:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def schema(self) -> Schema:
        return Schema([Column(c.name, c.type, c.nullable) for c in self.columns])
