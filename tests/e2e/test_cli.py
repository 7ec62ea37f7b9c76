import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.e2e.conftest import run_cli


def state(root: Path) -> tuple[str, str]:
    """Everything a failed command must leave unchanged: model versions and datasets."""
    models = run_cli(root, "models", "list", "--json").stdout
    blobs = sorted(str(p) for p in (root / ".mlscale" / "artifacts").rglob("*") if p.is_file())
    return models, "\n".join(blobs)


def test_help_and_module_entry(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0 and "quickstart" in result.stdout
    for command in ("ingest", "train", "serve", "predict", "drift", "models"):
        assert command in result.stdout


def test_the_loop_on_the_cli(project: Path, fresh_csv: Path, shifted_csv: Path) -> None:
    listed = json.loads(run_cli(project, "models", "list", "--json").stdout)
    assert [m["ref"] for m in listed] == ["loans@1"]
    assert listed[0]["aliases"] == ["production"]
    shown = run_cli(project, "models", "show", "loans@production")
    assert shown.returncode == 0 and "lineage: dataset loans@1 -> run" in shown.stdout

    out = project / "scored.parquet"
    scored = run_cli(
        project, "predict", "loans@production", str(fresh_csv), "-o", str(out),
        "--compression", "zstd",
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "ZSTD"
    table = pq.read_table(out)
    assert table.num_rows == 2_000 and {"prediction", "proba_0", "proba_1"} <= set(
        table.column_names
    )

    drift = run_cli(project, "drift", "loans@production", str(shifted_csv), "--json")
    report = json.loads(drift.stdout)
    assert "purpose" in report["drifted"] and "age" not in report["drifted"]
    table_out = run_cli(project, "drift", "loans@production", str(shifted_csv))
    assert "features drifted" in table_out.stdout
    assert run_cli(project, "drift", "loans@1", str(shifted_csv), "--fail-on-drift").returncode == 3


def test_workspace_found_from_a_subfolder_and_by_flag(project: Path, tmp_path: Path) -> None:
    sub = project / "deeper" / "still"
    sub.mkdir(parents=True)
    assert run_cli(sub, "models", "list").returncode == 0
    assert run_cli(tmp_path, "--workspace", str(project), "models", "list").returncode == 0
    lost = run_cli(tmp_path, "models", "list")
    assert lost.returncode == 2 and lost.stderr.startswith("error: no mlscale workspace")


def write_one_class(path: Path) -> None:
    pacsv.write_csv(pa.table({"x": [1.0, 2.0, 3.0], "y": [1, 1, 1]}), path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "{tmp}/missing.csv", "--name", "x"), "error: no such file: "),
        (("ingest", "{tmp}/garbage.csv", "--name", "x"), "garbage.csv: no row could be read"),
        (
            ("train", "loans@1", "--target", "nope"),
            "error: unknown target column 'nope' in loans@1",
        ),
        (("train", "loans@9", "--target", "default"), "error: dataset 'loans' has no version 9"),
        (("models", "show", "loans@staging"), "error: model 'loans' has no alias 'staging'"),
        (
            ("predict", "nope@1", "{tmp}/missing.csv", "-o", "{tmp}/o.parquet"),
            "no model named 'nope'",
        ),
        (("train", "loans@1", "--target", "default", "--param", "oops"), "expected KEY=VALUE"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    project: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "garbage.csv").write_bytes(b"a,b\n\xff\xfe\x00,1\n")
    before = state(project)
    result = run_cli(project, *(a.format(tmp=tmp_path) for a in args))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert state(project) == before


def test_one_class_target(project: Path, tmp_path: Path) -> None:
    write_one_class(tmp_path / "one.csv")
    assert run_cli(project, "ingest", str(tmp_path / "one.csv"), "--name", "one").returncode == 0
    before = state(project)
    result = run_cli(project, "train", "one@latest", "--target", "y")
    assert result.returncode == 2
    assert "error: target column 'y' has one class (1) in all 3 rows" in result.stderr
    assert state(project) == before
