"""The prediction log: every served prediction, kept on disk for monitoring and delayed labels.

``folder/<model>/seg-<UTC start>-<n>.arrows`` files are Arrow IPC *stream* segments: one schema,
then one record batch per flush. A segment still being written ends in ``.arrows.open`` and is
renamed to ``.arrows`` (sealed) when it reaches ``segment_max_rows`` rows or ``segment_max_age_s``
seconds, or when the log is closed. Readers read both, keep the good batches of a segment whose
last batch was cut short by a crash, and skip segments they cannot read at all
(:mod:`mlscale.serve.predlog_reader`).

Columns: ``ts`` (timestamp[us, UTC]), ``request_id``, ``model``, ``version``, ``latency_ms``, one
``f.<feature>`` per feature and the outputs under the names given (``prediction``,
``proba.<class>``). Numbers are stored as float64, strings as string, booleans as bool. A change of
feature names or types starts a new segment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Self

import numpy as np
import pyarrow as pa

from mlscale.errors import ConfigError, SchemaError
from mlscale.serve.log_columns import PredictionColumns, RecordColumns

log = logging.getLogger("mlscale.serve.predlog")

SEALED = ".arrows"
OPEN = ".arrows.open"
TS_TYPE = pa.timestamp("us", tz="UTC")
BASE_SCHEMA = pa.schema(
    [
        ("ts", TS_TYPE),
        ("request_id", pa.string()),
        ("model", pa.string()),
        ("version", pa.int64()),
        ("latency_ms", pa.float64()),
    ]
)
MAX_OPEN_PER_MODEL = 4  # open segments per model (one per live schema, e.g. a canary's)


class _Entry(NamedTuple):
    model: str
    version: int
    request_id: str
    features: Mapping[str, Sequence[Any]]
    outputs: Mapping[str, Sequence[Any]]
    latency_ms: float
    ts: float
    rows: int


class PredictionLog:
    """Appends predictions to ``folder/<model>/`` from many threads; a background thread writes.

    ``append`` only takes a lock and appends to a list; rows reach the disk (flushed and fsynced)
    within ``flush_interval_s``, so a ``kill -9`` loses at most that much. Call :meth:`close` on
    shutdown. If writing falls behind by more than ``max_buffer_rows`` rows, new rows are dropped
    and counted in ``rows_dropped`` rather than growing memory without bound.

    >>> import tempfile
    >>> from mlscale.serve.predlog_reader import read_log
    >>> folder = Path(tempfile.mkdtemp())
    >>> with PredictionLog(folder) as plog:
    ...     plog.append("loans", 3, "req-1", {"age": [41, 29]}, {"prediction": ["no", "yes"]}, 1.5)
    >>> read_log(folder, model="loans").select(["request_id", "f.age", "prediction"]).to_pylist()
    [{'request_id': 'req-1', 'f.age': 41.0, 'prediction': 'no'}, {'request_id': 'req-1', 'f.age': 29.0, 'prediction': 'yes'}]
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        flush_interval_s: float = 1.0,
        segment_max_rows: int = 100_000,
        segment_max_age_s: float = 3600,
        max_buffer_rows: int = 1_000_000,
        background: bool = True,
    ) -> None:
        if flush_interval_s <= 0 or segment_max_age_s <= 0:
            raise ConfigError(
                f"flush_interval_s and segment_max_age_s must be > 0; "
                f"got {flush_interval_s} and {segment_max_age_s}"
            )
        if segment_max_rows < 1 or max_buffer_rows < 1:
            raise ConfigError(
                f"segment_max_rows and max_buffer_rows must be >= 1; "
                f"got {segment_max_rows} and {max_buffer_rows}"
            )
        self.folder = Path(folder)
        self.flush_interval_s = flush_interval_s
        self.segment_max_rows = segment_max_rows
        self.segment_max_age_s = segment_max_age_s
        self.max_buffer_rows = max_buffer_rows
        self.rows_written = 0
        self.rows_dropped = 0
        self._buffer: list[_Entry] = []
        self._buffered_rows = 0
        self._closed = False
        self._warned_drop = False
        self._known_models: set[str] = set()
        self._lock = threading.Lock()  # guards the buffer; held only for list operations
        self._io_lock = threading.Lock()  # guards segments; taken before _lock, never after
        self._segments: dict[str, list[_Segment]] = {}
        self._stop = threading.Event()
        # background=False: the owner calls flush() itself (an asyncio server does it on its
        # event loop, which avoids a second thread fighting the request path for the GIL).
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="mlscale-predlog", daemon=True)
            self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def append(
        self,
        model: str,
        version: int,
        request_id: str,
        features: Mapping[str, Sequence[Any]],
        outputs: Mapping[str, Sequence[Any]],
        latency_ms: float,
        ts: float | None = None,
    ) -> None:
        """Log one request: ``features`` and ``outputs`` map column names to equal-length lists.

        ``ts`` is seconds since the epoch (default: now). The lists are kept by reference until
        the next flush, so do not change them afterwards. Never touches the disk.
        """
        if isinstance(features, RecordColumns) and isinstance(outputs, PredictionColumns):
            rows = len(features.records)  # built by the server: consistent by construction
            if rows != len(outputs.predictions):
                raise SchemaError(
                    f"prediction log: {rows} rows but {len(outputs.predictions)} answers"
                )
        else:
            rows = _row_count(features, outputs)
        if not rows:
            return
        # numpy arrays (binary tensors, say) as lists; the server's own mappings gather later
        if not isinstance(features, RecordColumns) and any(
            hasattr(v, "tolist") for v in features.values()
        ):
            features = {k: _plain(v) for k, v in features.items()}
        if not isinstance(outputs, PredictionColumns) and any(
            hasattr(v, "tolist") for v in outputs.values()
        ):
            outputs = {k: _plain(v) for k, v in outputs.items()}
        if model not in self._known_models:
            check_model_name(model)
            self._known_models.add(model)
        entry = _Entry(
            model,
            version,
            request_id,
            features,
            outputs,
            latency_ms,
            time.time() if ts is None else ts,
            rows,
        )
        with self._lock:
            if self._closed or self._buffered_rows + rows > self.max_buffer_rows:
                self._drop(rows)
                return
            self._buffer.append(entry)
            self._buffered_rows += rows

    def flush(self) -> None:
        """Write what is buffered now (fsynced), and seal segments older than the age limit."""
        self.write_batches(self.take_batches())

    def take_batches(self, max_entries: int | None = None) -> list[tuple[str, pa.RecordBatch, int]]:
        """Buffered rows as Arrow batches, taken out of the buffer (the CPU half of a flush);
        at most ``max_entries`` appends' worth, oldest first, so a caller can do it in slices.

        With :meth:`write_batches` (the I/O half, which releases the GIL) an asyncio owner can
        build on its event loop and write in a thread.
        """
        with self._lock:
            if max_entries is None or max_entries >= len(self._buffer):
                entries, self._buffer, self._buffered_rows = self._buffer, [], 0
            else:
                entries, self._buffer = self._buffer[:max_entries], self._buffer[max_entries:]
                self._buffered_rows -= sum(e.rows for e in entries)
        groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[_Entry]] = {}
        for entry in entries:
            key = (entry.model, tuple(entry.features), tuple(entry.outputs))
            groups.setdefault(key, []).append(entry)
        batches = []
        for (model, features, outputs), group in groups.items():
            rows = sum(e.rows for e in group)
            try:
                batches.append((model, _to_batch(group, features, outputs), rows))
            except Exception:
                log.exception("prediction log: lost %d rows of model %r", rows, model)
                with self._lock:
                    self.rows_dropped += rows
        return batches

    def has_pending(self) -> bool:
        return bool(self._buffer)

    def pending_entries(self) -> int:
        """Appends waiting to be written."""
        return len(self._buffer)

    def write_batches(self, batches: list[tuple[str, pa.RecordBatch, int]]) -> None:
        """Append batches from :meth:`take_batches` to their segments, fsynced; seal old ones."""
        with self._io_lock:
            for model, batch, rows in batches:
                try:
                    self._write_batch(model, batch)
                    self.rows_written += rows
                except Exception:
                    log.exception("prediction log: lost %d rows of model %r", rows, model)
                    with self._lock:
                        self.rows_dropped += rows
            self._seal_aged()

    def close(self) -> None:
        """Flush everything, seal every open segment and stop the writer thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._io_lock:
            for segments in self._segments.values():
                for segment in segments:
                    segment.seal()
            self._segments.clear()

    # -- writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except Exception:  # the thread must survive a full disk and keep trying
                log.exception("prediction log: flush to %s failed", self.folder)

    def _drop(self, rows: int) -> None:
        self.rows_dropped += rows
        if not self._warned_drop:
            self._warned_drop = True
            reason = "it is closed" if self._closed else f"{self.max_buffer_rows} rows are waiting"
            log.warning("prediction log %s: dropping rows because %s", self.folder, reason)

    def _write_batch(self, model: str, batch: pa.RecordBatch) -> None:
        segments = self._segments.setdefault(model, [])
        segment = None
        for candidate in segments:
            fitted = _fit(batch, candidate.schema)
            if fitted is not None:
                segment, batch = candidate, fitted
                segments.remove(candidate)
                segments.append(candidate)  # most recently used last
                break
        while batch.num_rows:
            if segment is None:
                segment = _Segment.create(self.folder / model, batch.schema)
                segments.append(segment)
                if len(segments) > MAX_OPEN_PER_MODEL:
                    segments.pop(0).seal()
            room = self.segment_max_rows - segment.rows
            try:
                segment.write(batch.slice(0, room))
            except Exception:
                segments.remove(segment)
                segment.abandon()
                raise
            batch = batch.slice(room)
            if segment.rows >= self.segment_max_rows:
                segments.remove(segment)
                segment.seal()
                segment = None

    def _seal_aged(self) -> None:
        now = time.monotonic()
        for segments in self._segments.values():
            for segment in [s for s in segments if now - s.opened >= self.segment_max_age_s]:
                segments.remove(segment)
                segment.seal()


class _Segment:
    """One open ``.arrows.open`` file and its IPC stream writer."""

    def __init__(self, path: Path, file: Any, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self.opened = time.monotonic()
        self._file = file
        self._writer = pa.ipc.new_stream(file, schema)

    @classmethod
    def create(cls, folder: Path, schema: pa.Schema) -> _Segment:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for n in range(1000):
            stem = folder / f"seg-{stamp}-{n:03d}"
            if stem.with_name(stem.name + SEALED).exists():
                continue
            try:  # exclusive create: another process may write to the same folder
                file = open(stem.with_name(stem.name + OPEN), "xb", buffering=1 << 20)  # noqa: SIM115
            except FileExistsError:
                continue
            _fsync_dir(folder)
            return cls(stem.with_name(stem.name + OPEN), file, schema)
        raise FileExistsError(f"no free segment name for {folder}/seg-{stamp}-*")

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows += batch.num_rows

    def seal(self) -> None:
        """Write the end-of-stream marker and rename ``.arrows.open`` to ``.arrows``."""
        try:
            self._writer.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.rename(self.path, self.path.with_name(self.path.name.removesuffix(".open")))
            _fsync_dir(self.path.parent)
        except OSError:
            log.exception("prediction log: could not seal %s; readers still read it", self.path)
            self.abandon()

    def abandon(self) -> None:
        """Give up on a segment whose write failed; its good batches stay readable."""
        with contextlib.suppress(Exception):
            self._file.close()


def _fsync_dir(folder: Path) -> None:
    # Makes a new or renamed file name survive a power cut, not only a process crash.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_model_name(model: str) -> None:
    """A model name that is safe as a folder name, else a SchemaError."""
    if not model or model in (".", "..") or "/" in model or "\\" in model or "\0" in model:
        raise SchemaError(f"model name {model!r} cannot name a prediction log folder")


def _row_count(features: Mapping[str, Sequence[Any]], outputs: Mapping[str, Sequence[Any]]) -> int:
    lengths = {len(v) for v in features.values()}
    lengths.update(len(v) for v in outputs.values())
    if len(lengths) > 1:
        sizes = {name: len(v) for name, v in (*features.items(), *outputs.items())}
        raise SchemaError(f"prediction log: columns differ in length: {sizes}")
    for name in outputs:
        if name in BASE_SCHEMA.names or name.startswith("f."):
            raise SchemaError(
                f"prediction log: output {name!r} clashes with a log column; "
                "use 'prediction' and 'proba.<class>'"
            )
    return lengths.pop() if lengths else 0


def _to_batch(
    group: list[_Entry], features: tuple[str, ...], outputs: tuple[str, ...]
) -> pa.RecordBatch:
    # Comprehensions over the group, not loops with attribute lookups: this runs in the writer
    # thread but holds the GIL, so every microsecond here is taken from the request path.
    ts = [round(e.ts * 1_000_000) for e in group for _ in range(e.rows)]
    arrays = [
        pa.array(ts, TS_TYPE),
        pa.array([e.request_id for e in group for _ in range(e.rows)], pa.string()),
        pa.array([group[0].model] * len(ts), pa.string()),
        pa.array([e.version for e in group for _ in range(e.rows)], pa.int64()),
        pa.array([e.latency_ms for e in group for _ in range(e.rows)], pa.float64()),
    ]
    names = list(BASE_SCHEMA.names)
    feature_maps = [e.features for e in group]
    output_maps = [e.outputs for e in group]
    for maps, prefix, columns in ((feature_maps, "f.", features), (output_maps, "", outputs)):
        arrays.extend(_columns(maps, columns))
        names.extend(prefix + name for name in columns)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _columns(maps: list[Mapping[str, Sequence[Any]]], names: tuple[str, ...]) -> list[pa.Array]:
    """The columns ``names`` of many appends, gathered in one pass per column where possible."""
    if all(type(m) is RecordColumns for m in maps):
        records = [r for m in maps for r in m.records]  # type: ignore[attr-defined]
        return [_column([r[name] for r in records]) for name in names]
    if all(type(m) is PredictionColumns for m in maps):
        answers: list[PredictionColumns] = maps  # type: ignore[assignment]
        columns = [_column([v for m in answers for v in m.predictions])]
        if len(names) > 1:
            matrix = np.concatenate([m.probabilities for m in answers])
            columns.extend(pa.array(matrix[:, j], pa.float64()) for j in range(len(names) - 1))
        return columns
    return [_column([v for m in maps for v in m[name]]) for name in names]


def _plain(values: Sequence[Any]) -> Sequence[Any]:
    return values.tolist() if hasattr(values, "tolist") else values  # numpy arrays


def _column(values: list[Any]) -> pa.Array:
    """Numbers as float64, strings as string, booleans as bool; anything else as its text."""
    try:
        array = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        array = None
    if array is not None:
        kind = array.type
        if pa.types.is_null(kind) or pa.types.is_boolean(kind) or pa.types.is_string(kind):
            return array
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            return array.cast(pa.float64())
        if pa.types.is_large_string(kind):
            return array.cast(pa.string())
    elif all(v is None or isinstance(v, int | float) for v in values):  # e.g. True and 2
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values], pa.string())


def _fit(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch | None:
    """``batch`` in ``schema``'s column order and types, or None when it does not fit."""
    if batch.num_columns != len(schema) or set(batch.schema.names) != set(schema.names):
        return None
    if batch.schema == schema:
        return batch
    arrays = []
    for target in schema:
        array = batch.column(target.name)
        if array.type != target.type:
            if not pa.types.is_null(array.type):
                return None
            array = pa.nulls(len(array), target.type)  # an all-null column fits any type
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
