"""Window summaries: rows of the prediction log counted on a reference's bins, mergeable.

A :class:`WindowSummary` holds, per feature and per output column: counts on the reference bins
(numeric: the coarse and the fine reference edges, values below and above the training range in
the outer bins, and the sum of the values in each fine bin; categorical: the reference
categories plus one bin for unseen values), the missing count, the count of schema violations
(the column absent from the log or of the wrong type), and for numeric columns a bottom-k
sample; for categorical ones the most frequent unseen values. Its size depends on the
reference, never on the number of rows, and two summaries of the same reference merge into the
summary of both (counts and sums add, samples merge), so per-minute summaries combine into any
window in O(minutes x bins). The fine counts are exact, where a KLL sketch would be randomised
(its rank error showed as a Wasserstein distance of 0.02-0.05 between two samples of one
distribution) and five times slower to feed.

:class:`Summarizer` builds the summaries of many time buckets from one Arrow table at once:
categorical counts are vectorised over all buckets; numeric values are sorted per bucket and
cut at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.profile import category_values
from mlscale.monitor.reference import (
    FEATURE_PREFIX,
    CategoricalReference,
    ColumnReference,
    NumericReference,
    Reference,
    fine_histogram,
)
from mlscale.monitor.sample import WINDOW_SAMPLE, Sample

MAX_UNSEEN = 50  # distinct unseen categories named per column; the rest are only counted


@dataclass
class NumericSummary:
    counts: np.ndarray  # on the reference's coarse bins
    fine: np.ndarray  # on its fine bins
    sums: np.ndarray  # of the values in each fine bin
    missing: int = 0
    violations: int = 0
    sample: Sample = field(default_factory=Sample)
    kind: str = "numeric"

    @property
    def count(self) -> int:
        """Values present (not missing, not violations)."""
        return int(self.counts.sum())

    def merge(self, other: NumericSummary) -> None:
        self.counts += other.counts
        self.fine += other.fine
        self.sums += other.sums
        self.missing += other.missing
        self.violations += other.violations
        self.sample.merge(other.sample)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "fine": self.fine,
            "sums": self.sums,
            "missing": self.missing,
            "violations": self.violations,
            "sample": self.sample.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericSummary:
        return cls(
            np.array(d["counts"], dtype=np.int64),
            np.array(d["fine"], dtype=np.int64),
            np.array(d["sums"], dtype=np.float64),
            d["missing"],
            d["violations"],
            Sample.from_dict(d["sample"]),
        )


@dataclass
class CategoricalSummary:
    counts: np.ndarray  # reference categories, then unseen
    missing: int = 0
    violations: int = 0
    unseen: dict[str, int] = field(default_factory=dict)
    kind: str = "categorical"

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def merge(self, other: CategoricalSummary) -> None:
        self.counts += other.counts
        self.missing += other.missing
        self.violations += other.violations
        if other.unseen:
            for key, n in other.unseen.items():
                self.unseen[key] = self.unseen.get(key, 0) + n
            if len(self.unseen) > MAX_UNSEEN:
                top = sorted(self.unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_UNSEEN]
                self.unseen = dict(top)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "missing": self.missing,
            "violations": self.violations,
            "unseen": self.unseen,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalSummary:
        return cls(np.array(d["counts"], np.int64), d["missing"], d["violations"], d["unseen"])


ColumnSummary = NumericSummary | CategoricalSummary


def empty_summary(ref: ColumnReference) -> ColumnSummary:
    if isinstance(ref, NumericReference):
        fine = len(ref.fine_counts)
        return NumericSummary(
            np.zeros(len(ref.counts), np.int64), np.zeros(fine, np.int64), np.zeros(fine)
        )
    return CategoricalSummary(np.zeros(len(ref.counts), dtype=np.int64))


@dataclass
class WindowSummary:
    """Everything drift and quality need about the rows of one window.

    ``start`` and ``end`` are the epoch seconds the window covers (end exclusive); ``rows`` the
    rows it holds.

    >>> from mlscale.models.signature import Feature, Signature
    >>> sig = Signature("regression", "y", [Feature("x", "float64", "numeric")])
    >>> ref = Reference("regression", 3, {"x": _numeric_ref()}, {})
    >>> s = Summarizer(ref, feature_prefix="").summarize(pa.table({"x": [1.0, None, 99.0]}))[0]
    >>> s.rows, s.features["x"].missing, s.features["x"].counts.tolist()
    (3, 1, [0, 1, 0, 1])
    >>> s.merge(s).features["x"].counts.tolist()
    [0, 2, 0, 2]
    """

    rows: int
    features: dict[str, ColumnSummary]
    outputs: dict[str, ColumnSummary]
    start: float = 0.0
    end: float = 0.0

    @classmethod
    def empty(cls, reference: Reference) -> WindowSummary:
        return cls(
            0,
            {k: empty_summary(v) for k, v in reference.features.items()},
            {k: empty_summary(v) for k, v in reference.outputs.items()},
        )

    def merge(self, other: WindowSummary) -> WindowSummary:
        """Add ``other`` (a summary on the same reference) to this one; returns self."""
        if other.rows:
            self.start = min(self.start, other.start) if self.rows else other.start
            self.end = max(self.end, other.end)
        self.rows += other.rows
        for mine, theirs in ((self.features, other.features), (self.outputs, other.outputs)):
            for name, summary in theirs.items():
                mine[name].merge(summary)  # type: ignore[arg-type]
        return self

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "rows": self.rows,
                "start": self.start,
                "end": self.end,
                "features": {k: v.to_dict() for k, v in self.features.items()},
                "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )

    @classmethod
    def from_bytes(cls, data: bytes, reference: Reference) -> WindowSummary:
        obj = orjson.loads(data)

        def load(refs: dict[str, ColumnReference], stored: dict[str, Any]) -> dict[str, Any]:
            return {
                name: NumericSummary.from_dict(stored[name])
                if isinstance(ref, NumericReference)
                else CategoricalSummary.from_dict(stored[name])
                for name, ref in refs.items()
            }

        return cls(
            obj["rows"],
            load(reference.features, obj["features"]),
            load(reference.outputs, obj["outputs"]),
            obj["start"],
            obj["end"],
        )


def _numeric_ref() -> NumericReference:  # for the doctest above: bins [<1], [1], (1, 2], [>2]
    edges = np.array([np.nextafter(1.0, 0.0), 1.0, 2.0])
    counts = np.array([0, 1, 2, 0])
    sums = np.array([0.0, 1.0, 4.0, 0.0])
    return NumericReference(edges, counts, 0, 1.5, 0.5, 1.0, 2.0, edges, counts, sums, None)


# --- building summaries from rows ---


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


class Summarizer:
    """Turns rows into per-bucket summaries on ``reference``'s bins.

    ``feature_prefix``: how features are named in the rows (``f.`` in the prediction log, none
    in a plain file); ``outputs``: whether the rows carry the model's outputs.
    """

    def __init__(
        self,
        reference: Reference,
        *,
        feature_prefix: str = FEATURE_PREFIX,
        outputs: bool = True,
        sample_size: int = WINDOW_SAMPLE,
    ) -> None:
        self.reference = reference
        self.sample_size = sample_size
        self._columns: list[tuple[str, str, bool, ColumnReference]] = [
            (name, feature_prefix + name, True, ref) for name, ref in reference.features.items()
        ]
        if outputs:
            self._columns += [(name, name, False, ref) for name, ref in reference.outputs.items()]

    def summarize(
        self,
        table: pa.Table | pa.RecordBatch,
        buckets: np.ndarray | None = None,
        *,
        seed: int = 0,
    ) -> dict[int, WindowSummary]:
        """One summary per distinct value of ``buckets`` (one int per row; default: all in 0)."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        n = table.num_rows
        if buckets is None:
            keys, inverse = np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        else:
            keys, inverse = np.unique(np.asarray(buckets, dtype=np.int64), return_inverse=True)
        if n and np.any(np.diff(inverse) < 0):  # contiguous buckets, for the per-bucket slices
            order = np.argsort(inverse, kind="stable")
            table, inverse = table.take(pa.array(order)), inverse[order]
        m = len(keys) if n else 0
        bounds = np.searchsorted(inverse, np.arange(m + 1))
        rows = np.diff(bounds)
        rng = np.random.default_rng(seed)
        out = {int(k): WindowSummary(int(rows[b]), {}, {}) for b, k in enumerate(keys[:m])}
        summaries = list(out.values())
        for name, column_name, is_feature, ref in self._columns:
            column = table.column(column_name) if column_name in table.column_names else None
            if isinstance(ref, NumericReference):
                cols = self._numeric(column, ref, bounds, rows, rng)
            else:
                cols = self._categorical(column, ref, inverse, rows)
            for summary, col in zip(summaries, cols, strict=True):
                (summary.features if is_feature else summary.outputs)[name] = col
        return out

    def _numeric(
        self,
        column: pa.ChunkedArray | None,
        ref: NumericReference,
        bounds: np.ndarray,
        rows: np.ndarray,
        rng: np.random.Generator,
    ) -> list[NumericSummary]:
        out = [empty_summary(ref) for _ in rows]
        if column is None or not (_is_numeric(column.type) or pa.types.is_null(column.type)):
            for summary, r in zip(out, rows, strict=True):
                summary.violations = int(r)
            return out  # type: ignore[return-value]
        if pa.types.is_null(column.type):
            for summary, r in zip(out, rows, strict=True):
                summary.missing = int(r)
            return out  # type: ignore[return-value]
        x = np.asarray(column.cast(pa.float64()).to_numpy(), dtype=np.float64)  # nulls: NaN
        starts = ref.coarse_starts
        for b, summary in enumerate(out):
            assert isinstance(summary, NumericSummary)
            values = x[bounds[b] : bounds[b + 1]]
            values = values[~np.isnan(values)]
            summary.missing = int(rows[b]) - len(values)
            summary.sample = Sample(self.sample_size)
            if len(values):
                # Sorting (SIMD in numpy) then cutting at the edges beats binning value by value.
                summary.fine, summary.sums = fine_histogram(np.sort(values), ref.fine_edges)
                summary.counts = np.add.reduceat(summary.fine, starts)
                summary.sample.offer(values, rng)
        return out  # type: ignore[return-value]

    def _categorical(
        self,
        column: pa.ChunkedArray | None,
        ref: CategoricalReference,
        inverse: np.ndarray,
        rows: np.ndarray,
    ) -> list[CategoricalSummary]:
        m, k = len(rows), len(ref.categories)
        values = None if column is None else _category_column(column, ref)
        if values is None:
            return [CategoricalSummary(np.zeros(k + 1, np.int64), violations=int(r)) for r in rows]
        value_set, values = values
        codes = pc.index_in(values, value_set=value_set)
        codes = np.asarray(pc.fill_null(codes, k), dtype=np.int64)
        codes[np.asarray(values.is_null())] = k + 1  # missing after unseen
        counts = np.bincount(inverse * (k + 2) + codes, minlength=m * (k + 2)).reshape(m, k + 2)
        out = [
            CategoricalSummary(counts[b, : k + 1].astype(np.int64), int(counts[b, k + 1]))
            for b in range(m)
        ]
        unseen_rows = codes == k
        if unseen_rows.any():
            named = (
                pa.table(
                    {
                        "b": inverse[unseen_rows],
                        "v": pc.cast(values.filter(pa.array(unseen_rows)), pa.string()),
                    }
                )
                .group_by(["b", "v"])
                .aggregate([("v", "count")])
            )
            for b, v, c in zip(
                named["b"].to_pylist(),
                named["v"].to_pylist(),
                named["v_count"].to_pylist(),
                strict=True,
            ):
                out[b].merge(CategoricalSummary(np.zeros(k + 1, np.int64), unseen={v: c}))
        return out


def _category_column(
    column: pa.ChunkedArray, ref: CategoricalReference
) -> tuple[pa.Array, pa.ChunkedArray] | None:
    """The value set to look values up in and the values, or None for a column of the wrong type."""
    t = column.type
    if pa.types.is_null(t):
        return pa.array(ref.categories, pa.string()), pc.cast(column, pa.string())
    if ref.labels is not None:  # class labels: matched as typed values (1 == 1.0 in the log)
        try:
            return pa.array(ref.labels).cast(t), column
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
    if pa.types.is_dictionary(t):
        column = pc.cast(column, t.value_type)
        t = t.value_type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t)):
        return None
    return pa.array(ref.categories, pa.string()), pc.cast(category_values(column), pa.string())
