import dataclasses
import re
from pathlib import Path

import pytest

from mlscale.data.contract import Cleaning, ColumnRule, Contract, Evolution, Fill, RowCheck
from mlscale.data.contract_io import (
    ContractError,
    contract_hash,
    dump_contract,
    load_contract,
    loads_contract,
    write_contract,
)
from mlscale.errors import NotFoundError, SchemaError

EXAMPLE = """\
# mlscale data contract
version: 1
columns:
  age: {type: int64, nullable: false, min: 18, max: 120}
  state: {type: string, allowed: [CA, TX]}
  email: {type: string, regex: '^[^@]+@[^@]+$'}
  loan_id: {type: string, unique: true}
  application_date: {type: 'timestamp[us]', min: '2020-01-01'}
  loan_amount: float
  annual_income:
    type: double
    min: 0
  employment_years: {type: number}
  debt_to_income: {type: float64}
checks:
  - name: amount_within_income
    sql: loan_amount <= annual_income * 5
cleaning:
  normalize: {state: [trim, upper]}
  missing: {annual_income: median, employment_years: {constant: 0}, age: drop}
  clip: {debt_to_income: {min: 0, max: 100}}
  duplicates: {key: [loan_id]}
evolution: {new_columns: refuse, dropped_columns: refuse, widened_types: accept}
"""


def test_the_documented_example_loads() -> None:
    contract = loads_contract(EXAMPLE)
    assert contract.names == [
        "age",
        "state",
        "email",
        "loan_id",
        "application_date",
        "loan_amount",
        "annual_income",
        "employment_years",
        "debt_to_income",
    ]
    assert contract.column("age") == ColumnRule("age", "int64", nullable=False, min=18, max=120)
    assert contract.column("state").allowed == ["CA", "TX"]
    assert contract.column("application_date") == ColumnRule(
        "application_date", "timestamp[us]", min="2020-01-01"
    )
    assert contract.column("annual_income") == ColumnRule("annual_income", "float64", min=0)
    assert contract.checks == [RowCheck("amount_within_income", "loan_amount <= annual_income * 5")]
    assert contract.cleaning == Cleaning(
        normalize={"state": ["trim", "upper"]},
        missing={
            "annual_income": Fill("median"),
            "employment_years": Fill("constant", 0.0),
            "age": Fill("drop"),
        },
        clip={"debt_to_income": (0, 100)},
        duplicates_key=["loan_id"],
    )
    assert contract.evolution == Evolution()
    assert contract.path is None


def test_round_trip_through_dump() -> None:
    contract = loads_contract(EXAMPLE)
    text = dump_contract(contract)
    assert text.startswith("# mlscale data contract")
    assert "meant to be edited" in text
    assert loads_contract(text) == contract


def test_round_trip_keeps_awkward_values_as_written() -> None:
    contract = Contract(
        columns=[
            ColumnRule("yes", "string", allowed=["NO", "1", "true", "a: b", "~", "é"]),
            ColumnRule("1", "bool", nullable=False),
            ColumnRule("with space", "string", regex=r"\d{3}-[A-Z]+\\x"),
            ColumnRule("it's", "timestamp[us]", min="2020-01-01 00:00:00", max="2030-12-31"),
            ColumnRule("n", "int64", min=-5, max=10, unique=True),
            ColumnRule("x", "float64", min=0.25),
            ColumnRule("long", "string", allowed=[f"category_{i:03d}" for i in range(40)]),
        ],
        checks=[RowCheck("multi", "n > 0\n  AND x < 1 -- note: fine"), RowCheck("q", "'a' = 'a'")],
        cleaning=Cleaning(
            normalize={"yes": ["trim", "lower"]},
            missing={
                "yes": Fill("constant", ""),
                "1": Fill("constant", False),
                "it's": Fill("constant", "2020-01-01"),
                "n": Fill("constant", 0),
                "x": Fill("mode"),
            },
            clip={"x": (None, 1.5), "n": (0, None)},
            duplicates_key=["n", "yes"],
        ),
        evolution=Evolution("accept", "accept", "refuse"),
    )
    text = dump_contract(contract)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert loads_contract(text) == contract


def test_an_empty_sections_dump_has_commented_examples_that_still_load() -> None:
    contract = Contract([ColumnRule("a", "int64")])
    text = dump_contract(contract)
    assert "# - name: amount_within_income" in text
    assert loads_contract(text) == contract


def test_write_and_load_a_file(tmp_path: Path) -> None:
    contract = loads_contract(EXAMPLE)
    target = tmp_path / "contract.yaml"
    target.write_text("old")
    assert write_contract(contract, target) == target
    loaded = load_contract(target)
    assert loaded.path == str(target)
    assert dataclasses.replace(loaded, path=None) == contract
    assert [p.name for p in tmp_path.iterdir()] == ["contract.yaml"]  # no temporary left


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        load_contract(tmp_path / "nope.yaml")


