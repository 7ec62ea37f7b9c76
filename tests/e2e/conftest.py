"""Drive the real ``mlscale`` command in subprocesses, as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSCALE_")}
    return subprocess.run(
        [sys.executable, "-m", "mlscale", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Path:
    """A workspace made with the CLI: loans@1 ingested, trained and promoted."""
    root = tmp_path_factory.mktemp("project")
    for args in (
        ("init",),
        ("ingest", str(loans_csv), "--name", "loans"),
        ("train", "loans@latest", "--target", "default", "--exclude", "loan_id"),
        ("models", "promote", "loans", "1", "--alias", "production"),
    ):
        result = run_cli(root, *args)
        assert result.returncode == 0, result.stderr
    return root
