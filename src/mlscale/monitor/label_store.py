"""Where delayed labels live, with the index of logged predictions they join: one SQLite file,
``.mlscale/monitor/labels.db``, per workspace.

Why not the window summaries' store: labels are primary data (once ingested they exist nowhere
else), while the summaries are derived and rebuilt at will; a rebuild must never touch a label.
Why an index of prediction rows: a label names a logged row by id, and the log has no index, so
joining, counting unknown ids or reading one window's labelled rows would scan every segment.
The index holds what metrics need (row id, version, time, outputs; not the features) and is
folded in from the log like the summaries (:mod:`mlscale.monitor.prediction_index`).

Tables: ``labels`` (model, row id, label, the label's own time, when it arrived), ``rows`` (one
per logged prediction row and version: id, time in microseconds, the segment it came from, the
prediction and the class probabilities as float64 bytes in the version's class order), and
``segments`` (rows read per log segment, whether it is finished, what went wrong with it, and
its last request, so a request cut across two segments keeps one numbering).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mlscale.config import STATE_DIR
from mlscale.monitor.sqlite_file import SqliteFile

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    model TEXT NOT NULL, key TEXT NOT NULL, label NOT NULL, label_ts REAL, received REAL NOT NULL,
    PRIMARY KEY (model, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rows (
    model TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, ts INTEGER NOT NULL,
    seg INTEGER NOT NULL, prediction, proba BLOB,
    PRIMARY KEY (model, key, version)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rows_by_time ON rows (model, version, ts);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, model TEXT NOT NULL, name TEXT NOT NULL, rows INTEGER NOT NULL,
    done INTEGER NOT NULL, note TEXT, tail_request TEXT, tail_version INTEGER, tail_rows INTEGER,
    UNIQUE (model, name));
"""
_CHUNK = 500  # keys per IN (...) query: under SQLite's variable limit


class Segment(NamedTuple):
    id: int
    rows: int
    done: bool


class IndexedRow(NamedTuple):
    """One logged prediction row of a window, with its label when one has arrived."""

    ts: int  # microseconds since the epoch
    prediction: Any
    proba: bytes | None
    label: Any


def open_label_store(ws: Workspace) -> LabelStore:
    """The workspace's label store (``.mlscale/monitor/labels.db``)."""
    return LabelStore(ws.root / STATE_DIR / "monitor" / "labels.db")


