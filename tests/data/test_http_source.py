"""HttpSource against a real HTTP server on 127.0.0.1 (a thread), plus MockTransport for faults."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pyarrow as pa
import pytest

from mlscale.data.sources.http import HttpSource
from mlscale.errors import ConfigError, DataError

TOKEN_ENV = "MLSCALE_TEST_API_AUTH"
SECRET = "Bearer s3cr3t-t0ken"


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


# What a route answers: status, a JSON-able body (bytes are sent as is) and extra headers.
Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Api:
    """A JSON API on a free local port; tests add routes and read back the requests it got."""

    routes: dict[str, Callable[[Request], Reply]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = Request(parts.path, dict(parse_qsl(parts.query)), dict(self.headers))
                api.requests.append(request)
                route = api.routes.get(parts.path)
                status, body, headers = route(request) if route else (404, {"error": "no"}, {})
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def api() -> Iterator[Api]:
    api = Api()
    server = ThreadingHTTPServer(("127.0.0.1", 0), api.handler())
    server.daemon_threads = True
    api.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield api
    server.shutdown()
    server.server_close()
    thread.join()


def read(source: HttpSource) -> pa.Table:
    batches = list(source.batches())
    assert len({b.schema for b in batches}) <= 1
    return pa.Table.from_batches(batches)


def ok(body: Any, headers: dict[str, str] | None = None) -> Reply:
    return 200, body, headers or {}


def test_cursor_pagination_nested_records_and_extra_fields(api: Api) -> None:
    pages = {
        None: ([{"id": 1, "price": 1.5, "ok": True, "tags": ["a"]}], "c2"),
        "c2": ([{"id": 2, "price": 10, "ok": False, "name": "x"}], "c3"),
        "c3": ([{"id": 3, "meta": {"k": None}}], None),
    }

    def items(request: Request) -> Reply:
        records, cursor = pages[request.query.get("after")]
        return ok({"data": {"items": records}, "meta": {"next": cursor}})

    api.routes["/items"] = items
    source = HttpSource(
        api.url("/items"),
        records="data.items",
        pagination="cursor",
        cursor_field="meta.next",
        cursor_param="after",
        params={"limit": 1},
    )
    table = read(source)

    assert table.schema == pa.schema(
        [(n, pa.string()) for n in ("id", "price", "ok", "tags")] + [("_extra", pa.string())]
    )
    assert table.to_pylist() == [
        {"id": "1", "price": "1.5", "ok": "true", "tags": '["a"]', "_extra": None},
        {"id": "2", "price": "10", "ok": "false", "tags": None, "_extra": '{"name": "x"}'},
        {"id": "3", "price": None, "ok": None, "tags": None, "_extra": '{"meta": {"k": null}}'},
    ]
    assert [r.query for r in api.requests] == [
        {"limit": "1"},
        {"limit": "1", "after": "c2"},
        {"limit": "1", "after": "c3"},
    ]
    assert source.bytes_read > 100


def test_sample_pages_widen_the_schema(api: Api) -> None:
    bodies = {"1": [{"a": 1}], "2": [{"b": 2}], "3": [{"c": 3}], "4": []}
    api.routes["/p"] = lambda r: ok(bodies[r.query["page"]])
    table = read(HttpSource(api.url("/p"), pagination="page", sample_pages=2))
    assert table.column_names == ["a", "b", "_extra"]
    assert table.column("_extra").to_pylist() == [None, None, '{"c": 3}']


def test_page_pagination_stops_at_an_empty_page(api: Api) -> None:
    api.routes["/users"] = lambda r: ok(
        {
            "results": [{"n": int(r.query["p"]) * 10 + i} for i in range(2)]
            if int(r.query["p"]) < 3
            else []
        }
    )
    source = HttpSource(
        api.url("/users"), records="results", pagination="page", page_param="p", start_page=0
    )
    table = read(source)
    assert table.column("n").to_pylist() == ["0", "1", "10", "11", "20", "21"]
    assert [r.query["p"] for r in api.requests] == ["0", "1", "2", "3"]


def test_link_pagination_follows_rel_next(api: Api) -> None:
    api.routes["/a"] = lambda r: ok([{"x": 1}], {"Link": '</b?k=v>; rel="next", </a>; rel="first"'})
    api.routes["/b"] = lambda r: ok([{"x": 2}], {"Link": f'<{api.base}/c>; rel="next"'})
    api.routes["/c"] = lambda r: ok([{"x": 3}])
    table = read(HttpSource(api.url("/a"), pagination="link"))
    assert table.column("x").to_pylist() == ["1", "2", "3"]
    assert [(r.path, r.query) for r in api.requests] == [("/a", {}), ("/b", {"k": "v"}), ("/c", {})]


def test_without_pagination_there_is_no_extra_column(api: Api) -> None:
    api.routes["/all"] = lambda r: ok([{"a": 1}, {"b": "two"}])
    table = read(HttpSource(api.url("/all")))
    assert table.to_pylist() == [{"a": "1", "b": None}, {"a": None, "b": "two"}]


def test_large_pages_are_split_into_batches(api: Api) -> None:
    api.routes["/all"] = lambda r: ok([{"i": i} for i in range(5)])
    batches = list(HttpSource(api.url("/all"), batch_rows=2).batches())
    assert [b.num_rows for b in batches] == [2, 2, 1]


def test_max_pages_stops_early(api: Api) -> None:
    api.routes["/p"] = lambda r: ok([{"page": r.query["page"]}])
    table = read(HttpSource(api.url("/p"), pagination="page", max_pages=3))
    assert table.column("page").to_pylist() == ["1", "2", "3"]


def test_429_with_retry_after_is_retried(api: Api) -> None:
    def limited(request: Request) -> Reply:
        if len(api.requests) == 1:
            return 429, {"error": "slow down"}, {"Retry-After": "1"}
        return ok([{"a": 1}])

    api.routes["/r"] = limited
    start = time.monotonic()
    # A backoff of 20 s would fail the timing check: the wait comes from Retry-After.
    table = read(HttpSource(api.url("/r"), backoff_s=20))
    assert 0.9 <= time.monotonic() - start < 5
    assert table.num_rows == 1
    assert len(api.requests) == 2


def test_5xx_forever_fails_after_the_retries(api: Api) -> None:
    api.routes["/down"] = lambda r: (500, {"error": "boom"}, {})
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        list(HttpSource(api.url("/down"), backoff_s=0.01).batches())
    assert time.monotonic() - start < 3
    assert f"GET {api.url('/down')} answered 500 on 6 attempts" in str(err.value)
    assert len(api.requests) == 6


def test_other_4xx_fails_at_once(api: Api) -> None:
    with pytest.raises(DataError, match=r"answered 404 Not Found: '\{\"error\": \"no\"\}'"):
        list(HttpSource(api.url("/nothing-here"), backoff_s=0.01).batches())
    assert len(api.requests) == 1


def test_auth_header_from_env_reaches_the_server_and_stays_secret(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TOKEN_ENV, SECRET)

    def private(request: Request) -> Reply:
        if request.headers.get("Authorization") != SECRET:
            return 401, {"error": "who are you"}, {}
        if request.query.get("page") == "2":  # an API that echoes the header in its error
            return 403, {"error": f"forbidden for {request.headers['Authorization']}"}, {}
        return ok([{"a": 1}])

    api.routes["/private"] = private
    source = HttpSource(
        api.url("/private"),
        auth_header_env=TOKEN_ENV,
        params={"api_key": "k3y-value", "q": "x"},
        pagination="page",
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DataError) as err:
        list(source.batches())

    assert api.requests[0].headers["Authorization"] == SECRET
    assert "answered 403" in str(err.value)
    assert "forbidden for ***" in str(err.value)
    for text in (str(err.value), source.uri, caplog.text):
        assert "s3cr3t" not in text
    assert "k3y-value" not in source.uri
    assert source.uri == f"{api.url('/private')}?api_key=***&q=x"


def test_auth_env_missing_is_named(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(DataError, match=f"environment variable {TOKEN_ENV} is not set"):
        list(HttpSource(api.url("/x"), auth_header_env=TOKEN_ENV).batches())
    assert api.requests == []


def test_a_record_that_is_not_an_object(api: Api) -> None:
    api.routes["/p"] = lambda r: ok([{"a": 1}, 3] if r.query["page"] == "2" else [{"a": 1}])
    with pytest.raises(DataError) as err:
        list(HttpSource(api.url("/p"), pagination="page").batches())
    assert "page 2 (" in str(err.value)
    assert "record at index 1: expected a JSON object, found a number '3'" in str(err.value)


@pytest.mark.parametrize(
    ("body", "records", "expected"),
    [
        (b"<html>oops</html>", None, "the response is not JSON"),
        ({"data": []}, "items", "no 'items' in the response (its top-level keys: data)"),
        ({"data": []}, None, "expected a JSON array of records at the response, found an object"),
    ],
)
def test_unexpected_responses(api: Api, body: Any, records: str | None, expected: str) -> None:
    api.routes["/p"] = lambda r: ok(body)
    with pytest.raises(DataError) as err:
        list(HttpSource(api.url("/p"), records=records).batches())
    assert expected in str(err.value)


def test_a_cursor_that_repeats_is_an_error(api: Api) -> None:
    api.routes["/loop"] = lambda r: ok({"items": [{"a": 1}], "next": "same"})
    source = HttpSource(api.url("/loop"), records="items", pagination="cursor", cursor_field="next")
    with pytest.raises(DataError, match="a page already read"):
        list(source.batches())
    assert len(api.requests) == 2


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(DataError, match=rf"GET {url} failed \(ConnectError: .*\) on 3 attempts"):
        list(HttpSource(url, max_retries=2, backoff_s=0.01).batches())


def test_transport_errors_are_retried() -> None:
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json=[{"a": 1}])

    source = HttpSource(
        "https://api.example/x", backoff_s=0.01, transport=httpx.MockTransport(flaky)
    )
    assert read(source).num_rows == 1
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"pagination": "cursor"}, "needs cursor_field"),
        ({"pagination": "cursor", "cursor_field": "next", "cursor_param": None}, "cursor_param"),
        ({"pagination": "offset"}, "pagination must be one of"),
        ({"max_retries": -1}, "max_retries must be at least 0"),
        ({"sample_pages": 0}, "sample_pages must be more than 0"),
    ],
)
def test_invalid_options(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        list(HttpSource("https://api.example/x", **options).batches())


def test_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="must start with http"):
        list(HttpSource("ftp://files.example/x").batches())
