"""Fixtures for the store tests: one ``store`` per backend, each on a fresh, private database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from mlscale.store.sql import SqlMetadataStore

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
        pytest.skip(
            f"PostgreSQL not reachable at {url.render_as_string(hide_password=True)}: {reason}; "
            "start it or set MLSCALE_TEST_PG_URL"
        )
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty metadata database for each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[SqlMetadataStore]:
    """A metadata store on a new database, closed after the test."""
    opened = SqlMetadataStore(store_url)
    yield opened
    opened.close()
