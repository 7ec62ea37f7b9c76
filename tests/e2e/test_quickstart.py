from pathlib import Path

from tests.e2e.conftest import run_cli


def test_quickstart_runs_the_whole_loop(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "quickstart", "demo", "--rows", "5000", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in range(1, 9):
        assert f"[{step}/8]" in out
    assert "identical to the server's: True" in out
    assert "same population: 0 of" in out
    assert (tmp_path / "demo" / "scored.parquet").exists()
    # The server it started is gone: its log is closed and nothing listens any more.
    assert "serving loans@1" in (tmp_path / "demo" / "server.log").read_text()
