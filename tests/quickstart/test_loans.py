from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from mlscale.errors import ConfigError
from mlscale.quickstart.loans import COLUMNS, LABEL, generate_loans, write_loans_csv

N = 20_000


@pytest.fixture(scope="module")
def base() -> pa.Table:
    return generate_loans(N, seed=7)


@pytest.fixture(scope="module")
def shifted() -> pa.Table:
    return generate_loans(N, seed=7, shift=True)


def _mean(table: pa.Table, name: str) -> float:
    return pc.mean(table.column(name)).as_py()


def _share(table: pa.Table, name: str, value: str) -> float:
    return pc.mean(pc.equal(table.column(name), value).cast(pa.float64())).as_py()


def test_columns_and_types(base: pa.Table) -> None:
    assert base.column_names == [*COLUMNS, LABEL]
    assert base.num_rows == N
    types = dict(zip(base.column_names, base.schema.types, strict=True))
    assert types["loan_id"] == pa.string()
    assert types["application_date"] == pa.timestamp("s")
    for name in ("age", "term_months", "credit_score", "num_open_accounts", LABEL):
        assert types[name] == pa.int64(), name
    for name in ("annual_income", "loan_amount", "interest_rate", "employment_years"):
        assert types[name] == pa.float64(), name
    for name in ("home_ownership", "purpose", "state"):
        assert types[name] == pa.string(), name


def test_values_look_like_loans(base: pa.Table) -> None:
    ids = base.column("loan_id").to_pylist()
    assert ids[0] == "L000001"
    assert len(set(ids)) == N
    assert pc.min(base.column("age")).as_py() >= 18
    assert pc.max(base.column("age")).as_py() <= 80
    assert pc.min(base.column("credit_score")).as_py() >= 300
    assert pc.max(base.column("credit_score")).as_py() <= 850
    assert set(pc.unique(base.column("term_months")).to_pylist()) == {12, 24, 36, 48, 60}
    assert set(pc.unique(base.column("home_ownership")).to_pylist()) == {
        "RENT",
        "OWN",
        "MORTGAGE",
        "OTHER",
    }
    assert len(pc.unique(base.column("purpose"))) == 7
    assert len(pc.unique(base.column("state"))) == 10
    assert pc.unique(pc.year(base.column("application_date"))).to_pylist() == [2025]


@pytest.mark.parametrize(
    ("name", "rate"),
    [("annual_income", 0.03), ("credit_score", 0.02), ("employment_years", 0.05)],
)
def test_missing_rates(base: pa.Table, name: str, rate: float) -> None:
    assert base.column(name).null_count / N == pytest.approx(rate, abs=0.01)


def test_complete_columns_have_no_missing(base: pa.Table) -> None:
    partial = {"annual_income", "credit_score", "employment_years"}
    assert all(base.column(c).null_count == 0 for c in base.column_names if c not in partial)


def test_default_rate(base: pa.Table) -> None:
    assert 0.15 <= _mean(base, LABEL) <= 0.25


def test_label_has_signal(base: pa.Table) -> None:
    # Defaulters have visibly worse credit and higher rates; the full check is a GBDT AUC near 0.8.
    bad = pc.equal(base.column(LABEL), 1)
    worse = base.filter(bad)
    better = base.filter(pc.invert(bad))
    assert _mean(worse, "credit_score") < _mean(better, "credit_score") - 20
    assert _mean(worse, "interest_rate") > _mean(better, "interest_rate") + 1


def test_label_false_keeps_the_features(base: pa.Table) -> None:
    unlabelled = generate_loans(N, seed=7, label=False)
    assert unlabelled.column_names == list(COLUMNS)
    assert unlabelled.equals(base.drop_columns([LABEL]))


def test_same_seed_same_table_other_seed_other_table(base: pa.Table) -> None:
    assert generate_loans(N, seed=7).equals(base)
    assert not generate_loans(N, seed=8).equals(base)


@pytest.mark.parametrize("n", [0, 1, 7])
def test_row_counts(n: int) -> None:
    assert generate_loans(n).num_rows == n


def test_shift_moves_some_columns_and_not_others(base: pa.Table, shifted: pa.Table) -> None:
    assert _mean(shifted, "annual_income") < 0.8 * _mean(base, "annual_income")
    assert _mean(shifted, "credit_score") < _mean(base, "credit_score") - 15
    assert _mean(shifted, "interest_rate") > _mean(base, "interest_rate") + 1
    assert _share(shifted, "purpose", "small_business") > 2 * _share(
        base, "purpose", "small_business"
    )
    assert _share(shifted, "purpose", "medical") > 2 * _share(base, "purpose", "medical")
    assert _share(shifted, "state", "CA") < 0.6 * _share(base, "state", "CA")
    assert pc.unique(pc.year(shifted.column("application_date"))).to_pylist() == [2026]

    for name, tolerance in [
        ("age", 0.5),
        ("term_months", 0.5),
        ("num_open_accounts", 0.1),
        ("loan_amount", 200),
    ]:
        assert _mean(shifted, name) == pytest.approx(_mean(base, name), abs=tolerance), name
    for home in ("RENT", "OWN", "MORTGAGE", "OTHER"):
        assert _share(shifted, "home_ownership", home) == pytest.approx(
            _share(base, "home_ownership", home), abs=0.015
        )


def test_csv_is_byte_identical_for_same_arguments(tmp_path) -> None:
    first = write_loans_csv(tmp_path / "a.csv", 2_000, seed=3, malformed=5)
    second = write_loans_csv(tmp_path / "b.csv", 2_000, seed=3, malformed=5)
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]


def test_csv_reads_back_as_the_table(tmp_path) -> None:
    path = write_loans_csv(tmp_path / "loans.csv", 500, seed=5)
    text = path.read_text()
    assert text.splitlines()[0].replace('"', "").split(",") == [*COLUMNS, LABEL]
    assert ",," in text  # missing values are empty fields
    table = generate_loans(500, seed=5)
    first_date = table.column("application_date")[0].as_py().strftime("%Y-%m-%d %H:%M:%S")
    assert f",{first_date}," in text.splitlines()[1]
    read = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=table.schema))
    assert read.equals(table)


def test_malformed_rows_are_in_the_csv_only(tmp_path) -> None:
    n, k = 1_000, 12
    # Empty fields are missing values, also in a numeric column that now reads as text.
    options = pacsv.ConvertOptions(strings_can_be_null=True)
    clean = pacsv.read_csv(write_loans_csv(tmp_path / "clean.csv", n), convert_options=options)
    dirty = pacsv.read_csv(
        write_loans_csv(tmp_path / "dirty.csv", n, malformed=k), convert_options=options
    )
    numeric = ("age", "annual_income", "loan_amount", "credit_score")
    bad_rows = set()
    for name in numeric:
        column = dirty.column(name)
        if not pa.types.is_string(column.type):  # no bad value landed in this column
            assert column.equals(clean.column(name))
            continue
        for i, value in enumerate(column.to_pylist()):
            try:
                number = None if value is None else float(value)
            except ValueError:
                bad_rows.add(i)
            else:
                assert number == clean.column(name)[i].as_py()
    assert len(bad_rows) == k
    untouched = [c for c in clean.column_names if c not in numeric]
    assert dirty.select(untouched).equals(clean.select(untouched))


def test_bad_arguments_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="write_loans_csv"):
        generate_loans(10, malformed=1)
    with pytest.raises(ConfigError, match="malformed"):
        write_loans_csv(tmp_path / "x.csv", 3, malformed=4)
    with pytest.raises(ConfigError, match="n_rows"):
        generate_loans(-1)
