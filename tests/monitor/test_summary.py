"""Summaries: parts merge into the whole; violations, unseen values and typed labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mlscale.models.signature import Feature, Signature
from mlscale.monitor import Summarizer, WindowSummary, build_reference

SIG = Signature(
    "binary",
    "y",
    [Feature("x", "float64", "numeric"), Feature("c", "string", "categorical", ["a", "b"])],
    classes=[0, 1],
)


def log_rows(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    proba = rng.uniform(0, 1, n)
    return pa.table(
        {
            "f.x": pa.array(rng.normal(0, 1, n), mask=rng.uniform(0, 1, n) < 0.1),
            "f.c": rng.choice(["a", "b", "zz", "yy"], n, p=[0.5, 0.4, 0.07, 0.03]),
            "prediction": (proba > 0.5).astype(np.float64),  # ints are logged as float64
            "proba.1": proba,
        }
    )


REF = build_reference(
    pa.table({"x": np.random.default_rng(0).normal(0, 1, 2_000), "c": ["a", "b"] * 1_000}),
    SIG,
    np.column_stack([np.full(2_000, 0.4), np.full(2_000, 0.6)]),
)


def test_summaries_of_parts_merge_into_the_summary_of_the_whole() -> None:
    rows = log_rows(3_000, seed=1)
    whole = Summarizer(REF).summarize(rows)[0]
    buckets = np.arange(3_000) % 7  # interleaved buckets
    parts = Summarizer(REF).summarize(rows, buckets)
    merged = WindowSummary.empty(REF)
    for part in parts.values():
        merged.merge(WindowSummary.from_bytes(part.to_bytes(), REF))
    assert merged.rows == whole.rows == 3_000 and len(parts) == 7
    for a, b in ((merged.features, whole.features), (merged.outputs, whole.outputs)):
        for name in a:
            assert a[name].counts.tolist() == b[name].counts.tolist(), name
            assert a[name].missing == b[name].missing
    x = merged.features["x"]
    assert x.fine.sum() == x.count and np.isclose(x.sums.sum(), whole.features["x"].sums.sum())
    assert len(x.sample.values) == 500 and x.sample.seen == x.count
    assert set(x.sample.values) <= set(rows["f.x"].drop_null().to_pylist())
    c = merged.features["c"]
    assert c.unseen == whole.features["c"].unseen and set(c.unseen) == {"zz", "yy"}
    assert c.counts[-1] == sum(c.unseen.values())
    labels = merged.outputs["prediction"]
    assert labels.counts.sum() == 3_000 and labels.counts[-1] == 0  # 1.0 matched class 1


def test_absent_and_mistyped_columns_are_violations() -> None:
    rows = log_rows(100, seed=2).drop_columns(["f.x"])
    rows = rows.set_column(rows.column_names.index("f.c"), "f.c", pa.array(np.arange(100.0)))
    s = Summarizer(REF).summarize(rows)[0]
    assert (s.features["x"].violations, s.features["x"].count) == (100, 0)
    assert (s.features["c"].violations, s.features["c"].count) == (100, 0)
    assert s.outputs["proba.1"].violations == 0 and s.outputs["proba.1"].count == 100
    nulls = pa.table({"f.x": pa.nulls(5), "f.c": pa.nulls(5)})
    s = Summarizer(REF, outputs=False).summarize(nulls)[0]
    assert (s.features["x"].missing, s.features["c"].missing) == (5, 5)