class LabelStore(SqliteFile):
    """Labels and indexed prediction rows of every model of a workspace (close it, or ``with``).

    >>> import tempfile
    >>> with LabelStore(Path(tempfile.mkdtemp()) / "l.db") as store, store.transaction():
    ...     _ = store.put_labels("loans", [("req-1", "1", None)], received=0.0)
    ...     store.put_rows("loans", [("req-1", 1, 60_000_000, 0, 1.0, None)])
    ...     store.label_counts("loans")
    (1, 1)
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, check_same_thread=False)

    # -- labels --
    def put_labels(
        self, model: str, labels: Sequence[tuple[str, Any, float | None]], *, received: float
    ) -> int:
        """Store ``(row id, label, label time)`` triples (the latest wins); returns how many ids
        already had a label."""
        existing = len(self.labelled_keys(model, [key for key, _, _ in labels]))
        self._db.executemany(
            "INSERT OR REPLACE INTO labels (model, key, label, label_ts, received) "
            "VALUES (?, ?, ?, ?, ?)",
            [(model, key, label, ts, received) for key, label, ts in labels],
        )
        return existing

    def labels_for(self, model: str, keys: Iterable[str]) -> dict[str, Any]:
        """The stored label of each of ``keys`` that has one."""
        found: dict[str, Any] = {}
        keys = list(keys)
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            found.update(
                self._db.execute(
                    f"SELECT key, label FROM labels WHERE model = ? AND key IN ({marks})",
                    (model, *part),
                ).fetchall()
            )
        return found

    def labelled_keys(self, model: str, keys: Iterable[str]) -> set[str]:
        return self._present("labels", model, keys)

    def indexed_keys(self, model: str, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that name a logged prediction row of ``model`` (any version)."""
        return self._present("rows", model, keys)

    def _present(self, table: str, model: str, keys: Iterable[str]) -> set[str]:
        found: set[str] = set()
        keys = list(keys)
        for i in range(0, len(keys), _CHUNK):
            part = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            found.update(
                k
                for (k,) in self._db.execute(
                    f"SELECT DISTINCT key FROM {table} WHERE model = ? AND key IN ({marks})",
                    (model, *part),
                )
            )
        return found

    def label_counts(self, model: str) -> tuple[int, int]:
        """(labels stored, of which some logged prediction row carries the id)."""
        total = self._db.execute("SELECT COUNT(*) FROM labels WHERE model = ?", (model,))
        joined = self._db.execute(
            "SELECT COUNT(*) FROM labels l WHERE l.model = ? AND EXISTS "
            "(SELECT 1 FROM rows r WHERE r.model = l.model AND r.key = l.key)",
            (model,),
        )
        return int(total.fetchone()[0]), int(joined.fetchone()[0])

    def unknown_keys(self, model: str, limit: int = 10) -> list[str]:
        """Ids of stored labels that no logged prediction row carries (yet), oldest first."""
        rows = self._db.execute(
            "SELECT l.key FROM labels l WHERE l.model = ? AND NOT EXISTS "
            "(SELECT 1 FROM rows r WHERE r.model = l.model AND r.key = l.key) "
            "ORDER BY l.received, l.key LIMIT ?",
            (model, limit),
        )
        return [k for (k,) in rows]

    # -- indexed prediction rows --
    def put_rows(
        self, model: str, rows: Sequence[tuple[str, int, int, int, Any, bytes | None]]
    ) -> None:
        """Index ``(row id, version, ts in us, segment id, prediction, proba bytes)`` rows; a row
        id seen before for the same version points to the newer prediction."""
        self._db.executemany(
            "INSERT OR REPLACE INTO rows (model, key, version, ts, seg, prediction, proba) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(model, *row) for row in rows],
        )

    def rename_row(self, model: str, version: int, key: str, new_key: str) -> None:
        self._db.execute(
            "UPDATE OR REPLACE rows SET key = ? WHERE model = ? AND version = ? AND key = ?",
            (new_key, model, version, key),
        )

    def window_rows(
        self, model: str, version: int, since_us: int, until_us: int
    ) -> list[IndexedRow]:
        """Indexed rows of ``model@version`` with ``since <= ts < until``, oldest first."""
        cursor = self._db.execute(
            "SELECT r.ts, r.prediction, r.proba, l.label FROM rows r LEFT JOIN labels l "
            "ON l.model = r.model AND l.key = r.key "
            "WHERE r.model = ? AND r.version = ? AND r.ts >= ? AND r.ts < ? ORDER BY r.ts, r.key",
            (model, version, since_us, until_us),
        )
        return list(map(IndexedRow._make, cursor))

    def span(self, model: str, version: int) -> tuple[int, int, int] | None:
        """(first ts, last ts, rows) indexed for a version (microseconds), or None."""
        row = self._db.execute(
            "SELECT MIN(ts), MAX(ts), COUNT(*) FROM rows WHERE model = ? AND version = ?",
            (model, version),
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]), int(row[2]))

    def indexed_versions(self, model: str) -> list[int]:
        rows = self._db.execute(
            "SELECT DISTINCT version FROM rows WHERE model = ? ORDER BY version", (model,)
        )
        return [int(v) for (v,) in rows]

    # -- log segments --
    def segment(self, model: str, name: str) -> Segment:
        """The cursor of a log segment, created (at row 0) on first sight."""
        row = self._db.execute(
            "SELECT id, rows, done FROM segments WHERE model = ? AND name = ?", (model, name)
        ).fetchone()
        if row is None:
            cursor = self._db.execute(
                "INSERT INTO segments (model, name, rows, done) VALUES (?, ?, 0, 0)", (model, name)
            )
            return Segment(int(cursor.lastrowid or 0), 0, False)
        return Segment(int(row[0]), int(row[1]), bool(row[2]))

    def advance(
        self,
        segment_id: int,
        rows: int,
        done: bool,
        note: str | None = None,
        tail: tuple[str, int, int] | None = None,
    ) -> None:
        """Record rows read, whether the segment is finished, a problem, and its last request
        (request id, version, rows so far) when rows were read."""
        self._db.execute(
            "UPDATE segments SET rows = ?, done = ?, note = COALESCE(?, note) WHERE id = ?",
            (rows, int(done), note, segment_id),
        )
        if tail is not None:
            self._db.execute(
                "UPDATE segments SET tail_request = ?, tail_version = ?, tail_rows = ? "
                "WHERE id = ?",
                (*tail, segment_id),
            )

    def take_tail(self, model: str, segment_id: int, request_id: str, version: int) -> int:
        """Rows of ``request_id`` already indexed at the end of another segment (a request the
        log cut across two segments), or 0; that tail is then used up."""
        row = self._db.execute(
            "SELECT id, tail_rows FROM segments WHERE model = ? AND id != ? AND tail_request = ? "
            "AND tail_version = ? ORDER BY id DESC LIMIT 1",
            (model, segment_id, request_id, version),
        ).fetchone()
        if row is None:
            return 0
        self._db.execute("UPDATE segments SET tail_request = NULL WHERE id = ?", (row[0],))
        return int(row[1] or 0)

    def notes(self, model: str) -> list[str]:
        """What went wrong with log segments of ``model`` (corrupt ones, skipped rows)."""
        rows = self._db.execute(
            "SELECT name, note FROM segments WHERE model = ? AND note IS NOT NULL ORDER BY name",
            (model,),
        )
        return [f"{name}: {note}" for name, note in rows]

    def forget_segments(self, model: str, keep: set[str]) -> int:
        """Drop finished segments no longer in the log (deleted by retention) and their rows;
        returns how many rows went. Their labels stay."""
        gone = [
            (seg_id,)
            for seg_id, name in self._db.execute(
                "SELECT id, name FROM segments WHERE model = ? AND done = 1", (model,)
            ).fetchall()
            if name not in keep
        ]
        if not gone:
            return 0
        ids = [seg_id for (seg_id,) in gone]
        removed = 0
        for i in range(0, len(ids), _CHUNK):  # one pass over the rows per chunk, not per segment
            part = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            cursor = self._db.execute(
                f"DELETE FROM rows WHERE model = ? AND seg IN ({marks})", (model, *part)
            )
            removed += cursor.rowcount
        self._db.executemany("DELETE FROM segments WHERE id = ?", gone)
        return removed