def test_hash_ignores_formatting_and_path_but_not_rules() -> None:
    contract = loads_contract(EXAMPLE, "a.yaml")
    reformatted = loads_contract(dump_contract(contract), "b.yaml")
    assert contract_hash(contract) == contract_hash(reformatted)
    assert re.fullmatch(r"[0-9a-f]{64}", contract_hash(contract))
    stricter = dataclasses.replace(
        contract, columns=[dataclasses.replace(contract.columns[0], max=119), *contract.columns[1:]]
    )
    assert contract_hash(stricter) != contract_hash(contract)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("int", "int64"),
        ("integer", "int64"),
        ("Int64", "int64"),
        ("float", "float64"),
        ("double", "float64"),
        ("number", "float64"),
        ("str", "string"),
        ("text", "string"),
        ("category", "string"),
        ("boolean", "bool"),
        ("bool", "bool"),
        ("datetime", "timestamp[us]"),
        ("timestamp", "timestamp[us]"),
        ("date", "timestamp[us]"),
        ("timestamp[us]", "timestamp[us]"),
    ],
)
def test_type_aliases(written: str, canonical: str) -> None:
    assert loads_contract(f"columns:\n  c:\n    type: {written}\n").columns[0].type == canonical


def test_the_error_names_file_line_and_value() -> None:
    text = "version: 1\ncolumns:\n  age: {type: int64, min: ten}\n"
    with pytest.raises(ContractError) as info:
        loads_contract(text, "contract.yaml")
    assert (
        str(info.value) == "contract.yaml, line 3: column 'age': min must be a number, found 'ten'"
    )
    assert isinstance(info.value, SchemaError)


def test_every_problem_is_reported_in_file_order() -> None:
    text = (
        "columns:\n"
        "  a: {type: int, min: x}\n"
        "  b: {type: varchar}\n"
        "cleaning:\n"
        "  clip: {a: {min: 0}}\n"
        "  missing: {zz: drop}\n"
        "evolution: {new_columns: maybe}\n"
    )
    with pytest.raises(ContractError) as info:
        loads_contract(text, "c.yaml")
    lines = [int(re.match(r"c\.yaml, line (\d+): ", p).group(1)) for p in info.value.problems]
    assert lines == [2, 3, 6, 7]


