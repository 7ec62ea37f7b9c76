import numpy as np
import pyarrow as pa
import pytest

from mlscale.data import profile as profile_module
from mlscale.data import sketches
from mlscale.data.profile import Profile, ProfileBuilder
from mlscale.data.schema import Column, Schema


def test_streamed_moments_match_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(10, 3, 30_000)
    builder = ProfileBuilder(Schema([Column("x", "float64")]))
    for part in np.array_split(x, 7):
        builder.update(pa.record_batch({"x": part}))
    stats = builder.finish().columns["x"]
    assert stats["count"] == 30_000
    assert stats["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert stats["std"] == pytest.approx(x.std(), rel=1e-9)
    assert stats["min"] == x.min() and stats["max"] == x.max()
    assert sum(stats["histogram"]["counts"]) == 30_000
    assert stats["quantiles"]["p50"] == pytest.approx(np.median(x), rel=1e-9)


def test_sketch_keeps_quantiles_on_large_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    # Was a reservoir-sample test; past EXACT_VALUES distinct values a KLL sketch takes over.
    monkeypatch.setattr(profile_module, "EXACT_VALUES", 2_000)
    x = np.arange(100_000, dtype=float)  # sorted: a first-batch sample would be useless
    builder = ProfileBuilder(Schema([Column("x", "float64")]))
    for part in np.array_split(x, 50):
        builder.update(pa.record_batch({"x": part}))
    stats = builder.finish().columns["x"]
    assert stats["sampled"] is True and stats["distinct_exact"] is False
    assert stats["quantiles"]["p50"] == pytest.approx(50_000, rel=0.05)
    assert stats["histogram"]["cuts"][0] == pytest.approx(10_000, rel=0.1)
    assert sum(stats["histogram"]["counts"]) == 100_000
    assert stats["distinct"] == pytest.approx(100_000, rel=0.05)


def test_categories_missing_and_json_round_trip() -> None:
    builder = ProfileBuilder(Schema([Column("c", "string"), Column("b", "bool")]))
    builder.update(pa.record_batch({"c": ["x", "y", None, "x"], "b": [True, False, None, True]}))
    p = builder.finish()
    assert p.columns["c"]["categories"] == {"x": 2, "y": 1}
    assert p.columns["c"]["missing"] == 1
    assert p.columns["b"]["categories"] == {"true": 2, "false": 1}
    assert Profile.from_json(p.to_json()) == p


def test_category_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_module, "MAX_CATEGORIES", 10)
    builder = ProfileBuilder(Schema([Column("c", "string")]))
    builder.update(pa.record_batch({"c": [f"v{i}" for i in range(25)]}))
    stats = builder.finish().columns["c"]
    assert len(stats["categories"]) == 10 and stats["other"] == 15 and not stats["distinct_exact"]
    # ``distinct`` used to be the number of categories kept; it is now the sketch's estimate.
    assert stats["distinct"] == 25


def test_timestamps_display_as_dates() -> None:
    builder = ProfileBuilder(Schema([Column("t", "timestamp[us]")]))
    t = pa.array([0, 86_400_000_000], pa.timestamp("us"))
    builder.update(pa.record_batch({"t": t}))
    p = builder.finish()
    assert p.display_value("t", "max") == "1970-01-02 00:00:00"


def test_discrete_column_stays_exact_on_many_rows() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(18, 80, 200_000).astype(float)
    builder = ProfileBuilder(Schema([Column("age", "int64")]))
    for part in np.array_split(x, 4):
        builder.update(pa.record_batch({"age": part.astype(np.int64)}))
    stats = builder.finish().columns["age"]
    assert stats["sampled"] is False and stats["distinct_exact"] is True
    assert stats["distinct"] == len(np.unique(x))
    assert stats["quantiles"]["p25"] == np.quantile(x, 0.25)
    cuts = stats["histogram"]["cuts"]
    expected = np.bincount(profile_module.bin_index(x, cuts), minlength=len(cuts) + 1)
    assert stats["histogram"]["counts"] == expected.tolist()


def test_high_cardinality_categories_keep_first_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_module, "MAX_CATEGORIES", 50)
    monkeypatch.setattr(profile_module, "_CATEGORY_PROBE_ROWS", 100)
    values = [f"id{i}" for i in range(5_000)] + ["id3"] * 10 + [None] * 7
    builder = ProfileBuilder(Schema([Column("c", "string")]))
    builder.update(pa.table({"c": values}))  # a head of 100 rows fills the table of 50
    builder.update(pa.table({"c": ["id1", "new", None]}))
    stats = builder.finish().columns["c"]
    assert set(stats["categories"]) == {f"id{i}" for i in range(50)}
    assert stats["categories"]["id3"] == 11 and stats["categories"]["id1"] == 2
    assert stats["other"] == 4_950 + 1 and stats["missing"] == 8
    assert stats["count"] == len(values) + 3
    assert stats["distinct"] == pytest.approx(5_001, rel=0.05) and not stats["distinct_exact"]


def test_timestamps_in_other_units_profile_as_microseconds() -> None:
    builder = ProfileBuilder(Schema([Column("t", "timestamp[us]")]))
    builder.update(pa.table({"t": pa.array([0, 86_400], pa.timestamp("s"))}))
    assert builder.finish().columns["t"]["max"] == 86_400 * 1e6


@pytest.mark.parametrize("kind", ["floats", "strings"])
def test_distinct_sketch_is_what_feeding_every_value_gives(kind: str) -> None:
    from datasketches import cpc_sketch, cpc_union

    rng = np.random.default_rng(2)
    if kind == "floats":
        x = np.concatenate([rng.normal(0, 1e6, 30_000), rng.integers(0, 99, 500), [0.0, -0.0]])
        x = np.concatenate([x, x[::7]])  # values seen again in later batches
        items: list = x.tolist()
        ours = sketches.DistinctCounter()
        for part in np.array_split(x, 4):  # later batches skip the coupons already fed
            ours.update_floats(part)
    else:
        lengths = rng.integers(0, 40, 30_000)
        items = ["".join(chr(0x61 + (i + j) % 26) for j in range(n)) + "é" * (i % 3) + str(i)
                 for i, n in enumerate(lengths)] + ["", "", "a"]  # fmt: skip
        ours = sketches.DistinctCounter()
        ours.update_strings(pa.chunked_array([items[:1000], items[1000:]]))
    every = cpc_sketch(sketches.CPC_LG_K)
    for item in items:
        every.update(item)
    union = cpc_union(sketches.CPC_LG_K)
    union.update(every)
    assert ours.sketch.serialize() == union.get_result().serialize()
