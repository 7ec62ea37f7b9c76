"""Schema evolution: how a source's columns differ from its contract, and what the policy lets in.

Columns are matched by name. A column's type may *widen* from int64 to float64 (accepted by
default); a source type that the contract's type already holds without loss (int64 values in a
float64 column, anything in a string column) is no change at all; every other type change is a
*conflict*, which no policy accepts.

>>> contract = Contract([ColumnRule("age", "int64"), ColumnRule("income", "int64")])
>>> report = compare_schemas(contract, [("age", "int64"), ("income", "float64"), ("city", "string")])
>>> report.describe()
["new column 'city' (string)", "column 'income' widened from int64 to float64"]
>>> report.refusals(contract.evolution)
["new column 'city' (string) is not in the contract; set evolution.new_columns: accept to take it"]
>>> accepting = replace(contract, evolution=Evolution(new_columns="accept"))
>>> [(c.name, c.type) for c in report.apply(accepting).columns]
[('age', 'int64'), ('income', 'float64'), ('city', 'string')]
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import NamedTuple

from mlscale.data.contract import ColumnRule, Contract, Evolution
from mlscale.data.schema import FLOAT, INT, STRING, TYPES
from mlscale.errors import SchemaError

__all__ = ["EvolutionReport", "TypeChange", "compare_schemas"]


class TypeChange(NamedTuple):
    name: str
    old: str  # the contract's type
    new: str  # the source's type


@dataclass(frozen=True)
class EvolutionReport:
    """The differences between a contract and a source, in contract then source order."""

    new: tuple[ColumnRule, ...] = ()  # as they would be added: nullable, no checks
    dropped: tuple[ColumnRule, ...] = ()  # the contract's rules for columns the source lacks
    widened: tuple[TypeChange, ...] = ()  # int64 -> float64
    conflicts: tuple[TypeChange, ...] = ()  # any other type change

    @property
    def changed(self) -> bool:
        return bool(self.new or self.dropped or self.widened or self.conflicts)

    def refusals(self, policy: Evolution) -> list[str]:
        """One message per change that ``policy`` refuses, saying how to accept it; [] if none."""
        out = []
        if policy.new_columns == "refuse":
            for rule in self.new:
                out.append(
                    f"new column {rule.name!r} ({rule.type}) is not in the contract; "
                    f"set evolution.new_columns: accept to take it{self._renamed(rule.name)}"
                )
        for rule in self.dropped:
            if policy.dropped_columns == "refuse":
                out.append(
                    f"column {rule.name!r} ({rule.type}) is missing from the source; "
                    "set evolution.dropped_columns: accept to fill it with nulls"
                )
            elif not rule.nullable:
                out.append(
                    f"column {rule.name!r} is missing from the source but is not nullable; "
                    "set nullable: true on it to accept its absence"
                )
        if policy.widened_types == "refuse":
            for change in self.widened:
                out.append(
                    f"column {change.name!r} widened from {change.old} to {change.new}; "
                    "set evolution.widened_types: accept to take it"
                )
        for change in self.conflicts:
            out.append(
                f"column {change.name!r} changed type from {change.old} to {change.new}; only "
                f"{INT} -> {FLOAT} can be accepted, so fix the source or the contract's type"
            )
        return out

    def apply(self, contract: Contract) -> Contract:
        """``contract`` with the changes its own evolution policy accepts; refused ones left out.

        New columns are appended as nullable with no checks, widened columns take float64, and
        dropped columns stay (the validator fills them with nulls). Call :meth:`refusals` first to
        stop on a refused change.
        """
        policy = contract.evolution
        widen = {c.name: c.new for c in self.widened} if policy.widened_types == "accept" else {}
        columns = [
            replace(rule, type=widen[rule.name]) if rule.name in widen else rule
            for rule in contract.columns
        ]
        if policy.new_columns == "accept":
            columns += [rule for rule in self.new if rule.name not in contract.names]
        return replace(contract, columns=columns)

    def describe(self, policy: Evolution | None = None) -> list[str]:
        """One line per change, for the ingest summary; with ``policy``, whether it is accepted."""
        take = policy or Evolution("accept", "accept", "accept")
        lines = [
            (f"new column {r.name!r} ({r.type})", take.new_columns == "accept") for r in self.new
        ]
        lines += [
            (
                f"column {r.name!r} ({r.type}) missing from the source",
                take.dropped_columns == "accept" and r.nullable,
            )
            for r in self.dropped
        ]
        lines += [
            (f"column {c.name!r} widened from {c.old} to {c.new}", take.widened_types == "accept")
            for c in self.widened
        ]
        lines += [
            (f"column {c.name!r} changed type from {c.old} to {c.new}", False)
            for c in self.conflicts
        ]
        if policy is None:
            return [text for text, _ in lines]
        return [f"{text} ({'accepted' if ok else 'refused'})" for text, ok in lines]

    def _renamed(self, name: str) -> str:
        dropped = [rule.name for rule in self.dropped]
        same = [d for d in dropped if d.lower() == name.lower()]
        close = same or difflib.get_close_matches(name, dropped, n=1, cutoff=0.8)
        return f" (was {close[0]!r} renamed? names are matched exactly)" if close else ""


def compare_schemas(contract: Contract, found: list[tuple[str, str]]) -> EvolutionReport:
    """Compare the contract with a source's ``(column, canonical type)`` list."""
    names = [name for name, _ in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SchemaError(f"the source has column(s) {repeated} more than once")
    for name, type_ in found:
        if type_ not in TYPES:
            raise SchemaError(f"column {name!r}: {type_!r} is not one of {', '.join(TYPES)}")
    types = dict(found)
    dropped: list[ColumnRule] = []
    widened: list[TypeChange] = []
    conflicts: list[TypeChange] = []
    for rule in contract.columns:
        if rule.name not in types:
            dropped.append(rule)
            continue
        got = types[rule.name]
        if got == rule.type or (got, rule.type) == (INT, FLOAT) or rule.type == STRING:
            continue
        change = TypeChange(rule.name, rule.type, got)
        (widened if (rule.type, got) == (INT, FLOAT) else conflicts).append(change)
    known = set(contract.names)
    new = [ColumnRule(name, type_) for name, type_ in found if name not in known]
    return EvolutionReport(tuple(new), tuple(dropped), tuple(widened), tuple(conflicts))
