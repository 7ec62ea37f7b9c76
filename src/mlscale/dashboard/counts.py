"""Requests and errors over time, from the server's counters.

Failed requests never reach the prediction log, so errors come from the server's metrics
(:class:`mlscale.serve.metrics.ServerMetrics`): cumulative counts by model and status code since
the server started. :class:`CountsHistory` samples them every few seconds and keeps the samples,
so an error rate over any period is the difference of two samples. A counter that goes down (a
server restarted) counts from zero again, as Prometheus's ``rate`` does.

Two sources: a live ``ServerMetrics`` (the dashboard mounted in ``mlscale serve``), or the files
that the workers of a multi-worker server share (``.mlscale/run/metrics-<port>/``), read by the
standalone ``mlscale dashboard``.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from mlscale.serve.metrics import UNKNOWN, ServerMetrics

#: model -> status code -> requests answered with it, since the server started.
Counts = dict[str, dict[int, int]]
SAMPLE_EVERY_S = 10.0
KEEP_S = 8 * 86_400


def counts_from_metrics(metrics: ServerMetrics) -> Counts:
    """Every worker's request counts by model and code (through the metrics' collector).

    >>> metrics = ServerMetrics()
    >>> metrics.observe_request("loans", 1, 200, 0.01, rows=3)
    >>> metrics.observe_request("loans", 2, 422, 0.01)
    >>> counts_from_metrics(metrics)
    {'loans': {200: 1, 422: 1}}
    """
    out: Counts = {}
    for family in metrics.collect():
        if family.name != "mlscale_requests":
            continue
        for sample in family.samples:
            if sample.name != "mlscale_requests_total":
                continue
            codes = out.setdefault(sample.labels["model"], {})
            code = int(sample.labels["code"])
            codes[code] = codes.get(code, 0) + int(sample.value)
    return out


def counts_from_files(run_dir: Path) -> Counts:
    """The request counts the workers of multi-worker servers share under ``run_dir``
    (``metrics-<port>/worker-<pid>.json``, rewritten every second by each worker)."""
    out: Counts = {}
    for path in sorted(run_dir.glob("metrics-*/worker-*.json")):
        try:
            snapshot = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue  # being replaced right now: the next sample reads it
        for series in snapshot.get("series", []):
            codes = out.setdefault(series["labels"][0], {})
            for code, count in series["codes"].items():
                codes[int(code)] = codes.get(int(code), 0) + int(count)
    return out


@dataclass(frozen=True)
class ErrorPoint:
    """Requests and failed requests (4xx and 5xx) of one period."""

    start: float
    requests: int
    errors: int

    @property
    def rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan


class CountsHistory:
    """Samples of the counts read by ``read``, taken every ``every_s`` seconds by a daemon
    thread (:meth:`start`) and whenever the dashboard asks.

    >>> metrics = ServerMetrics()
    >>> history = CountsHistory(lambda: counts_from_metrics(metrics))
    >>> metrics.observe_request("loans", 1, 200, 0.01)  # before the first sample: no time
    >>> history.sample(now=0)
    >>> for _ in range(8):
    ...     metrics.observe_request("loans", 1, 200, 0.01)
    >>> metrics.observe_request("loans", 1, 500, 0.01)
    >>> metrics.observe_request("loans", 1, 422, 0.01)
    >>> history.sample(now=60)
    >>> point, = history.series("loans", since=0, until=60, step=60)
    >>> point.requests, point.errors, point.rate
    (10, 2, 0.2)
    """

    def __init__(
        self,
        read: Callable[[], Counts],
        *,
        every_s: float = SAMPLE_EVERY_S,
        keep_s: float = KEEP_S,
        shared_files: bool = False,
    ) -> None:
        self.read = read
        self.shared_files = shared_files  # reads what multi-worker servers share, not a live one
        self.every_s = every_s
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self._times: list[float] = []
        # Per model, running totals that never go down (restarts folded in): (requests, errors).
        self._totals: dict[str, list[tuple[int, int]]] = {}
        self._last: Counts = {}
        self._running: dict[str, tuple[int, int]] = {}

    def start(self) -> None:
        """Sample in a daemon thread until this history is garbage collected."""
        stop = threading.Event()
        thread = threading.Thread(
            target=_sample_loop, args=(weakref.ref(self), self.every_s, stop),
            name="mlscale-dashboard-counts", daemon=True,
        )  # fmt: skip
        thread.start()

    def sample(self, *, now: float | None = None) -> None:
        """Read the counters once and append the sample."""
        now = time.time() if now is None else now
        counts = self.read()
        with self._lock:
            if self._times and now <= self._times[-1]:
                return  # the clock stepped back or two callers raced: keep samples ordered
            if not self._times:
                # The first sample is the baseline: what was counted before it has no time.
                self._last = counts
            for model in counts.keys() | self._running.keys():
                current = counts.get(model, {})
                before = self._last.get(model, {})
                requests, errors = self._running.get(model, (0, 0))
                for code, n in current.items():
                    old = before.get(code, 0)
                    delta = n - old if n >= old else n  # went down: the server restarted
                    requests += delta
                    errors += delta if code >= 400 else 0
                self._running[model] = (requests, errors)
                series = self._totals.setdefault(model, [(0, 0)] * len(self._times))
                series.append((requests, errors))
            self._times.append(now)
            self._last = counts
            cut = bisect.bisect_left(self._times, now - self.keep_s)
            if cut:
                del self._times[:cut]
                for series in self._totals.values():
                    del series[:cut]

    def models(self) -> list[str]:
        """Models with counted requests; :data:`UNKNOWN` (``"-"``) is requests that failed
        before a model was resolved."""
        with self._lock:
            return sorted(m for m, codes in self._last.items() if any(codes.values()))

    def totals(self, model: str) -> dict[int, int]:
        """The last counts read by status code, since the server started."""
        with self._lock:
            return dict(sorted(self._last.get(model, {}).items()))

    def span(self) -> tuple[float, float] | None:
        """The times of the first and the last sample."""
        with self._lock:
            return (self._times[0], self._times[-1]) if self._times else None

    def series(self, model: str, *, since: float, until: float, step: int) -> list[ErrorPoint]:
        """One point per ``step`` from ``since`` (aligned down) to ``until``: the requests and
        errors counted between the samples nearest each period's ends; no samples, no counts."""
        first = int(since // step * step)
        count = max(math.ceil((until - first) / step), 1)
        with self._lock:
            times = list(self._times)
            totals = list(self._totals.get(model, []))
        if not totals:
            return [ErrorPoint(first + k * step, 0, 0) for k in range(count)]

        def at(t: float) -> tuple[int, int] | None:
            i = bisect.bisect_right(times, t) - 1  # the last sample at or before t
            return totals[i] if i >= 0 else None

        points = []
        for k in range(count):
            lo, hi = first + k * step, first + (k + 1) * step
            a, b = at(lo), at(hi)
            if a is None and b is not None:  # the first sample falls in this period
                a = totals[0]
            if a is None or b is None:
                points.append(ErrorPoint(lo, 0, 0))
            else:
                points.append(ErrorPoint(lo, b[0] - a[0], b[1] - a[1]))
        return points


def _sample_loop(ref: weakref.ref[CountsHistory], every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        history = ref()
        if history is None:  # the app that owned it is gone
            return
        with contextlib.suppress(Exception):  # a bad read must not end the sampling
            history.sample()
        del history


__all__ = [
    "UNKNOWN",
    "CountsHistory",
    "ErrorPoint",
    "counts_from_files",
    "counts_from_metrics",
]
