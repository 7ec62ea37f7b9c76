"""Traffic and latency over time, read from the prediction log incrementally.

The log holds one row per predicted row, with the request it came in (``request_id``), its
version, its time and the request's latency. :class:`TrafficIndex` folds the rows it has not read
yet into per-minute counts (requests, rows) and a per-minute histogram of request latencies on
fixed log-spaced edges, so any period's percentiles are a sum of histograms: O(minutes x bins),
whatever the traffic. What it read is remembered per segment (an open segment is re-read from
where it stopped), and minutes older than ``keep_s`` are forgotten, so memory stays bounded.

It is in-process derived state, rebuilt from the log when a process starts; the log itself stays
the one source of truth (it is also what :mod:`mlscale.monitor` summarises).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.serve.predlog import OPEN
from mlscale.serve.predlog_reader import LogStats, read_segment, segment_paths

MINUTE = 60
#: Request latency bins in milliseconds: 20 per decade from 10 us to 100 s (about 12 % wide).
LATENCY_EDGES_MS = np.logspace(-2, 5, 141)
KEEP_S = 8 * 86_400  # a little more than the longest dashboard window (7 days)


@dataclass
class _Minute:
    requests: int = 0
    rows: int = 0
    latency: np.ndarray = field(
        default_factory=lambda: np.zeros(len(LATENCY_EDGES_MS) + 1, np.int64)
    )


@dataclass(frozen=True)
class TrafficPoint:
    """One period of one model's traffic (every version together unless one was asked for)."""

    start: float  # epoch seconds
    requests: int
    rows: int
    p50_ms: float  # NaN when the period had no requests
    p95_ms: float
    p99_ms: float


def percentile(hist: np.ndarray, q: float) -> float:
    """The ``q`` quantile (0..1) of a latency histogram on :data:`LATENCY_EDGES_MS`,
    interpolated inside its bin on a log scale (the bins are log-spaced); NaN when empty.

    >>> hist = np.zeros(len(LATENCY_EDGES_MS) + 1, np.int64)
    >>> hist[np.searchsorted(LATENCY_EDGES_MS, 5.0)] = 10  # ten requests of about 5 ms
    >>> 4.4 < percentile(hist, 0.5) < 5.7
    True
    """
    total = int(hist.sum())
    if not total:
        return math.nan
    target = q * total
    cumulative = np.cumsum(hist)
    i = int(np.searchsorted(cumulative, target))
    i = min(i, len(hist) - 1)
    below = cumulative[i - 1] if i else 0
    share = (target - below) / hist[i] if hist[i] else 0.0
    edges = LATENCY_EDGES_MS
    lo = edges[i - 1] if i else edges[0] / 1.12
    hi = edges[i] if i < len(edges) else edges[-1] * 1.12
    return float(lo * (hi / lo) ** min(max(share, 0.0), 1.0))


