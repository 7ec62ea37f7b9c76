"""Server metrics and the access-log line."""

from __future__ import annotations

import threading
import time

import orjson

from mlscale.serve.metrics import ServerMetrics, access_log_line


def test_exposition_after_observations() -> None:
    metrics = ServerMetrics()
    metrics.observe_request("loans", 3, 200, 0.0042, rows=10)
    metrics.observe_request("loans", 3, 200, 0.0010, rows=1)
    metrics.observe_request("loans", 3, 422, 0.0003, rows=2)
    metrics.observe_request("-", "-", 404, 0.0001)
    metrics.set_queue_depth("loans", 7)
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for line in (
        'mlscale_requests_total{code="200",model="loans",version="3"} 2.0',
        'mlscale_requests_total{code="422",model="loans",version="3"} 1.0',
        'mlscale_requests_total{code="404",model="-",version="-"} 1.0',
        'mlscale_errors_total{code="422",model="loans",version="3"} 1.0',
        'mlscale_errors_total{code="404",model="-",version="-"} 1.0',
        'mlscale_predictions_total{model="loans",version="3"} 11.0',
        'mlscale_request_latency_seconds_bucket{le="0.0001",model="-",version="-"} 1.0',
        'mlscale_request_latency_seconds_bucket{le="0.005",model="loans",version="3"} 3.0',
        'mlscale_request_latency_seconds_count{model="loans",version="3"} 3.0',
        'mlscale_batch_size_count{model="loans",version="3"} 3.0',
        'mlscale_batch_size_sum{model="loans",version="3"} 13.0',
        'mlscale_queue_depth{model="loans"} 7.0',
    ):
        assert line in text, line
    assert 'mlscale_errors_total{code="200"' not in text
    assert 'mlscale_batch_size_count{model="-"' not in text  # no rows, no batch observation


def test_openmetrics_when_asked() -> None:
    metrics = ServerMetrics()
    metrics.observe_request("loans", 1, 200, 0.01, rows=1)
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_instances_do_not_clash() -> None:
    first, second = ServerMetrics(), ServerMetrics()
    first.observe_request("loans", 1, 200, 0.01, rows=5)
    assert b'model="loans"' in first.render()[0]
    assert b'model="loans"' not in second.render()[0]


def test_threads_count_exactly() -> None:
    metrics = ServerMetrics()

    def work() -> None:
        for i in range(1_000):
            metrics.observe_request("loans", 1 + i % 2, 200, 0.001, rows=2)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    text = metrics.render()[0].decode()
    for version in (1, 2):
        assert (
            f'mlscale_requests_total{{code="200",model="loans",version="{version}"}} 4000.0' in text
        )
        assert f'mlscale_predictions_total{{model="loans",version="{version}"}} 8000.0' in text


def test_observe_request_timing() -> None:
    metrics = ServerMetrics()
    n = 100_000
    metrics.observe_request("loans", 3, 200, 0.002, rows=4)
    started = time.perf_counter()
    for _ in range(n):
        metrics.observe_request("loans", 3, 200, 0.002, rows=4)
    per_call = (time.perf_counter() - started) / n * 1e6
    print(f"observe_request: {per_call:.2f} µs per call")
    assert (
        b'mlscale_requests_total{code="200",model="loans",version="3"} 100001.0'
        in (metrics.render()[0])
    )


def test_access_log_line() -> None:
    line = access_log_line(
        "POST", "/v1/models/loans@3/predict", 200, 4.21337, "ab12", "loans", 3, 10
    )
    assert orjson.loads(line) == {
        "method": "POST",
        "path": "/v1/models/loans@3/predict",
        "status": 200,
        "ms": 4.213,
        "request_id": "ab12",
        "model": "loans",
        "version": 3,
        "rows": 10,
    }
    assert "\n" not in line
    assert orjson.loads(access_log_line("GET", "/healthz", 200, 0.1, "x")).keys() == {
        "method", "path", "status", "ms", "request_id"
    }  # fmt: skip


def test_workers_share_their_numbers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    shared = tmp_path / "metrics"
    first = ServerMetrics(shared, share_every_s=3600)
    first.observe_request("loans", 1, 200, 0.001, rows=2)
    first.share()
    # A second worker (same process here; the file name is per pid, so fake another pid's file).
    (shared / "worker-999999.json").write_bytes(
        (shared / next(p.name for p in shared.iterdir())).read_bytes()
    )
    second = ServerMetrics(shared, share_every_s=3600)
    second._own_file = shared / "worker-1.json"
    second.observe_request("loans", 1, 500, 0.002, rows=1)
    text = second.render()[0].decode()
    assert 'mlscale_requests_total{code="200",model="loans",version="1"} 2.0' in text
    assert 'mlscale_requests_total{code="500",model="loans",version="1"} 1.0' in text
    assert 'mlscale_predictions_total{model="loans",version="1"} 4.0' in text
    first.close()
    second.close()
