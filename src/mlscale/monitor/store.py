"""Where window summaries live: one SQLite file, ``.mlscale/monitor/windows.db``, per workspace.

Why SQLite and not files or the metadata database: an update must move the log cursor and the
bucket summaries together, or a crash between the two would count rows twice or never. One
SQLite transaction does that, serialises concurrent updaters (``BEGIN IMMEDIATE``) and lets
readers run alongside (WAL). The summaries are derived data, rebuilt from the prediction log at
will (``--rebuild``), and live next to the log on the same host, so they stay out of the
metadata database (which may be a shared PostgreSQL server) and need no migrations.

Tables: ``meta`` (bucket width per model), ``refs`` (references attached to versions after
training, by artifact sha), ``cursor`` (rows consumed per log segment, and
whether the segment is finished), ``buckets`` (one summary per model, version and bucket start,
with the id of the reference it was counted on).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mlscale.config import STATE_DIR
from mlscale.monitor.sqlite_file import SqliteFile

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (model TEXT PRIMARY KEY, resolution_s INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursor (
    model TEXT NOT NULL, segment TEXT NOT NULL, rows INTEGER NOT NULL, done INTEGER NOT NULL,
    note TEXT, PRIMARY KEY (model, segment));
CREATE TABLE IF NOT EXISTS refs (
    model TEXT NOT NULL, version INTEGER NOT NULL, sha TEXT NOT NULL,
    PRIMARY KEY (model, version));
CREATE TABLE IF NOT EXISTS buckets (
    model TEXT NOT NULL, version INTEGER NOT NULL, start INTEGER NOT NULL, ref TEXT NOT NULL,
    rows INTEGER NOT NULL, summary BLOB NOT NULL, PRIMARY KEY (model, version, start));
"""


class Bucket(NamedTuple):
    start: int
    ref: str
    rows: int
    summary: bytes


class Position(NamedTuple):
    rows: int
    done: bool


def open_store(ws: Workspace) -> WindowStore:
    """The workspace's store (``.mlscale/monitor/windows.db``)."""
    return WindowStore(ws.root / STATE_DIR / "monitor" / "windows.db")


class WindowStore(SqliteFile):
    """The summaries and log cursors of every model of a workspace (close it, or use ``with``).

    >>> import tempfile
    >>> with WindowStore(Path(tempfile.mkdtemp()) / "w.db") as store, store.transaction():
    ...     store.put_bucket("loans", 1, 60, "ref", 5, b"{}")
    ...     [b.rows for b in store.buckets("loans", 1)]
    [5]
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    # -- settings and cursors --
    def resolution(self, model: str) -> int | None:
        row = self._db.execute("SELECT resolution_s FROM meta WHERE model = ?", (model,)).fetchone()
        return None if row is None else int(row[0])

    def set_resolution(self, model: str, seconds: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (model, resolution_s) VALUES (?, ?)", (model, seconds)
        )

    def position(self, model: str, segment: str) -> Position:
        row = self._db.execute(
            "SELECT rows, done FROM cursor WHERE model = ? AND segment = ?", (model, segment)
        ).fetchone()
        return Position(0, False) if row is None else Position(int(row[0]), bool(row[1]))

    def set_position(
        self, model: str, segment: str, rows: int, done: bool, note: str | None = None
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO cursor (model, segment, rows, done, note) VALUES (?, ?, ?, ?, ?)",
            (model, segment, rows, int(done), note),
        )

    def forget_segments(self, model: str, keep: set[str]) -> None:
        """Drop the cursors of finished segments no longer in the log (deleted by retention)."""
        rows = self._db.execute(
            "SELECT segment FROM cursor WHERE model = ? AND done = 1", (model,)
        ).fetchall()
        gone = [(model, s) for (s,) in rows if s not in keep]
        self._db.executemany("DELETE FROM cursor WHERE model = ? AND segment = ?", gone)

    def notes(self, model: str) -> list[str]:
        """What went wrong with segments of ``model`` (corrupt ones, skipped rows)."""
        rows = self._db.execute(
            "SELECT segment, note FROM cursor WHERE model = ? AND note IS NOT NULL ORDER BY segment",
            (model,),
        )
        return [f"{segment}: {note}" for segment, note in rows]

    def attached_reference(self, model: str, version: int) -> str | None:
        row = self._db.execute(
            "SELECT sha FROM refs WHERE model = ? AND version = ?", (model, version)
        ).fetchone()
        return None if row is None else str(row[0])

    def attach_reference(self, model: str, version: int, sha: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO refs (model, version, sha) VALUES (?, ?, ?)",
            (model, version, sha),
        )

    def drop(self, model: str) -> None:
        """Forget everything about ``model``: the next update starts from the log's beginning."""
        for table in ("meta", "cursor", "buckets"):
            self._db.execute(f"DELETE FROM {table} WHERE model = ?", (model,))

    # -- bucket summaries --
    def get_bucket(self, model: str, version: int, start: int) -> Bucket | None:
        row = self._db.execute(
            "SELECT start, ref, rows, summary FROM buckets "
            "WHERE model = ? AND version = ? AND start = ?",
            (model, version, start),
        ).fetchone()
        return None if row is None else Bucket(*row)

    def put_bucket(
        self, model: str, version: int, start: int, ref: str, rows: int, summary: bytes
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO buckets (model, version, start, ref, rows, summary) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (model, version, start, ref, rows, summary),
        )

    def buckets(
        self,
        model: str,
        version: int,
        since: int | None = None,
        until: int | None = None,
        *,
        newest_first: bool = False,
    ) -> Iterator[Bucket]:
        """Summaries with ``since <= start < until``, one at a time (memory stays flat)."""
        order = "DESC" if newest_first else "ASC"
        cursor = self._db.execute(
            "SELECT start, ref, rows, summary FROM buckets WHERE model = ? AND version = ? "
            f"AND start >= ? AND start < ? ORDER BY start {order}",
            (
                model,
                version,
                -(2**62) if since is None else since,
                2**62 if until is None else until,
            ),
        )
        for row in cursor:
            yield Bucket(*row)

    def span(self, model: str, version: int) -> tuple[int, int, int] | None:
        """(first bucket start, last bucket start, rows) of a version, or None when it has none."""
        row = self._db.execute(
            "SELECT MIN(start), MAX(start), SUM(rows) FROM buckets WHERE model = ? AND version = ?",
            (model, version),
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]), int(row[2]))

    def versions(self, model: str) -> list[int]:
        rows = self._db.execute(
            "SELECT DISTINCT version FROM buckets WHERE model = ? ORDER BY version", (model,)
        )
        return [int(v) for (v,) in rows]