ERRORS = [
    ("columns:\n  age: {type: int64, mni: 3}\n", 2, "unknown key 'mni'; did you mean 'min'?"),
    ("columns:\n  age: {type: varchar}\n", 2, "type must be one of int64, float64"),
    ("columns:\n  age: {type: integr}\n", 2, "did you mean 'integer'?"),
    ("columns:\n  age: {nullable: false}\n", 2, "column 'age': type is missing"),
    ("columns:\n  s:\n    type: string\n    min: 3\n", 4, "min applies to numeric and timestamp"),
    ("columns:\n  b:\n    type: bool\n    max: 1\n", 4, "max applies to numeric and timestamp"),
    ("columns:\n  a: {type: int, allowed: [1, 2]}\n", 2, "allowed applies to string columns"),
    ("columns:\n  a:\n    type: int\n    regex: x\n", 4, "regex applies to string columns"),
    ("columns:\n  s: {type: str, regex: '(abc'}\n", 2, "is not a valid regular expression"),
    ("columns:\n  s: {type: str, regex: '(?<=a)b'}\n", 2, "uses a lookbehind"),
    ("columns:\n  s: {type: str, regex: '(a)\\1'}\n", 2, "uses a backreference"),
    ("columns:\n  s: {type: str, regex: 'a++'}\n", 2, "possessive quantifier"),
    ("columns:\n  s: {type: str, allowed: []}\n", 2, "allowed lists no values"),
    ("columns:\n  s: {type: str, allowed: [a, a]}\n", 2, "allowed lists 'a' twice"),
    ("columns:\n  s: {type: str, allowed: CA}\n", 2, "allowed must be a list, found 'CA'"),
    ("columns:\n  t: {type: datetime, min: yesterday}\n", 2, "must be an ISO date or timestamp"),
    ("columns:\n  t: {type: datetime, max: '2020-01-01T00:00Z'}\n", 2, "time zone"),
    ("columns:\n  a: {type: int, min: 5, max: 1}\n", 2, "min 5 is above max 1"),
    ("columns:\n  a: {type: float, min: .nan}\n", 2, "must be a finite number"),
    ("columns:\n  a: {type: int, min: '3'}\n", 2, "found '3' (write it without quotes)"),
    ("columns:\n  a: {type: int, nullable: maybe}\n", 2, "nullable must be true or false"),
    ("columns:\n  a: {type: int, min: 1, min: 2}\n", 2, "'min' appears twice (first at line 2)"),
    ("columns:\n  a: int\n  b: int\n  a: float\n", 4, "'a' appears twice (first at line 2)"),
    ("version: 1\ncolumns: {}\n", 2, "columns is empty"),
    ("version: 1\ncolumns:\n  - a\n", 3, "columns must be a mapping"),
    ("version: 1\n", 1, "columns is missing"),
    ("", 1, "the contract is empty"),
    ("- a\n", 1, "the contract must be a mapping, found a list"),
    ("version: 2\ncolumns: {a: int}\n", 1, "version must be 1, found '2'"),
    (
        "columns: {a: int}\ncheck:\n  - {name: x}\n",
        2,
        "unknown key 'check'; did you mean 'checks'?",
    ),
    ("columns: {a: int}\nchecks:\n  - name: x\n", 3, "check 1: sql is missing"),
    ("columns: {a: int}\nchecks:\n  - {name: x, sql: a > 1}\n  - sql: a > 2\n", 4, "check 2: name"),
    ("columns: {a: int}\nchecks:\n  - {name: x, sql: a > 1}\n  - {name: x, sql: 1}\n", 4, "twice"),
    ("columns: {a: int}\nchecks:\n  - {name: x, sql: ''}\n", 3, "sql must not be empty"),
    ("columns: {a: int}\nchecks: {name: x}\n", 2, "checks must be a list"),
    ("columns: {a: str}\ncleaning:\n  missing: {a: median}\n", 3, "median needs a numeric column"),
    ("columns: {a: str}\ncleaning:\n  clip: {a: {min: 0}}\n", 3, "column 'a' is string; needs"),
    ("columns: {a: int}\ncleaning:\n  clip: {a: {}}\n", 3, "give min, max or both"),
    ("columns: {a: int}\ncleaning:\n  clip: {a: {min: 2, max: 1}}\n", 3, "min 2 is above max 1"),
    ("columns: {a: int}\ncleaning:\n  normalize: {a: [trim]}\n", 3, "column 'a' is int64"),
    ("columns: {a: str}\ncleaning:\n  normalize: {a: [uper]}\n", 3, "did you mean 'upper'?"),
    ("columns: {a: int}\ncleaning:\n  missing: {b: drop}\n", 3, "no column 'b' in the contract"),
    ("columns: {a: int}\ncleaning:\n  missing: {a: constant}\n", 3, "constant needs a value"),
    ("columns: {a: int}\ncleaning:\n  missing: {a: {constant: x}}\n", 3, "must be a number"),
    ("columns: {a: int}\ncleaning:\n  missing: {a: {constant: 1.5}}\n", 3, "whole number"),
    ("columns: {a: bool}\ncleaning:\n  missing: {a: {constant: 1}}\n", 3, "true or false"),
    ("columns: {a: date}\ncleaning:\n  missing: {a: {constant: soon}}\n", 3, "ISO date"),
    ("columns: {a: int}\ncleaning:\n  missing: {a: average}\n", 3, "must be one of drop, median"),
    ("columns: {a: int}\ncleaning:\n  duplicates: {key: [a, z]}\n", 3, "no column 'z'"),
    ("columns: {a: int}\ncleaning:\n  duplicates: {key: []}\n", 3, "at least one column"),
    ("columns: {a: int}\ncleaning:\n  duplicates: {columns: [a]}\n", 3, "unknown key 'columns'"),
    ("columns: {a: int}\ncleaning:\n  impute: {}\n", 3, "unknown key 'impute'"),
    ("columns: {a: int}\nevolution:\n  new_columns: yes\n", 3, "must be one of accept, refuse"),
    ("columns: {a: int}\nevolution:\n  dropped: accept\n", 3, "did you mean 'dropped_columns'?"),
    ("columns:\n  a: {type: int\n  b: 3\n", 3, "invalid YAML"),
    ("columns:\n  t: {type: timestamp[us]}\n", 2, "write 'timestamp[us]' in quotes"),
    ("columns:\n\ta: int\n", 2, "invalid YAML"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), ERRORS)
def test_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ContractError) as info:
        loads_contract(text, "contract.yaml")
    first = info.value.problems[0]
    assert first.startswith(f"contract.yaml, line {line}: "), first
    assert fragment in first


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"columns:\n  a: int\n  \xff: int\n")
    with pytest.raises(ContractError, match=r"c\.yaml, line 3: not UTF-8"):
        load_contract(path)


def test_patterns_the_loader_accepts_are_those_duckdb_accepts() -> None:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    patterns = [
        r"^[^@]+@[^@]+$",
        r"(?P<area>\d{3})-\d{4}",
        r"(?i)[a-z]+",
        r"[(?=]x",
        r"(?<=a)b",
        r"(?!a)b",
        r"(a)\1",
        r"a*+",
        r"a{2}+",
        r"(?x)a b",
        r"\d+\Z",
    ]
    for pattern in patterns:
        try:
            con.execute("SELECT regexp_full_match('a', ?)", [pattern]).fetchall()
            duck_ok = True
        except duckdb.Error:
            duck_ok = False
        contract = Contract([ColumnRule("s", "string", regex=pattern)])
        try:
            loads_contract(dump_contract(contract))
            ours = True
        except ContractError:
            ours = False
        assert ours == duck_ok, pattern
