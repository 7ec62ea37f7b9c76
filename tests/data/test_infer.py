import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mlscale.data.contract import Cleaning, Evolution
from mlscale.data.contract_io import dump_contract, loads_contract
from mlscale.data.infer import MAX_CATEGORIES, MIN_ROWS_PER_CATEGORY, infer_contract, looks_like_id
from mlscale.errors import SchemaError
from mlscale.quickstart.loans import HOME, PURPOSES, STATES, generate_loans


@pytest.fixture(scope="module")
def loans() -> pa.Table:
    return generate_loans(2000)


def as_text(table: pa.Table) -> pa.Table:
    """The table as a CSV reader that keeps every column as text hands it over."""
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in table.column_names}, strings_can_be_null=True
    )
    return pacsv.read_csv(io.BytesIO(buffer.getvalue()), convert_options=options)


def test_a_realistic_sample_typed_and_as_text_gives_the_same_draft(loans: pa.Table) -> None:
    typed, text = infer_contract(loans), infer_contract(as_text(loans))
    assert text == typed
    types = {c.name: c.type for c in typed.columns}
    assert types == {
        "loan_id": "string",
        "application_date": "timestamp[us]",
        "age": "int64",
        "annual_income": "float64",
        "loan_amount": "float64",
        "term_months": "int64",
        "interest_rate": "float64",
        "credit_score": "int64",
        "employment_years": "float64",
        "home_ownership": "string",
        "purpose": "string",
        "state": "string",
        "num_open_accounts": "int64",
        "debt_to_income": "float64",
        "default": "int64",
    }


def test_nullable_only_where_the_sample_has_gaps(loans: pa.Table) -> None:
    contract = infer_contract(as_text(loans))
    nullable = {c.name for c in contract.columns if c.nullable}
    assert nullable == {"annual_income", "credit_score", "employment_years"}


def test_low_cardinality_strings_get_sorted_allowed_values(loans: pa.Table) -> None:
    contract = infer_contract(as_text(loans))
    assert contract.column("home_ownership").allowed == sorted(HOME)
    assert contract.column("purpose").allowed == sorted(PURPOSES)
    assert contract.column("state").allowed == sorted(STATES)
    assert contract.column("loan_id").allowed is None  # every value distinct


def test_only_id_like_distinct_columns_are_unique(loans: pa.Table) -> None:
    contract = infer_contract(as_text(loans))
    assert [c.name for c in contract.columns if c.unique] == ["loan_id"]


def test_the_draft_is_permissive_beyond_types(loans: pa.Table) -> None:
    contract = infer_contract(loans)
    assert all(c.min is None and c.max is None and c.regex is None for c in contract.columns)
    assert contract.checks == []
    assert contract.cleaning == Cleaning()
    assert contract.evolution == Evolution()


def test_a_small_sample_has_not_seen_every_category(loans: pa.Table) -> None:
    # 100 rows: 4 home types (25 rows each) pass; 10 states (10 rows each) do not.
    contract = infer_contract(loans.slice(0, 100))
    assert contract.column("home_ownership").allowed == sorted(HOME)
    assert contract.column("state").allowed is None


@pytest.mark.parametrize(
    ("distinct", "rows_each", "expected"),
    [
        (MAX_CATEGORIES, MIN_ROWS_PER_CATEGORY, True),
        (MAX_CATEGORIES + 1, MIN_ROWS_PER_CATEGORY * 2, False),
        (3, MIN_ROWS_PER_CATEGORY - 1, False),
        (1, MIN_ROWS_PER_CATEGORY, True),
    ],
)
def test_category_thresholds(distinct: int, rows_each: int, expected: bool) -> None:
    values = [f"v{i:02d}" for i in range(distinct)] * rows_each
    allowed = infer_contract(pa.table({"code": values})).column("code").allowed
    assert (allowed == sorted(set(values))) if expected else allowed is None


def test_typed_columns_keep_their_type() -> None:
    sample = pa.table(
        {
            "n": pa.array([1, 2, None], pa.int32()),
            "when": pa.array([0, 1, 2], pa.timestamp("s")),
            "flag": [True, False, True],
            "city": pa.array(["a", "b", "a"]).dictionary_encode(),
            "big": pa.array(["1", "2", "3"], pa.large_string()),
        }
    )
    contract = infer_contract(sample)
    assert [(c.name, c.type, c.nullable) for c in contract.columns] == [
        ("n", "int64", True),
        ("when", "timestamp[us]", False),
        ("flag", "bool", False),
        ("city", "string", False),
        ("big", "int64", False),
    ]


def test_dictionary_strings_can_be_categories() -> None:
    sample = pa.table({"city": pa.array(["a", "b"] * 40).dictionary_encode()})
    assert infer_contract(sample).column("city").allowed == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("id", True),
        ("ID", True),
        ("loan_id", True),
        ("customerId", True),
        ("userID", True),
        ("order-key", True),
        ("ORDER_KEY", True),
        ("session uuid", True),
        ("paid", False),
        ("valid", False),
        ("monkey", False),
        ("identity", False),
        ("PAID", False),
    ],
)
def test_id_names(name: str, expected: bool) -> None:
    assert looks_like_id(name) is expected


def test_unique_needs_an_id_name_all_distinct_values_and_a_fitting_type() -> None:
    sample = pa.table(
        {
            "user_id": ["1", "2", "3"],
            "code": ["a", "b", "c"],  # distinct, but not named like an id
            "order_id": ["x", "x", "y"],  # named like an id, but repeated
            "score_id": ["1.5", "2.5", "3.5"],  # float ids are not ids
            "ref_key": ["k1", None, "k2"],  # missing values do not count as repeats
        }
    )
    contract = infer_contract(sample)
    assert [c.name for c in contract.columns if c.unique] == ["user_id", "ref_key"]


def test_an_empty_sample_gives_nullable_text_columns() -> None:
    sample = pa.table({"a": pa.array([], pa.string()), "b": pa.array([], pa.float64())})
    contract = infer_contract(sample)
    assert [(c.type, c.nullable, c.allowed, c.unique) for c in contract.columns] == [
        ("string", True, None, False),
        ("float64", True, None, False),
    ]


def test_repeated_column_names_are_refused() -> None:
    sample = pa.Table.from_arrays([pa.array(["1"]), pa.array(["2"])], names=["a", "a"])
    with pytest.raises(SchemaError, match="'a'"):
        infer_contract(sample)


def test_the_draft_round_trips_through_yaml(loans: pa.Table) -> None:
    contract = infer_contract(as_text(loans))
    assert loads_contract(dump_contract(contract)) == contract
