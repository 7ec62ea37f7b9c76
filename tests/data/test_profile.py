import numpy as np
import pyarrow as pa
import pytest

from mlscale.data import profile as profile_module
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


def test_reservoir_keeps_quantiles_on_large_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_module, "RESERVOIR_SIZE", 2_000)
    x = np.arange(100_000, dtype=float)  # sorted: a first-batch sample would be useless
    builder = ProfileBuilder(Schema([Column("x", "float64")]))
    for part in np.array_split(x, 50):
        builder.update(pa.record_batch({"x": part}))
    stats = builder.finish().columns["x"]
    assert stats["sampled"] is True
    assert stats["quantiles"]["p50"] == pytest.approx(50_000, rel=0.05)
    assert stats["histogram"]["cuts"][0] == pytest.approx(10_000, rel=0.1)


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
    assert stats["distinct"] == 10 and stats["other"] == 15 and not stats["distinct_exact"]


def test_timestamps_display_as_dates() -> None:
    builder = ProfileBuilder(Schema([Column("t", "timestamp[us]")]))
    t = pa.array([0, 86_400_000_000], pa.timestamp("us"))
    builder.update(pa.record_batch({"t": t}))
    p = builder.finish()
    assert p.display_value("t", "max") == "1970-01-02 00:00:00"
