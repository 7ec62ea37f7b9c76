"""One small SQLite file of the monitor's: WAL, explicit write transactions, closed with ``with``.

The window summaries, the labels and the alert state each keep their own file (derived or
append-only data, so no migrations); this is what they share.

>>> import tempfile
>>> from pathlib import Path
>>> with SqliteFile(Path(tempfile.mkdtemp()) / "x.db", "CREATE TABLE t (v INT);") as f:
...     with f.transaction():
...         _ = f._db.execute("INSERT INTO t VALUES (1)")
...     f._db.execute("SELECT count(*) FROM t").fetchone()
(1,)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self


class SqliteFile:
    """A SQLite database at ``path`` with ``schema`` applied (``CREATE ... IF NOT EXISTS``)."""

    def __init__(self, path: Path, schema: str, *, check_same_thread: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: transactions are opened explicitly, as BEGIN IMMEDIATE.
        self._db = sqlite3.connect(
            path, timeout=60, isolation_level=None, check_same_thread=check_same_thread
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all; other writers wait."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
