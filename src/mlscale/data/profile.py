"""Column profiles: counts, missing, min/max/mean/std, quantiles, histograms, top categories.

Built in one streaming pass with constant memory per column, and mergeable: the profiles of two
batches, parts or appended versions combine into the profile of the whole (``Profile.merge``,
``ProfileBuilder.merge``). The same type is a dataset's profile and a model version's drift reference.

Numeric and timestamp columns (timestamps as microseconds since the epoch):

- count, missing, min, max, mean and std are exact (running moments, merged with Chan's formula);
- quantiles and the histogram are exact while the column has at most ``EXACT_VALUES`` distinct
  values (kept as value counts). Past that, a KLL sketch (Apache DataSketches, ``k = KLL_K``) takes
  over: quantiles within about 1.7% of rank, histogram counts from its CDF; ``sampled`` says so.
- ``distinct`` is exact in the first case; past it, it is estimated by a CPC sketch (DataSketches,
  ``lg_k = CPC_LG_K``, about 1.5% relative error), the most compact of the DataSketches
  distinct-count sketches (about 1.3 KB against 2-4 KB for HLL).

Categorical columns count each category exactly up to ``MAX_CATEGORIES`` categories, in order of
first appearance; later new values are counted together as ``other`` and ``distinct`` becomes a CPC
estimate (``distinct_exact`` false).

The sketches travel in the JSON (``sketch``: base64 bytes, or the exact value counts when there are
at most ``STORED_VALUES``), so two stored profiles can be merged later.

The CPC distinct counter (with the vectorised hashing that makes it fast) and the helpers that feed
and store KLL sketches live in :mod:`mlscale.data.sketches`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

from mlscale.data.schema import BOOL, FLOAT, INT, STRING, TIMESTAMP, Column, Schema
from mlscale.data.sketches import CPC_LG_K as CPC_LG_K  # re-exported: the docstring names it
from mlscale.data.sketches import DistinctCounter, feed_counts, kll_from_text, kll_to_text
from mlscale.errors import SchemaError

MAX_CATEGORIES = 1_000
EXACT_VALUES = 50_000  # distinct values of a numeric column counted exactly before the KLL sketch
STORED_VALUES = 1_000  # exact value counts stored in the JSON up to this many values, else the KLL
KLL_K = 200
HISTOGRAM_BINS = 10
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_CATEGORY_PROBE_ROWS = 65_536
_COUNT_SPAN = 1 << 20  # widest range of whole numbers counted with np.bincount (8 MiB of counts)


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
        if values.type.unit != "us":
            values = pc.cast(values, pa.timestamp("us", values.type.tz))
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


# --- numeric and timestamp columns ---


def exact_counts(x: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray] | None:
    """``np.unique(x, return_counts=True)`` when ``x`` (no NaN, within ``[lo, hi]``) has at most
    ``EXACT_VALUES`` distinct values (or too few values to tell), else None.

    Without a sort, which was most of an ingest's profiling time: whole numbers in a narrow span
    (ages, counts, codes) are counted by position, other values by Arrow's hash table.

    >>> exact_counts(np.array([3.0, 1.0, 3.0, -0.0]), -0.0, 3.0)
    (array([0., 1., 3.]), array([1, 1, 2]))
    >>> exact_counts(np.array([2e15, -0.0, 0.5, 2e15, 0.0]), -0.0, 2e15)
    (array([0.e+00, 5.e-01, 2.e+15]), array([2, 1, 2]))
    >>> exact_counts(np.arange(3 * EXACT_VALUES) / 7, 0.0, 3 * EXACT_VALUES / 7) is None
    True
    """
    if hi - lo <= _COUNT_SPAN:
        offsets = x - lo
        whole = offsets.astype(np.int64)
        if np.array_equal(whole, offsets):
            counts = np.bincount(whole)
            present = np.flatnonzero(counts)
            return present + lo, counts[present]
    values = pa.array(x + 0.0)  # -0.0 becomes 0.0: one value, as np.unique has it
    # A head of twice the limit tells a high-cardinality column early, before counting it all.
    head = values[: 2 * EXACT_VALUES]
    if len(head) > EXACT_VALUES and pc.count_distinct(head).as_py() > EXACT_VALUES:
        return None
    found = pc.value_counts(values)
    distinct = np.asarray(found.field("values"))
    order = np.argsort(distinct)
    return distinct[order], np.asarray(found.field("counts"), dtype=np.int64)[order]


def _merge_counts(
    v1: np.ndarray, c1: np.ndarray, v2: np.ndarray, c2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    values, inverse = np.unique(np.concatenate([v1, v2]), return_inverse=True)
    counts = np.zeros(len(values), dtype=np.int64)
    np.add.at(counts, inverse, np.concatenate([c1, c2]))
    return values, counts


def _exact_quantiles(values: np.ndarray, counts: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """``np.quantile`` (linear) of the data the sorted value counts stand for, without expanding it."""
    cum = np.cumsum(counts)
    h = (cum[-1] - 1) * qs
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, cum[-1] - 1)
    below, above = (
        values[np.searchsorted(cum, lo, "right")],
        values[np.searchsorted(cum, hi, "right")],
    )
    return below + (h - lo) * (above - below)


class _Numeric:
    def __init__(self) -> None:
        self.n = 0
        self.missing = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        # Exact mode (no KLL yet): sorted distinct values and their counts.
        self.values = np.empty(0, dtype=np.float64)
        self.counts = np.empty(0, dtype=np.int64)
        # Sketch mode: quantiles and distinct values.
        self.kll: kll_doubles_sketch | None = None
        self.distinct = DistinctCounter()

    def update(self, values: pa.Array | pa.ChunkedArray) -> None:
        self.missing += values.null_count
        x = numeric_values(values)
        nan = np.isnan(x)
        if nan.any():
            x = x[~nan]
        if not len(x):
            return
        mean = float(x.mean())
        lo, hi = float(x.min()), float(x.max())
        self._add_moments(len(x), mean, float(np.square(x - mean).sum()), lo, hi)
        if self.kll is None:
            counted = exact_counts(x, lo, hi)
            if counted is not None and self._add_counts(*counted):
                return
            self._to_sketch()
        self._sketch().update(x if x.flags.writeable else x.copy())
        self.distinct.update_floats(x)

    def _add_moments(self, n: int, mean: float, m2: float, lo: float, hi: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        # Chan et al.: exact merge of two (count, mean, M2) summaries.
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.min, self.max = min(self.min, float(lo)), max(self.max, float(hi))
        self.n = total

    def _add_counts(self, values: np.ndarray, counts: np.ndarray) -> bool:
        """Merge value counts in exact mode; False (and nothing changed) past ``EXACT_VALUES``."""
        merged, total = _merge_counts(self.values, self.counts, values, counts)
        if len(merged) > EXACT_VALUES:
            return False
        self.values, self.counts = merged, total
        return True

    def _sketch(self) -> kll_doubles_sketch:
        if self.kll is None:
            raise RuntimeError("numeric profile is in exact mode")
        return self.kll

    def _to_sketch(self) -> None:
        if self.kll is None:
            self.kll = kll_doubles_sketch(KLL_K)
            feed_counts(self.kll, self.values, self.counts)
            self.distinct.update_floats(self.values)
            self.values, self.counts = self.values[:0], self.counts[:0]

    def merge(self, other: _Numeric) -> None:
        self.missing += other.missing
        if not other.n:
            return
        self._add_moments(other.n, other.mean, other.m2, other.min, other.max)
        if self.kll is None and other.kll is None and self._add_counts(other.values, other.counts):
            return
        self._to_sketch()
        if other.kll is None:
            feed_counts(self._sketch(), other.values, other.counts)
            self.distinct.update_floats(other.values)
        else:
            self._sketch().merge(other.kll)
            self.distinct.merge(other.distinct)

    def finish(self, type_: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": type_, "kind": column_kind(type_)}
        out.update(count=self.n + self.missing, missing=self.missing)
        if not self.n:
            sketch = {"m2": 0.0, "values": [], "counts": []}
            out.update(distinct=0, distinct_exact=True, sketch=sketch)
            return out
        deciles = np.linspace(0, 1, HISTOGRAM_BINS + 1)[1:-1]
        if self.kll is None:
            qs = _exact_quantiles(self.values, self.counts, np.array(QUANTILES))
            cuts = np.unique(_exact_quantiles(self.values, self.counts, deciles))
            bins = bin_index(self.values, list(cuts))
            counts = np.rint(np.bincount(bins, weights=self.counts, minlength=len(cuts) + 1))
            distinct = len(self.values)
        else:
            qs = np.array(self.kll.get_quantiles(list(QUANTILES)))
            cuts = np.unique(self.kll.get_quantiles(list(deciles)))
            cdf = self.kll.get_cdf(list(cuts), inclusive=True) if len(cuts) else [1.0]
            cum = np.round(np.array(cdf) * self.n).astype(np.int64)
            cum[-1] = self.n
            counts = np.diff(cum, prepend=0)
            distinct = int(min(self.n, max(1, round(self.distinct.estimate()))))
        out.update(
            min=self.min,
            max=self.max,
            mean=self.mean,
            std=float(np.sqrt(self.m2 / self.n)),
            quantiles={
                f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, qs, strict=True)
            },
            histogram={"cuts": [float(c) for c in cuts], "counts": [int(c) for c in counts]},
            sampled=self.kll is not None,
            distinct=distinct,
            distinct_exact=self.kll is None,
            sketch=self._stored_sketch(),
        )
        return out

    def _stored_sketch(self) -> dict[str, Any]:
        """What a later merge needs beyond the statistics: exact value counts when few, else KLL."""
        if self.kll is None and len(self.values) <= STORED_VALUES:
            return {"m2": self.m2, "values": self.values.tolist(), "counts": self.counts.tolist()}
        kll, distinct = self.kll, self.distinct
        if kll is None:
            kll = kll_doubles_sketch(KLL_K)
            feed_counts(kll, self.values, self.counts)
            distinct = DistinctCounter.of_floats(self.values)
        return {"m2": self.m2, "kll": kll_to_text(kll), "cpc": distinct.to_text()}

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> _Numeric:
        acc = cls()
        sketch = stats["sketch"]
        acc.missing = stats["missing"]
        acc.n = stats["count"] - stats["missing"]
        if not acc.n:
            return acc
        acc.mean, acc.m2 = stats["mean"], sketch["m2"]
        acc.min, acc.max = stats["min"], stats["max"]
        if "kll" in sketch:
            acc.kll = kll_from_text(sketch["kll"])
            acc.distinct = DistinctCounter.from_text(sketch["cpc"])
        else:
            acc.values = np.array(sketch["values"], dtype=np.float64)
            acc.counts = np.array(sketch["counts"], dtype=np.int64)
        return acc


# --- categorical columns ---


class _Categorical:
    def __init__(self) -> None:
        self.missing = 0
        self.keys: list[str] = []  # in order of first appearance, at most MAX_CATEGORIES
        self.counts = np.zeros(0, dtype=np.int64)
        self.other = 0
        self.distinct: DistinctCounter | None = None  # only once some value went to ``other``
        self._key_array: pa.Array | None = None

    def _known(self) -> pa.Array:
        if self._key_array is None or len(self._key_array) != len(self.keys):
            self._key_array = pa.array(self.keys, pa.string())
        return self._key_array

    def _admit(self, keys: list[str], counts: np.ndarray) -> None:
        self.keys += keys
        self.counts = np.concatenate([self.counts, counts.astype(np.int64)])

    def _distinct_sketch(self) -> DistinctCounter:
        """A CPC sketch of every value seen (the keys are all of them until one went to other)."""
        if self.distinct is not None:
            return self.distinct
        distinct = DistinctCounter()
        distinct.update_strings(self._known())
        return distinct

    def _sketch(self) -> DistinctCounter:
        self.distinct = self._distinct_sketch()
        return self.distinct

    def update(self, values: pa.Array | pa.ChunkedArray) -> None:
        self.missing += values.null_count
        v = pc.drop_null(category_values(values))
        if not len(v):
            return
        room = MAX_CATEGORIES - len(self.keys)
        if room and len(v) > _CATEGORY_PROBE_ROWS:
            # The head alone brings enough new values to fill the table: admit them (the same
            # values, in the same order, that counting the whole batch would) and skip to counting.
            head = pc.unique(v.slice(0, _CATEGORY_PROBE_ROWS))
            new = head.filter(pc.invert(pc.is_in(head, value_set=self._known())))
            if len(new) >= room:
                self._admit(new.slice(0, room).to_pylist(), np.zeros(room, dtype=np.int64))
                room = 0
        if room:
            vc = pc.value_counts(v)
            keys, counts = vc.field("values"), np.asarray(vc.field("counts"), dtype=np.int64)
            index = np.asarray(pc.fill_null(pc.index_in(keys, value_set=self._known()), -1))
            known = index >= 0
            self.counts[index[known]] += counts[known]
            new_keys, new_counts = keys.filter(pa.array(~known)), counts[~known]
            self._admit(new_keys.slice(0, room).to_pylist(), new_counts[:room])
            overflow = int(new_counts[room:].sum())
            if overflow or self.distinct is not None:
                self.other += overflow
                self._sketch().update_strings(keys)
            return
        codes = pc.fill_null(pc.index_in(v, value_set=self._known()), len(self.keys))
        binned = np.bincount(np.asarray(codes), minlength=len(self.keys) + 1)
        self.counts += binned[:-1]
        if binned[-1] or self.distinct is not None:
            self.other += int(binned[-1])
            self._sketch().update_strings(v)

    def merge(self, other: _Categorical) -> None:
        self.missing += other.missing
        index = np.asarray(
            pc.fill_null(pc.index_in(other._known(), value_set=self._known()), -1), dtype=np.int64
        )
        known = index >= 0
        self.counts[index[known]] += other.counts[known]
        room = MAX_CATEGORIES - len(self.keys)
        new = np.flatnonzero(~known)
        self._admit([other.keys[i] for i in new[:room]], other.counts[new[:room]])
        self.other += int(other.counts[new[room:]].sum()) + other.other
        if self.other:
            self._sketch().merge(other._distinct_sketch())

    def finish(self, type_: str) -> dict[str, Any]:
        ordered = dict(
            sorted(
                zip(self.keys, self.counts.tolist(), strict=True), key=lambda kv: (-kv[1], kv[0])
            )
        )
        present = sum(ordered.values()) + self.other
        out: dict[str, Any] = {
            "type": type_,
            "kind": "categorical",
            "count": present + self.missing,
            "missing": self.missing,
            "distinct": len(ordered),
            "distinct_exact": self.other == 0,
            "categories": ordered,
            "other": self.other,
        }
        if self.other:
            estimate = round(self._sketch().estimate())
            out["distinct"] = int(min(present, max(len(ordered) + 1, estimate)))
            out["sketch"] = {"cpc": self._sketch().to_text()}
        return out

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> _Categorical:
        acc = cls()
        acc.missing, acc.other = stats["missing"], stats["other"]
        acc._admit(list(stats["categories"]), np.array(list(stats["categories"].values())))
        if acc.other:
            acc.distinct = DistinctCounter.from_text(stats["sketch"]["cpc"])
        return acc


# --- the profile ---


@dataclass
class Profile:
    """Per-column statistics of a table; JSON round-trips; profiles of parts merge.

    >>> import pyarrow as pa
    >>> from mlscale.data.schema import Schema, Column
    >>> b = ProfileBuilder(Schema([Column("x", "float64"), Column("c", "string")]))
    >>> b.update(pa.record_batch({"x": [1.0, 2.0, None], "c": ["a", "a", "b"]}))
    >>> p = b.finish()
    >>> p.columns["x"]["mean"], p.columns["x"]["missing"], p.columns["c"]["categories"]
    (1.5, 1, {'a': 2, 'b': 1})
    >>> both = p.merge(p)
    >>> both.num_rows, both.columns["x"]["mean"], both.columns["c"]["categories"]
    (6, 1.5, {'a': 4, 'b': 2})
    """

    num_rows: int
    columns: dict[str, dict[str, Any]]

    def to_json(self) -> bytes:
        return json.dumps({"num_rows": self.num_rows, "columns": self.columns}, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Profile:
        obj = json.loads(data)
        return cls(num_rows=obj["num_rows"], columns=obj["columns"])

    def merge(self, other: Profile) -> Profile:
        """The profile of both tables together (columns must match by name and type)."""
        builder = ProfileBuilder.from_profile(self)
        builder.merge(ProfileBuilder.from_profile(other))
        return builder.finish()

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
    """Accumulates a :class:`Profile` over a stream of record batches; builders merge."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.num_rows = 0
        self._acc: dict[str, _Numeric | _Categorical] = {
            c.name: _Categorical() if column_kind(c.type) == "categorical" else _Numeric()
            for c in schema.columns
        }

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.num_rows += batch.num_rows
        for name, acc in self._acc.items():
            acc.update(batch.column(name))

    def merge(self, other: ProfileBuilder) -> ProfileBuilder:
        """Add what ``other`` has seen to this builder (``other`` is left as it was)."""
        _check_same_columns(self.schema, other.schema)
        self.num_rows += other.num_rows
        for name, acc in self._acc.items():
            acc.merge(other._acc[name])  # type: ignore[arg-type]
        return self

    def finish(self) -> Profile:
        columns = {c.name: self._acc[c.name].finish(c.type) for c in self.schema.columns}
        return Profile(num_rows=self.num_rows, columns=columns)

    @classmethod
    def from_profile(cls, profile: Profile) -> ProfileBuilder:
        """A builder holding what ``profile`` summarises, to merge into or to go on updating."""
        builder = cls(Schema([Column(n, s["type"]) for n, s in profile.columns.items()]))
        builder.num_rows = profile.num_rows
        for name, stats in profile.columns.items():
            if "sketch" not in stats and (stats["kind"] != "categorical" or stats["other"]):
                raise SchemaError(
                    f"column {name!r}: this profile was written without sketches (by an older "
                    "mlscale), so it cannot be merged; profile the data again to merge it"
                )
            builder._acc[name] = (
                _Categorical.from_stats(stats)
                if stats["kind"] == "categorical"
                else _Numeric.from_stats(stats)
            )
        return builder


def _check_same_columns(a: Schema, b: Schema) -> None:
    types_a = {c.name: c.type for c in a.columns}
    types_b = {c.name: c.type for c in b.columns}
    only_a, only_b = sorted(types_a.keys() - types_b), sorted(types_b.keys() - types_a)
    if only_a or only_b:
        raise SchemaError(
            "cannot merge profiles of different columns: "
            f"only in the first: {', '.join(map(repr, only_a)) or 'none'}; "
            f"only in the second: {', '.join(map(repr, only_b)) or 'none'}"
        )
    for name, type_ in types_a.items():
        if types_b[name] != type_:
            raise SchemaError(
                f"cannot merge profiles: column {name!r} is {type_} in the first and "
                f"{types_b[name]} in the second"
            )


def profile_table(table: pa.Table, schema: Schema) -> Profile:
    """The profile of a whole table in one call."""
    builder = ProfileBuilder(schema)
    builder.update(table)
    return builder.finish()
