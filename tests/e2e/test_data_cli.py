"""The data commands as a user runs them."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from tests.e2e.conftest import run_cli


def test_contract_ingest_append_diff_and_quarantine(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert run_cli(tmp_path, "init", str(root)).returncode == 0
    first = tmp_path / "orders.csv"
    first.write_text(
        "order_id,amount,country,placed\n"
        "1,10.5, fr ,2025-01-01\n2,oops,DE,2025-01-02\n3,7,de,2025-01-03\n1,4,FR,2025-01-04\n"
        "4,,FR,2025-01-05\n5,3,IT,2025-01-06\n6,1,FR\n"
    )
    infer = run_cli(root, "schema", "infer", str(first), "-o", "contract.yaml")
    assert infer.returncode == 0, infer.stderr
    assert "order_id:" in (root / "contract.yaml").read_text()
    (root / "contract.yaml").write_text(
        "version: 1\n"
        "columns:\n"
        "  order_id: {type: int64, unique: true}\n"
        "  amount: {type: float64, min: 0}\n"
        "  country: {type: string, allowed: [FR, DE]}\n"
        "  placed: {type: timestamp}\n"
        "cleaning:\n"
        "  normalize: {country: [trim, upper]}\n"
        "  missing: {amount: {constant: 0}}\n"
    )
    result = run_cli(
        root, "ingest", str(first), "--name", "orders", "-c", "contract.yaml", "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == 7 == summary["rows_accepted"] + summary["rows_quarantined"]
    assert summary["rows_quarantined"] == 4
    assert set(summary["reasons"]) == {
        "column 'amount': expected float64, found 'oops'",
        "column 'country': 'IT' is not an allowed value",
        "duplicate value in order_id: 1",
        "Expected Number of Columns: 4 Found: 3",
    }
    assert summary["cleaning"]["imputed amount (constant: 0.0)"] == 1
    shown = run_cli(root, "data", "quarantine", "orders@1")
    assert "not an allowed value" in shown.stdout and "oops" in shown.stdout

    more = tmp_path / "more.csv"
    pacsv.write_csv(pa.table({"order_id": [7, 8], "amount": [1.0, 2.0], "country": ["DE", "FR"],
                              "placed": ["2025-02-01", "2025-02-02"]}), more)  # fmt: skip
    appended = run_cli(root, "ingest", str(more), "--name", "orders", "--append", "--json")
    assert appended.returncode == 0, appended.stderr
    assert json.loads(appended.stdout)["lineage"]["parent"] == "orders@1"
    versions = json.loads(run_cli(root, "data", "versions", "orders", "--json").stdout)
    assert [(v["ref"], v["rows"]) for v in versions] == [("orders@1", 3), ("orders@2", 5)]
    assert versions[1]["parts"][: len(versions[0]["parts"])] == versions[0]["parts"]
    diff = json.loads(run_cli(root, "data", "diff", "orders@1", "orders@2", "--json").stdout)
    assert diff["rows"] == [3, 5]
    assert run_cli(root, "data", "show", "orders@2").returncode == 0
    page = root / "profile.html"
    assert run_cli(root, "data", "profile", "orders@2", "--html", str(page)).returncode == 0
    assert "<svg" in page.read_text()


def test_bad_contract_and_too_many_bad_rows(tmp_path: Path) -> None:
    root = tmp_path
    run_cli(root, "init")
    data = root / "x.csv"
    data.write_text("a,b\n1,x\nno,y\nno,z\n")
    (root / "bad.yaml").write_text("version: 1\ncolumns:\n  a: {type: integr}\n")
    result = run_cli(root, "ingest", str(data), "--name", "x", "-c", "bad.yaml")
    assert result.returncode == 2
    assert "bad.yaml, line 3" in result.stderr and "Traceback" not in result.stderr
    (root / "ok.yaml").write_text("version: 1\ncolumns:\n  a: {type: int64}\n  b: {type: string}\n")
    result = run_cli(
        root, "ingest", str(data), "--name", "x", "-c", "ok.yaml", "--max-bad-fraction", "0.5"
    )
    assert result.returncode == 2 and "failed the contract" in result.stderr
    assert json.loads(run_cli(root, "data", "list", "--json").stdout) == []
