"""Shared fixtures: fresh workspaces and small generated loan data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from mlscale import Workspace
from mlscale.quickstart.loans import write_loans_csv

PG_URL = os.environ.get("MLSCALE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[sa.Engine]:
    """An AUTOCOMMIT engine on the test server, for creating and dropping databases."""
    url = sa.make_url(PG_URL).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(
        url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0]
        message = (
            f"PostgreSQL not reachable at {url.render_as_string(hide_password=True)}: {reason}; "
            "start it or set MLSCALE_TEST_PG_URL"
        )
        if os.environ.get("MLSCALE_REQUIRE_POSTGRES") == "1":  # CI: a skip would hide a gap
            pytest.fail(message)
        pytest.skip(message)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_server: sa.Engine) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"mlscale_t_{uuid4().hex}"
    with pg_server.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield pg_server.url.set(database=name).render_as_string(hide_password=False)
    with pg_server.connect() as conn:
        # FORCE ends connections a failed test may have left open.
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    return write_loans_csv(
        tmp_path_factory.mktemp("data") / "fresh.csv", 2_000, seed=8, label=False
    )


@pytest.fixture
def trained_ws(ws: Workspace, loans_csv: Path) -> Workspace:
    """A workspace with loans@1 ingested, loans@1 trained and promoted to production."""
    ws.ingest(loans_csv, name="loans")
    result = ws.train("loans@latest", target="default", exclude=["loan_id"])
    ws.promote("loans", result.model.version, alias="production")
    return ws
