import numpy as np
import pyarrow as pa
import pytest

from mlscale.data import profile as profile_module
from mlscale.data.profile import Profile, ProfileBuilder, profile_table
from mlscale.data.schema import Column, Schema
from mlscale.errors import SchemaError
from mlscale.quickstart.loans import generate_loans

EXACT_KEYS = ("count", "missing", "min", "max", "other")


def _table(n: int = 12_000) -> tuple[pa.Table, Schema]:
    table = generate_loans(n, seed=3)
    table = table.set_column(1, "application_date", table.column(1).cast(pa.timestamp("us")))
    flags = np.random.default_rng(0).random(n) < 0.3
    table = table.append_column("flag", pa.array(flags).cast(pa.bool_()))
    types = {
        pa.string(): "string",
        pa.int64(): "int64",
        pa.float64(): "float64",
        pa.bool_(): "bool",
    }
    schema = Schema(
        [Column(f.name, types.get(f.type, "timestamp[us]")) for f in table.schema],
    )
    return table, schema


def _halves(table: pa.Table, schema: Schema) -> tuple[Profile, Profile]:
    half = table.num_rows // 2
    return profile_table(table.slice(0, half), schema), profile_table(table.slice(half), schema)


def _rank_error(data: np.ndarray, value: float, q: float) -> float:
    return abs(float(np.mean(data <= value)) - q)


@pytest.fixture(scope="module")
def loans() -> tuple[pa.Table, Schema, Profile]:
    table, schema = _table()
    return table, schema, profile_table(table, schema)


def test_merged_halves_equal_the_whole(loans: tuple[pa.Table, Schema, Profile]) -> None:
    table, schema, whole = loans
    merged = Profile.merge(*_halves(table, schema))
    assert merged.num_rows == whole.num_rows
    for name, expected in whole.columns.items():
        got = merged.columns[name]
        for key in EXACT_KEYS:
            assert got.get(key) == expected.get(key), (name, key)
        if expected["kind"] == "categorical":
            assert got["categories"] == expected["categories"], name
            if expected["distinct_exact"]:
                assert got["distinct"] == expected["distinct"], name
            else:
                assert got["distinct"] == pytest.approx(expected["distinct"], rel=0.05), name
            continue
        assert got["mean"] == pytest.approx(expected["mean"], rel=1e-12), name
        assert got["std"] == pytest.approx(expected["std"], rel=1e-9), name
        # Halves with more than STORED_VALUES distinct values were stored as KLL sketches.
        if got["sampled"]:
            data = np.sort(profile_module.numeric_values(table.column(name)))
            data = data[~np.isnan(data)]
            for key, value in got["quantiles"].items():
                assert _rank_error(data, value, int(key[1:]) / 100) < 0.03, (name, key)
            assert got["distinct"] == pytest.approx(expected["distinct"], rel=0.05), name
            assert expected["distinct"] > profile_module.STORED_VALUES, name
        else:
            assert got["quantiles"] == expected["quantiles"], name
            assert got["histogram"] == expected["histogram"], name
            assert got["distinct"] == expected["distinct"], name


def test_builders_merge_in_memory_exactly(loans: tuple[pa.Table, Schema, Profile]) -> None:
    table, schema, whole = loans
    half = table.num_rows // 2
    first, second = ProfileBuilder(schema), ProfileBuilder(schema)
    first.update(table.slice(0, half))
    second.update(table.slice(half))
    merged = first.merge(second).finish()
    # Below EXACT_VALUES distinct values, an in-memory merge loses nothing.
    for name in ("annual_income", "credit_score", "application_date"):
        for key in ("quantiles", "histogram", "distinct", "min", "max"):
            assert merged.columns[name][key] == whole.columns[name][key], (name, key)


def test_merged_profile_round_trips_and_merges_again(
    loans: tuple[pa.Table, Schema, Profile],
) -> None:
    table, schema, whole = loans
    merged = Profile.merge(*_halves(table, schema))
    again = Profile.from_json(merged.to_json())
    assert again == merged
    thrice = again.merge(whole)
    assert thrice.num_rows == 2 * table.num_rows
    assert thrice.columns["purpose"]["categories"] == {
        k: 2 * v for k, v in whole.columns["purpose"]["categories"].items()
    }
    assert thrice.columns["age"]["histogram"]["counts"] == [
        2 * c for c in whole.columns["age"]["histogram"]["counts"]
    ]


def test_sketch_mode_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_module, "EXACT_VALUES", 300)
    monkeypatch.setattr(profile_module, "STORED_VALUES", 100)
    x = np.random.default_rng(5).lognormal(3, 1, 20_000)
    schema = Schema([Column("x", "float64")])
    parts = [profile_table(pa.table({"x": p}), schema) for p in np.array_split(x, 3)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    stats = merged.columns["x"]
    assert stats["count"] == 20_000 and stats["sampled"] is True
    assert stats["min"] == x.min() and stats["max"] == x.max()
    assert sum(stats["histogram"]["counts"]) == 20_000
    for key, value in stats["quantiles"].items():
        assert _rank_error(x, value, int(key[1:]) / 100) < 0.03, key
    deciles = np.cumsum(stats["histogram"]["counts"])[:-1] / 20_000
    assert np.abs(deciles - np.linspace(0.1, 0.9, 9)).max() < 0.03
    assert stats["distinct"] == pytest.approx(20_000, rel=0.05)


def test_category_overflow_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_module, "MAX_CATEGORIES", 10)
    schema = Schema([Column("c", "string")])
    a = profile_table(pa.table({"c": ["x"] * 5 + [f"a{i}" for i in range(20)]}), schema)
    b = profile_table(pa.table({"c": ["x", "y", None] + [f"b{i}" for i in range(30)]}), schema)
    stats = a.merge(b).columns["c"]
    assert stats["categories"]["x"] == 6
    assert sum(stats["categories"].values()) + stats["other"] == 25 + 32
    assert stats["missing"] == 1 and not stats["distinct_exact"]
    assert stats["distinct"] == pytest.approx(52, abs=2)


def test_different_columns_do_not_merge() -> None:
    a = profile_table(pa.table({"x": [1.0], "c": ["a"]}), Schema([Column("x", "float64"), Column("c", "string")]))  # fmt: skip
    b = profile_table(pa.table({"x": [1.0], "d": ["a"]}), Schema([Column("x", "float64"), Column("d", "string")]))  # fmt: skip
    with pytest.raises(SchemaError, match=r"only in the first: 'c'; only in the second: 'd'"):
        a.merge(b)
    c = profile_table(pa.table({"x": ["1"], "c": ["a"]}), Schema([Column("x", "string"), Column("c", "string")]))  # fmt: skip
    with pytest.raises(SchemaError, match=r"column 'x' is float64 in the first and string"):
        a.merge(c)


def test_profiles_without_sketches_say_so() -> None:
    p = profile_table(pa.table({"x": [1.0, 2.0]}), Schema([Column("x", "float64")]))
    del p.columns["x"]["sketch"]
    with pytest.raises(SchemaError, match="without sketches"):
        p.merge(p)
