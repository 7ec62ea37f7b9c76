"""What changed between two dataset versions: schema, row counts, and column statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlscale.data.profile import Profile
from mlscale.store.records import DatasetVersion

STATS = ("missing_rate", "mean", "std", "min", "max", "distinct")


@dataclass(frozen=True)
class ColumnChange:
    column: str
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True)
class DatasetDiff:
    a: str
    b: str
    rows: tuple[int, int]
    quarantined: tuple[int, int]
    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)
    columns: list[ColumnChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "rows": list(self.rows),
            "quarantined": list(self.quarantined),
            "added": [{"column": n, "type": t} for n, t in self.added],
            "removed": [{"column": n, "type": t} for n, t in self.removed],
            "retyped": [{"column": n, "from": a, "to": b} for n, a, b in self.retyped],
            "columns": [
                {"column": c.column, "before": c.before, "after": c.after} for c in self.columns
            ],
        }


def column_stats(profile: Profile, column: str) -> dict[str, Any]:
    col = profile.columns[column]
    count = col.get("count", 0) or 0
    out: dict[str, Any] = {"missing_rate": (col.get("missing", 0) / count) if count else None}
    for key in ("mean", "std", "min", "max", "distinct"):
        out[key] = col.get(key)
    return out


def diff_versions(
    a: DatasetVersion, b: DatasetVersion, profile_a: Profile, profile_b: Profile
) -> DatasetDiff:
    """Compare ``a`` (before) with ``b`` (after)."""
    types_a = {c["name"]: c["type"] for c in a.schema["columns"]}
    types_b = {c["name"]: c["type"] for c in b.schema["columns"]}
    common = [n for n in types_a if n in types_b]
    return DatasetDiff(
        a=a.ref,
        b=b.ref,
        rows=(a.num_rows, b.num_rows),
        quarantined=(a.num_quarantined, b.num_quarantined),
        added=[(n, t) for n, t in types_b.items() if n not in types_a],
        removed=[(n, t) for n, t in types_a.items() if n not in types_b],
        retyped=[(n, types_a[n], types_b[n]) for n in common if types_a[n] != types_b[n]],
        columns=[
            ColumnChange(n, column_stats(profile_a, n), column_stats(profile_b, n))
            for n in common
            if n in profile_a.columns and n in profile_b.columns
        ],
    )
