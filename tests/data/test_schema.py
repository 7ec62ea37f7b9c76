import pyarrow as pa

from mlscale.data.schema import canonical_type, infer_from_strings


def test_inference_tolerates_a_few_malformed_values() -> None:
    ages = [str(20 + i % 50) for i in range(200)] + ["forty"]
    sample = pa.table(
        {
            "age": ages,
            "income": [f"{1000.5 + i}" for i in range(200)] + [None],
            "city": ["a", "b"] * 100 + ["c"],
            "when": ["2025-01-02 03:04:05"] * 200 + ["2025-01-03"],
            "flag": ["true", "False"] * 100 + [None],
        }
    )
    schema = infer_from_strings(sample)
    assert [c.type for c in schema.columns] == [
        "int64",
        "float64",
        "string",
        "timestamp[us]",
        "bool",
    ]


def test_mostly_text_stays_text() -> None:
    sample = pa.table({"code": ["1", "2", "x3", "y4"] * 10})
    assert infer_from_strings(sample).columns[0].type == "string"


def test_canonical_types() -> None:
    assert canonical_type(pa.int8()) == "int64"
    assert canonical_type(pa.float32()) == "float64"
    assert canonical_type(pa.dictionary(pa.int32(), pa.string())) == "string"
    assert canonical_type(pa.date32()) == "timestamp[us]"
    assert canonical_type(pa.large_string()) == "string"
