"""Fixtures for the store tests: one ``store`` per backend, each on a fresh, private database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlscale.store.sql import SqlMetadataStore


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
