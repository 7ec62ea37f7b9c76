"""Connecting to the metadata database: the engine, SQLite's settings, the migrations.

SQLite runs in WAL mode with a busy timeout, and a transaction that writes takes the write lock
when it begins. Opening a database upgrades its schema to the head of ``migrations/``, one process
at a time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from mlscale._lazy import require
from mlscale.errors import ConfigError

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed number: every process that migrates a PostgreSQL database takes this advisory lock.
_MIGRATION_LOCK = 0x6D6C7363616C65
# Alembic's ``context`` is process-global, so one migration at a time per process, whatever the
# database. Taken before any database lock, so it cannot be part of a lock cycle.
_MIGRATING = threading.Lock()
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def open_engine(url: str) -> Engine:
    """An engine on the database at ``url``, its schema migrated to head; a ConfigError that
    names the database (password hidden) when it cannot be opened."""
    engine = _create_engine(url)
    try:
        with _MIGRATING, writer(engine).begin() as conn:
            _migrate(conn)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise ConfigError(
            f"cannot open the metadata database {masked(url)}: {_reason(exc)}"
        ) from exc
    except BaseException:
        engine.dispose()
        raise
    return engine


def writer(engine: Engine) -> Engine:
    """``engine`` for transactions that write: on SQLite they begin with the write lock."""
    return engine.execution_options(mlscale_write=True)


def masked(url: str) -> str:
    """``url`` with its password hidden, fit for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"


def _reason(exc: sa.exc.DBAPIError) -> str:
    text = str(exc.orig if exc.orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc.orig).__name__


def _create_engine(url: str) -> Engine:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"invalid metadata database URL {url!r}: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgresql+psycopg"):
        require("psycopg", extra="postgres")
        parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, connect_args={"connect_timeout": 5})
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    raise ConfigError(
        f"unsupported metadata database URL {masked(url)}: expected sqlite:///PATH "
        "or postgresql://USER@HOST/DATABASE"
    )


def _on_sqlite_connect(dbapi_conn: Any, _: Any) -> None:
    # Leave BEGIN to _on_sqlite_begin: the driver's own transaction handling makes DDL
    # non-transactional and cannot take the write lock up front.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once ("database is locked") when
    # another writer committed in between; BEGIN IMMEDIATE waits its turn (busy_timeout) instead.
    write = conn.get_execution_options().get("mlscale_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _migrate(conn: Connection) -> None:
    """Upgrade the schema to head inside the caller's transaction, one process at a time."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    # On SQLite the caller's BEGIN IMMEDIATE already serializes migrations.
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
