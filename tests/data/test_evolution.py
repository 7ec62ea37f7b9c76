from dataclasses import replace

import pytest

from mlscale.data.contract import ColumnRule, Contract, Evolution
from mlscale.data.evolution import EvolutionReport, TypeChange, compare_schemas
from mlscale.errors import SchemaError

CONTRACT = Contract(
    [
        ColumnRule("id", "string", nullable=False, unique=True),
        ColumnRule("age", "int64", nullable=False, min=18),
        ColumnRule("income", "int64"),
        ColumnRule("note", "string"),
    ]
)
SAME = [("id", "string"), ("age", "int64"), ("income", "int64"), ("note", "string")]
ACCEPT_ALL = Evolution("accept", "accept", "accept")


def with_policy(**policy: str) -> Contract:
    return replace(CONTRACT, evolution=Evolution(**policy))  # type: ignore[arg-type]


def test_matching_columns_are_no_change() -> None:
    report = compare_schemas(CONTRACT, list(reversed(SAME)))  # order does not matter
    assert report == EvolutionReport()
    assert not report.changed
    assert report.refusals(CONTRACT.evolution) == []
    assert report.describe() == []
    assert report.apply(CONTRACT) == CONTRACT


def test_types_the_contract_holds_without_loss_are_no_change() -> None:
    contract = Contract([ColumnRule("x", "float64"), ColumnRule("s", "string")])
    assert not compare_schemas(contract, [("x", "int64"), ("s", "int64")]).changed


def test_a_new_column_is_refused_by_default() -> None:
    report = compare_schemas(CONTRACT, [*SAME, ("score", "float64")])
    assert report.new == (ColumnRule("score", "float64"),)
    assert report.refusals(CONTRACT.evolution) == [
        "new column 'score' (float64) is not in the contract; "
        "set evolution.new_columns: accept to take it"
    ]
    assert report.describe(CONTRACT.evolution) == ["new column 'score' (float64) (refused)"]


def test_an_accepted_new_column_is_appended_as_nullable() -> None:
    contract = with_policy(new_columns="accept")
    report = compare_schemas(contract, [("zeta", "bool"), *SAME, ("alpha", "timestamp[us]")])
    assert report.refusals(contract.evolution) == []
    evolved = report.apply(contract)
    assert evolved.columns == [
        *CONTRACT.columns,
        ColumnRule("zeta", "bool", nullable=True),
        ColumnRule("alpha", "timestamp[us]", nullable=True),
    ]
    assert evolved.evolution == contract.evolution
    assert report.describe(contract.evolution) == [
        "new column 'zeta' (bool) (accepted)",
        "new column 'alpha' (timestamp[us]) (accepted)",
    ]


def test_a_dropped_column_is_refused_by_default() -> None:
    report = compare_schemas(CONTRACT, [c for c in SAME if c[0] != "note"])
    assert report.dropped == (CONTRACT.column("note"),)
    assert report.refusals(CONTRACT.evolution) == [
        "column 'note' (string) is missing from the source; "
        "set evolution.dropped_columns: accept to fill it with nulls"
    ]


def test_an_accepted_dropped_column_stays_in_the_contract() -> None:
    contract = with_policy(dropped_columns="accept")
    report = compare_schemas(contract, [c for c in SAME if c[0] != "note"])
    assert report.refusals(contract.evolution) == []
    assert report.apply(contract) == contract
    assert report.describe() == ["column 'note' (string) missing from the source"]


def test_a_dropped_column_must_be_nullable_even_when_accepted() -> None:
    contract = with_policy(dropped_columns="accept")
    report = compare_schemas(contract, [c for c in SAME if c[0] != "age"])
    assert report.refusals(contract.evolution) == [
        "column 'age' is missing from the source but is not nullable; "
        "set nullable: true on it to accept its absence"
    ]
    assert report.describe(contract.evolution) == [
        "column 'age' (int64) missing from the source (refused)"
    ]


def test_a_widened_type_is_accepted_by_default() -> None:
    found = [(n, "float64" if n == "income" else t) for n, t in SAME]
    report = compare_schemas(CONTRACT, found)
    assert report.widened == (TypeChange("income", "int64", "float64"),)
    assert report.refusals(CONTRACT.evolution) == []
    assert report.apply(CONTRACT).column("income") == ColumnRule("income", "float64")
    assert report.describe() == ["column 'income' widened from int64 to float64"]


def test_a_widened_type_can_be_refused() -> None:
    contract = with_policy(widened_types="refuse")
    found = [(n, "float64" if n == "income" else t) for n, t in SAME]
    report = compare_schemas(contract, found)
    assert report.refusals(contract.evolution) == [
        "column 'income' widened from int64 to float64; "
        "set evolution.widened_types: accept to take it"
    ]
    assert report.apply(contract).column("income").type == "int64"  # refused: left out


@pytest.mark.parametrize(
    ("column", "found"),
    [("age", "string"), ("income", "bool"), ("age", "timestamp[us]")],
)
def test_other_type_changes_are_conflicts_no_policy_accepts(column: str, found: str) -> None:
    contract = replace(CONTRACT, evolution=ACCEPT_ALL)
    report = compare_schemas(contract, [(n, found if n == column else t) for n, t in SAME])
    old = contract.column(column).type
    assert report.conflicts == (TypeChange(column, old, found),)
    assert report.refusals(ACCEPT_ALL) == [
        f"column {column!r} changed type from {old} to {found}; only int64 -> float64 can be "
        "accepted, so fix the source or the contract's type"
    ]
    assert report.apply(contract).column(column).type == old


def test_text_found_for_a_float_column_is_a_conflict() -> None:
    contract = Contract([ColumnRule("x", "float64")])
    assert compare_schemas(contract, [("x", "string")]).conflicts == (
        TypeChange("x", "float64", "string"),
    )


def test_a_renamed_column_gets_a_hint() -> None:
    found = [("Age" if n == "age" else n, t) for n, t in SAME]
    refusals = compare_schemas(CONTRACT, found).refusals(CONTRACT.evolution)
    assert refusals[0] == (
        "new column 'Age' (int64) is not in the contract; set evolution.new_columns: accept to "
        "take it (was 'age' renamed? names are matched exactly)"
    )


def test_everything_at_once_in_a_stable_order() -> None:
    found = [("id", "string"), ("age", "string"), ("income", "float64"), ("extra", "int64")]
    report = compare_schemas(CONTRACT, found)
    assert report.describe() == [
        "new column 'extra' (int64)",
        "column 'note' (string) missing from the source",
        "column 'income' widened from int64 to float64",
        "column 'age' changed type from int64 to string",
    ]
    assert len(report.refusals(CONTRACT.evolution)) == 3  # new, dropped, conflict


def test_a_source_with_repeated_columns_is_refused() -> None:
    with pytest.raises(SchemaError, match="more than once"):
        compare_schemas(CONTRACT, [("a", "int64"), ("a", "int64")])


def test_found_types_must_be_canonical() -> None:
    with pytest.raises(SchemaError, match="'varchar' is not one of int64"):
        compare_schemas(CONTRACT, [("id", "varchar")])
