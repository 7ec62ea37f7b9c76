"""Prometheus metrics for the model server, and the JSON access-log line.

Each :class:`ServerMetrics` owns its own ``CollectorRegistry``, so several apps (and tests) in one
process never clash over metric names.
"""

from __future__ import annotations

import contextlib
import os
import threading
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

UNKNOWN = "-"  # model and version of a request that failed before a model was resolved
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000)


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def buckets(self, bounds: tuple[float, ...]) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, count in zip((*bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append((floatToGoString(bound), total))
        return out


class _Series:
    """Everything counted for one (model, version)."""

    __slots__ = ("batch_size", "codes", "labels", "latency", "predictions")

    def __init__(self, model: str, version: str) -> None:
        self.labels = [model, version]
        self.codes: dict[int, int] = {}
        self.latency = _Histogram(LATENCY_BUCKETS)
        self.batch_size = _Histogram(BATCH_BUCKETS)
        self.predictions = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "codes": {str(k): v for k, v in self.codes.items()},
            "latency": [self.latency.counts, self.latency.sum],
            "batch_size": [self.batch_size.counts, self.batch_size.sum],
            "predictions": self.predictions,
        }

    def add(self, data: dict[str, Any]) -> None:
        for code, count in data["codes"].items():
            self.codes[int(code)] = self.codes.get(int(code), 0) + count
        for hist, (counts, total) in (
            (self.latency, data["latency"]),
            (self.batch_size, data["batch_size"]),
        ):
            hist.counts = [a + b for a, b in zip(hist.counts, counts, strict=True)]
            hist.sum += total
        self.predictions += data["predictions"]


class ServerMetrics:
    """Request, error, latency, batch-size, queue-depth and prediction metrics by model and version.

    Exposes ``mlscale_requests_total{model,version,code}``, ``mlscale_errors_total{...,code}``
    (4xx and 5xx), ``mlscale_request_latency_seconds``, ``mlscale_batch_size`` (rows per request),
    ``mlscale_predictions_total{model,version}`` and ``mlscale_queue_depth{model}``.

    >>> metrics = ServerMetrics()
    >>> metrics.observe_request("loans", 3, 200, seconds=0.004, rows=10)
    >>> body, content_type = metrics.render()
    >>> b'mlscale_predictions_total{model="loans",version="3"} 10.0' in body
    True
    """

    def __init__(self, share_dir: Path | None = None, *, share_every_s: float = 1.0) -> None:
        # Plain numbers under one lock, turned into metric families at scrape time: one uncontended
        # lock per request instead of one per prometheus_client metric child.
        self._lock = threading.Lock()
        self._series: dict[tuple[str, Any], _Series] = {}
        self._queues: dict[str, float] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)
        # Several worker processes: each writes its numbers to share_dir every second, and a
        # scrape of any worker adds up every worker's file (others' at most a second old).
        self.share_dir = share_dir
        self._share_every_s = share_every_s
        self._stop = threading.Event()
        if share_dir is not None:
            share_dir.mkdir(parents=True, exist_ok=True)
            self._own_file = share_dir / f"worker-{os.getpid()}.json"
            threading.Thread(target=self._share_loop, name="mlscale-metrics", daemon=True).start()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "series": [s.to_dict() for s in self._series.values()],
                "queues": dict(self._queues),
            }

    def share(self) -> None:
        """Write this worker's numbers for the other workers' scrapes (atomically)."""
        if self.share_dir is None:
            return
        tmp = self._own_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.snapshot()))
        os.replace(tmp, self._own_file)

    def close(self) -> None:
        self._stop.set()
        self.share()

    def _share_loop(self) -> None:
        while not self._stop.wait(self._share_every_s):
            # A full disk must not take the server down; the next second retries.
            with contextlib.suppress(OSError):
                self.share()

    def _combined(self) -> tuple[list[_Series], dict[str, float]]:
        """This worker's live numbers plus every other worker's last shared numbers."""
        snapshots = [self.snapshot()]
        if self.share_dir is not None:
            for path in sorted(self.share_dir.glob("worker-*.json")):
                if path != self._own_file:
                    try:
                        snapshots.append(orjson.loads(path.read_bytes()))
                    except (OSError, orjson.JSONDecodeError):
                        continue  # being replaced right now: next scrape
        series: dict[tuple[str, str], _Series] = {}
        queues: dict[str, float] = {}
        for snap in snapshots:
            for data in snap["series"]:
                model, version = data["labels"]
                target = series.get((model, version))
                if target is None:
                    target = series[(model, version)] = _Series(model, version)
                target.add(data)
            for model, n in snap["queues"].items():
                queues[model] = queues.get(model, 0) + n
        return list(series.values()), queues

    def observe_request(
        self, model: str, version: int | str, code: int, seconds: float, rows: int = 0
    ) -> None:
        """Count one answered request; ``model``/``version`` are ``"-"`` when none was resolved."""
        series = self._series.get((model, version))
        if series is None:
            series = self._series.setdefault((model, version), _Series(model, str(version)))
        latency_bucket = bisect_left(LATENCY_BUCKETS, seconds)  # Prometheus buckets are le
        with self._lock:
            series.codes[code] = series.codes.get(code, 0) + 1
            series.latency.counts[latency_bucket] += 1
            series.latency.sum += seconds
            if rows:
                series.batch_size.counts[bisect_left(BATCH_BUCKETS, rows)] += 1
                series.batch_size.sum += rows
                if code < 400:
                    series.predictions += rows

    def set_queue_depth(self, model: str, n: int) -> None:
        """Report how many rows wait for ``model``."""
        self._queues[model] = n

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition body and its content type; ``accept`` is the scraper's Accept header.

        Without one, the Prometheus text format; with an OpenMetrics Accept header, OpenMetrics.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def collect(self) -> Iterator[Metric]:
        """The metric families, for the registry (prometheus_client's custom-collector protocol)."""
        by_code = ["model", "version", "code"]
        by_version = ["model", "version"]
        requests = CounterMetricFamily(
            "mlscale_requests", "Requests answered, by HTTP status code.", labels=by_code
        )
        errors = CounterMetricFamily(
            "mlscale_errors", "Requests answered with a 4xx or 5xx status.", labels=by_code
        )
        latency = HistogramMetricFamily(
            "mlscale_request_latency_seconds",
            "Time from request received to response ready.",
            labels=by_version,
        )
        batch_size = HistogramMetricFamily(
            "mlscale_batch_size", "Rows per request.", labels=by_version
        )
        predictions = CounterMetricFamily(
            "mlscale_predictions", "Rows predicted successfully.", labels=by_version
        )
        queue_depth = GaugeMetricFamily(
            "mlscale_queue_depth", "Rows waiting to be predicted.", labels=["model"]
        )
        all_series, queues = self._combined()
        for series in all_series:
            for code, count in sorted(series.codes.items()):
                labels = [*series.labels, str(code)]
                requests.add_metric(labels, count)
                if code >= 400:
                    errors.add_metric(labels, count)
            if series.codes:
                latency.add_metric(
                    series.labels,
                    series.latency.buckets(LATENCY_BUCKETS),
                    series.latency.sum,
                )
            if series.batch_size.sum:
                batch_size.add_metric(
                    series.labels,
                    series.batch_size.buckets(BATCH_BUCKETS),
                    series.batch_size.sum,
                )
            if series.predictions:
                predictions.add_metric(series.labels, series.predictions)
        for model, n in queues.items():
            queue_depth.add_metric([model], n)
        yield from (requests, errors, latency, batch_size, predictions, queue_depth)


def access_log_line(
    method: str,
    path: str,
    status: int,
    ms: float,
    request_id: str,
    model: str | None = None,
    version: int | str | None = None,
    rows: int | None = None,
) -> str:
    """One JSON access-log line; fields left as None are omitted.

    >>> access_log_line("POST", "/v1/models/loans@3/predict", 200, 4.21337, "ab12", "loans", 3, 10)
    '{"method":"POST","path":"/v1/models/loans@3/predict","status":200,"ms":4.213,"request_id":"ab12","model":"loans","version":3,"rows":10}'
    """
    line: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "ms": round(ms, 3),
        "request_id": request_id,
    }
    if model is not None:
        line["model"] = model
    if version is not None:
        line["version"] = version
    if rows is not None:
        line["rows"] = rows
    return orjson.dumps(line).decode()
