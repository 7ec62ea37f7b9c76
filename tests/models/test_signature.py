import math

import numpy as np
import pyarrow as pa
import pytest

from mlscale.errors import SchemaError
from mlscale.models.signature import Feature, FeatureEncoder, Signature

SIG = Signature(
    task="binary",
    target="y",
    classes=[0, 1],
    features=[
        Feature("age", "int64", "numeric"),
        Feature("income", "float64", "numeric"),
        Feature("city", "string", "categorical", ["paris", "rome"]),
        Feature("member", "bool", "categorical", ["false", "true"]),
    ],
)


def test_records_and_tables_encode_identically() -> None:
    records = [
        {"age": 30, "income": 1.5, "city": "rome", "member": True},
        {"age": None, "income": 2, "city": "oslo", "member": None},
    ]
    table = pa.table(
        {
            "age": pa.array([30, None], pa.int64()),
            "income": [1.5, 2.0],
            "city": ["rome", "oslo"],
            "member": pa.array([True, None]),
            "ignored": ["x", "y"],
        }
    )
    enc = FeatureEncoder(SIG)
    a, b = enc.encode_records(records), enc.encode_table(table)
    np.testing.assert_array_equal(a, b)
    assert a[0].tolist() == [30.0, 1.5, 1.0, 1.0]
    assert math.isnan(a[1, 0]) and math.isnan(a[1, 2])  # missing, and a city never seen


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"age": 1, "income": 1.0, "city": "rome"}, "row 0: missing feature(s) 'member'"),
        (
            {"age": 1, "income": 1.0, "city": "rome", "member": True, "agee": 2},
            "unknown field(s) 'agee'",
        ),
        ({"age": "forty", "income": 1.0, "city": "rome", "member": True}, "expected a number"),
        ({"age": 1, "income": 1.0, "city": 5, "member": True}, "feature 'city': expected a string"),
        ({"age": True, "income": 1.0, "city": "rome", "member": True}, "expected a number"),
        ("not a row", "expected an object"),
    ],
)
def test_bad_rows_name_the_problem(row: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FeatureEncoder(SIG).encode_records([row])  # type: ignore[list-item]


def test_columnar_input() -> None:
    enc = FeatureEncoder(SIG)
    cols = {"age": [1, 2], "income": [0.5, None], "city": ["paris", None], "member": [False, True]}
    table = enc.table_from_columns(cols)
    assert enc.encode_table(table)[:, 2].tolist()[0] == 0.0
    with pytest.raises(SchemaError, match="different lengths"):
        enc.table_from_columns(cols | {"age": [1]})


def test_signature_round_trips() -> None:
    assert Signature.from_dict(SIG.to_dict()) == SIG


def test_fast_row_path_matches_the_arrow_path() -> None:
    rng = np.random.default_rng(3)
    cities = ["paris", "rome", "oslo", None]
    rows = [
        {
            "age": None if rng.random() < 0.1 else int(rng.integers(0, 90)),
            "income": None if rng.random() < 0.1 else float(rng.normal(5, 2)),
            "city": cities[int(rng.integers(0, 4))],
            "member": None if rng.random() < 0.1 else bool(rng.random() < 0.5),
        }
        for _ in range(500)
    ]
    enc = FeatureEncoder(SIG)
    fast = enc.encode_records(rows)
    arrow = enc.encode_table(enc.table_from_records(rows))
    np.testing.assert_array_equal(fast, arrow)