class TrafficIndex:
    """Per-minute requests, rows and latency histograms of every model version in a log folder.

    >>> import tempfile
    >>> from mlscale.serve.predlog import PredictionLog
    >>> folder = Path(tempfile.mkdtemp())
    >>> with PredictionLog(folder) as plog:
    ...     plog.append("loans", 1, "r1", {"age": [30, 40]}, {"prediction": [0, 1]}, 4.0, ts=600)
    ...     plog.append("loans", 1, "r2", {"age": [50]}, {"prediction": [1]}, 8.0, ts=610)
    >>> index = TrafficIndex(folder)
    >>> point, = index.series("loans", since=600, until=660, step=60, now=660)
    >>> point.requests, point.rows  # two requests of three rows
    (2, 3)
    >>> abs(point.p50_ms / 4 - 1) < 0.12, abs(point.p99_ms / 8 - 1) < 0.12  # within a bin
    (True, True)
    """

    def __init__(self, folder: Path, *, keep_s: int = KEEP_S) -> None:
        self.folder = folder
        self.keep_s = keep_s
        self._lock = threading.Lock()  # one reader of the log at a time; series wait for it
        self._read: dict[tuple[str, str], int] = {}  # (model, segment) -> rows consumed
        self._done: set[tuple[str, str]] = set()
        self._minutes: dict[str, dict[tuple[int, int], _Minute]] = {}
        self.problems: list[str] = []

    def models(self) -> list[str]:
        """The models that have a folder in the log."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir())

    def update(self, model: str, *, now: float | None = None) -> int:
        """Read ``model``'s log rows not read before; returns how many were new."""
        now = time.time() if now is None else now
        horizon = now - self.keep_s
        new = 0
        with self._lock:
            paths = segment_paths(self.folder, model) if (self.folder / model).is_dir() else []
            for path in paths:
                segment = path.name.removesuffix(".open")
                key = (model, segment)
                if key in self._done:
                    continue
                sealed = not path.name.endswith(OPEN)
                # A finished segment last written before the horizon holds nothing we keep.
                if sealed and _mtime(path) < horizon:
                    self._done.add(key)
                    continue
                stats = LogStats()
                table = read_segment(path, stats)
                if stats.problems:
                    self.problems = [*self.problems, *stats.problems][-5:]
                if table is None:
                    if stats.corrupt:
                        self._done.add(key)
                    continue
                start = self._read.get(key, 0)
                if table.num_rows > start:
                    self._fold(model, table.slice(start), horizon)
                    new += table.num_rows - start
                self._read[key] = max(start, table.num_rows)
                if sealed:
                    self._done.add(key)
            present = {(model, p.name.removesuffix(".open")) for p in paths}
            for key in [k for k in self._read if k[0] == model and k not in present]:
                del self._read[key]  # deleted by retention
                self._done.discard(key)
            minutes = self._minutes.get(model, {})
            for key in [k for k in minutes if k[1] < horizon]:
                del minutes[key]
        return new

    def _fold(self, model: str, table: pa.Table, horizon: float) -> None:
        columns = table.select(["ts", "request_id", "version", "latency_ms"])
        ts = np.asarray(pc.cast(columns["ts"], pa.int64()), dtype=np.int64) // 1_000_000
        versions = np.asarray(columns["version"].fill_null(0), dtype=np.int64)
        latency = np.asarray(columns["latency_ms"].fill_null(0.0), dtype=np.float64)
        ids = columns["request_id"].combine_chunks()
        n = len(ts)
        # The rows of one request are logged together and share its id and latency: a request
        # starts where the id or the version changes. (A client reusing one id for consecutive
        # requests reads as one request; the rows still count.)
        starts = np.ones(n, dtype=bool)
        if n > 1:
            same_id = pc.equal(ids.slice(1), ids.slice(0, n - 1)).fill_null(False)
            starts[1:] = ~(np.asarray(same_id, dtype=bool) & (versions[1:] == versions[:-1]))
        minute = ts // MINUTE * MINUTE
        keep = minute >= horizon
        if not keep.all():
            minute, versions, latency, starts = (
                a[keep] for a in (minute, versions, latency, starts)
            )
        keys, inverse = np.unique(np.stack([versions, minute]), axis=1, return_inverse=True)
        inverse = inverse.reshape(-1)
        m, bins = keys.shape[1], len(LATENCY_EDGES_MS) + 1
        rows = np.bincount(inverse, minlength=m)
        requests = np.bincount(inverse[starts], minlength=m)
        slots = inverse[starts] * bins + np.searchsorted(LATENCY_EDGES_MS, latency[starts])
        hist = np.bincount(slots, minlength=m * bins).reshape(m, bins)
        store = self._minutes.setdefault(model, {})
        for j in range(m):
            key = (int(keys[0, j]), int(keys[1, j]))
            entry = store.get(key)
            if entry is None:
                entry = store[key] = _Minute()
            entry.requests += int(requests[j])
            entry.rows += int(rows[j])
            entry.latency += hist[j]

    def versions(self, model: str) -> list[int]:
        """The versions of ``model`` with traffic in memory."""
        with self._lock:
            return sorted({v for v, _ in self._minutes.get(model, {})})

    def first_minute(self, model: str, since: float) -> float | None:
        """The first minute at or after ``since`` with traffic, or None."""
        with self._lock:
            starts = [m for _, m in self._minutes.get(model, {}) if m >= since]
        return float(min(starts)) if starts else None

    def series(
        self,
        model: str,
        *,
        since: float,
        until: float,
        step: int,
        version: int | None = None,
        now: float | None = None,
    ) -> list[TrafficPoint]:
        """One point per ``step`` seconds from ``since`` (aligned down) to ``until``, after reading
        what the log gained; periods without requests have zero counts and NaN percentiles."""
        self.update(model, now=now)
        first = int(since // step * step)
        count = max(math.ceil((until - first) / step), 1)
        totals = [_Minute() for _ in range(count)]
        with self._lock:
            for (v, minute), entry in self._minutes.get(model, {}).items():
                if version is not None and v != version:
                    continue
                k = (minute - first) // step
                if 0 <= k < count:
                    totals[k].requests += entry.requests
                    totals[k].rows += entry.rows
                    totals[k].latency += entry.latency
        return [_point(first + k * step, t) for k, t in enumerate(totals)]

    def total(
        self, model: str, *, since: float, until: float, version: int | None = None
    ) -> TrafficPoint:
        """The whole period ``since..until`` as one point (call :meth:`update` first)."""
        total = _Minute()
        with self._lock:
            for (v, minute), entry in self._minutes.get(model, {}).items():
                if (version is None or v == version) and since <= minute < until:
                    total.requests += entry.requests
                    total.rows += entry.rows
                    total.latency += entry.latency
        return _point(since, total)


def _point(start: float, m: _Minute) -> TrafficPoint:
    return TrafficPoint(
        float(start),
        m.requests,
        m.rows,
        percentile(m.latency, 0.50),
        percentile(m.latency, 0.95),
        percentile(m.latency, 0.99),
    )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # sealed (renamed) or deleted since the listing
        return math.inf
