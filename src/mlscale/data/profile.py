"""Column profiles: counts, missing, min/max/mean/std, quantiles, histograms, top categories.

Built in one streaming pass (constant memory per column: running moments, a fixed-size reservoir
sample for quantiles and histogram edges, capped category counts). The same type is a dataset's
profile and a model version's drift reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.schema import BOOL, FLOAT, INT, STRING, TIMESTAMP, Schema

RESERVOIR_SIZE = 50_000
MAX_CATEGORIES = 1_000
HISTOGRAM_BINS = 10
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def column_kind(type_: str) -> str:
    """``numeric``, ``timestamp`` or ``categorical``: how a column is summarised and compared."""
    if type_ in (INT, FLOAT):
        return "numeric"
    if type_ == TIMESTAMP:
        return "timestamp"
    if type_ in (STRING, BOOL):
        return "categorical"
    raise ValueError(f"unknown column type {type_!r}")


def numeric_values(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Non-null values as float64 (timestamps as microseconds since the epoch)."""
    values = pc.drop_null(values)
    if pa.types.is_timestamp(values.type):
        values = pc.cast(values, pa.int64())
    return np.asarray(pc.cast(values, pa.float64()), dtype=np.float64)


def category_values(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Values as strings (booleans as ``true``/``false``), nulls kept."""
    if pa.types.is_boolean(values.type):
        values = pc.if_else(values, "true", "false")
    return pc.cast(values, pa.string())


def bin_index(values: np.ndarray, cuts: list[float]) -> np.ndarray:
    """Bin of each value against interior cut points: bin i holds cuts[i-1] < v <= cuts[i]."""
    return np.searchsorted(np.asarray(cuts, dtype=np.float64), values, side="left")


class _Numeric:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.n = 0
        self.missing = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.reservoir = np.empty(0, dtype=np.float64)

    def update(self, values: pa.Array) -> None:
        self.missing += values.null_count
        x = numeric_values(values)
        x = x[~np.isnan(x)]
        m = len(x)
        if not m:
            return
        mean, m2 = float(x.mean()), float(((x - x.mean()) ** 2).sum())
        total = self.n + m
        delta = mean - self.mean
        # Chan et al.: exact merge of two (count, mean, M2) summaries.
        self.m2 += m2 + delta * delta * self.n * m / total
        self.mean += delta * m / total
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        self._sample(x)
        self.n = total

    def _sample(self, x: np.ndarray) -> None:
        room = RESERVOIR_SIZE - len(self.reservoir)
        if room > 0:
            self.reservoir = np.concatenate([self.reservoir, x[:room]])
            start, x = self.n + min(room, len(x)), x[room:]
        else:
            start = self.n
        if not len(x):
            return
        # Algorithm R, vectorised: the t-th value (0-based) replaces a random slot w.p. K/(t+1).
        t = np.arange(start, start + len(x), dtype=np.float64)
        keep = self.rng.random(len(x)) < RESERVOIR_SIZE / (t + 1)
        slots = self.rng.integers(0, RESERVOIR_SIZE, int(keep.sum()))
        self.reservoir[slots] = x[keep]

    def finish(self, type_: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": type_, "kind": column_kind(type_)}
        out.update(count=self.n + self.missing, missing=self.missing)
        if not self.n:
            return out
        sample = np.sort(self.reservoir)
        qs = np.quantile(sample, QUANTILES)
        cuts = np.unique(np.quantile(sample, np.linspace(0, 1, HISTOGRAM_BINS + 1)[1:-1]))
        counts = np.bincount(bin_index(sample, list(cuts)), minlength=len(cuts) + 1)
        scale = self.n / len(sample)
        out.update(
            min=self.min,
            max=self.max,
            mean=self.mean,
            std=float(np.sqrt(self.m2 / self.n)),
            quantiles={
                f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, qs, strict=True)
            },
            histogram={
                "cuts": [float(c) for c in cuts],
                "counts": [round(float(c) * scale) for c in counts],
            },
            sampled=len(sample) < self.n,
        )
        return out


class _Categorical:
    def __init__(self) -> None:
        self.missing = 0
        self.counts: dict[str, int] = {}
        self.other = 0

    def update(self, values: pa.Array) -> None:
        self.missing += values.null_count
        vc = pc.value_counts(pc.drop_null(category_values(values)))
        for value, count in zip(
            vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True
        ):
            if value in self.counts:
                self.counts[value] += count
            elif len(self.counts) < MAX_CATEGORIES:
                self.counts[value] = count
            else:
                self.other += count

    def finish(self, type_: str) -> dict[str, Any]:
        ordered = dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        present = sum(ordered.values()) + self.other
        return {
            "type": type_,
            "kind": "categorical",
            "count": present + self.missing,
            "missing": self.missing,
            "distinct": len(ordered),
            "distinct_exact": self.other == 0,
            "categories": ordered,
            "other": self.other,
        }


@dataclass
class Profile:
    """Per-column statistics of a table; JSON round-trips.

    >>> import pyarrow as pa
    >>> from mlscale.data.schema import Schema, Column
    >>> b = ProfileBuilder(Schema([Column("x", "float64"), Column("c", "string")]))
    >>> b.update(pa.record_batch({"x": [1.0, 2.0, None], "c": ["a", "a", "b"]}))
    >>> p = b.finish()
    >>> p.columns["x"]["mean"], p.columns["x"]["missing"], p.columns["c"]["categories"]
    (1.5, 1, {'a': 2, 'b': 1})
    """

    num_rows: int
    columns: dict[str, dict[str, Any]]

    def to_json(self) -> bytes:
        return json.dumps({"num_rows": self.num_rows, "columns": self.columns}, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Profile:
        obj = json.loads(data)
        return cls(num_rows=obj["num_rows"], columns=obj["columns"])

    def display_value(self, column: str, key: str) -> str:
        """A statistic formatted for people (timestamps as ISO dates)."""
        col = self.columns[column]
        value = col.get(key)
        if value is None:
            return ""
        if col["kind"] == "timestamp" and key in ("min", "max", "mean"):
            return datetime.fromtimestamp(value / 1e6, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)


class ProfileBuilder:
    """Accumulates a :class:`Profile` over a stream of record batches."""

    def __init__(self, schema: Schema, *, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.schema = schema
        self.num_rows = 0
        self._acc: dict[str, _Numeric | _Categorical] = {
            c.name: _Categorical() if column_kind(c.type) == "categorical" else _Numeric(rng)
            for c in schema.columns
        }

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.num_rows += batch.num_rows
        for name, acc in self._acc.items():
            acc.update(batch.column(name))

    def finish(self) -> Profile:
        columns = {c.name: self._acc[c.name].finish(c.type) for c in self.schema.columns}
        return Profile(num_rows=self.num_rows, columns=columns)


def profile_table(table: pa.Table, schema: Schema) -> Profile:
    builder = ProfileBuilder(schema)
    builder.update(table)
    return builder.finish()
