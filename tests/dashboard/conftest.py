"""Workspaces for the dashboard tests: a trained model, with or without logged traffic.

Training runs once per session; each test gets its own copy of the workspace folder (a few MB),
so the traffic one test sends never shows on another test's pages.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from tests.monitor.conftest import log_traffic

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans

CALM_ROWS, SHIFTED_ROWS = 1_500, 1_200
ROWS_PER_REQUEST = 50  # what log_traffic sends per request


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Path:
    """loans@1 trained on 3,000 loans and promoted to production; nothing served yet."""
    root = tmp_path_factory.mktemp("dashboard") / "ws"
    ws = Workspace.init(root)
    ws.ingest(loans_csv, name="loans")
    ws.train("loans@latest", target="default", exclude=["loan_id"])
    ws.promote("loans", 1, alias="production", reason="first model")
    return root


@pytest.fixture(scope="session")
def traffic_now() -> float:
    """The time the logged traffic is placed before: the last whole 10 minutes, so the pages'
    10-minute periods hold the same rows whenever the tests run."""
    return time.time() // 600 * 600


@pytest.fixture(scope="session")
def traffic_root(
    tmp_path_factory: pytest.TempPathFactory, trained_root: Path, traffic_now: float
) -> Path:
    """The trained workspace with two hours of logged traffic: loans like the training data
    (from 120 to 70 minutes ago), then drifted loans (50 to 2 minutes ago: lower incomes and
    credit scores, higher rates, another purpose and state mix)."""
    root = tmp_path_factory.mktemp("dashboard-traffic") / "ws"
    shutil.copytree(trained_root, root)
    ws = Workspace.open(root)
    now = traffic_now
    log_traffic(ws, generate_loans(CALM_ROWS, seed=8), start=now - 7_200, seconds_per_row=2.0)
    log_traffic(
        ws, generate_loans(SHIFTED_ROWS, seed=9, shift=True), start=now - 3_000,
        seconds_per_row=2.4,
    )  # fmt: skip
    return root


@pytest.fixture
def quiet_ws(tmp_path: Path, trained_root: Path) -> Workspace:
    shutil.copytree(trained_root, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")


@pytest.fixture
def traffic_ws(tmp_path: Path, traffic_root: Path) -> Workspace:
    shutil.copytree(traffic_root, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")
