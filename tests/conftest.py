"""Shared fixtures: fresh workspaces and small generated loan data."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlscale import Workspace
from mlscale.quickstart.loans import write_loans_csv


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


@pytest.fixture(scope="session")
def loans_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 loans with 5 malformed rows."""
    return write_loans_csv(tmp_path_factory.mktemp("data") / "loans.csv", 3_000, malformed=5)


@pytest.fixture(scope="session")
def shifted_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_loans_csv(
        tmp_path_factory.mktemp("data") / "shifted.csv", 2_000, seed=9, shift=True, label=False
    )


@pytest.fixture(scope="session")
def fresh_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_loans_csv(tmp_path_factory.mktemp("data") / "fresh.csv", 2_000, seed=8, label=False)


@pytest.fixture
def trained_ws(ws: Workspace, loans_csv: Path) -> Workspace:
    """A workspace with loans@1 ingested, loans@1 trained and promoted to production."""
    ws.ingest(loans_csv, name="loans")
    result = ws.train("loans@latest", target="default", exclude=["loan_id"])
    ws.promote("loans", result.model.version, alias="production")
    return ws
