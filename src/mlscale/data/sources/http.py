"""Read records from a paginated JSON API, one page in memory at a time.

JSON carries no column types worth trusting, so every column is a string spelled as in the JSON
(numbers as written, ``true``/``false``, objects and arrays as JSON text) and the ingest engine
infers types as it does for CSV. Every batch must share one schema, decided before the first
batch: the keys of the first ``sample_pages`` pages that have records, in order of first
appearance. Keys that turn up only later are kept, as a JSON object in the ``_extra`` column.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pyarrow as pa

from mlscale.data.sources.base import BaseArrowSource
from mlscale.errors import ConfigError, DataError

Pagination = Literal["none", "cursor", "page", "link"]
EXTRA = "_extra"
_PAGINATIONS = ("none", "cursor", "page", "link")
_MAX_DELAY_S = 30.0
# Query parameters whose values are masked in uri and messages (API keys often travel there).
_SECRET_WORDS = ("key", "token", "secret", "passw", "signature", "auth", "credential", "session")
_SECRET_NAMES = ("sig", "pwd", "code")
_MISSING = object()


class HttpSource(BaseArrowSource):
    """Records from a JSON API, following its pagination; every column is a string.

    ``records`` is the dotted path to the list of records in each page (``"data.items"``; None:
    the page is the list). ``pagination`` is ``"none"``; ``"cursor"`` (the next cursor at the
    dotted path ``cursor_field``, sent back as ``cursor_param``; stops when it is missing, null
    or empty); ``"page"`` (``page_param`` counts up from ``start_page``; stops at an empty page);
    or ``"link"`` (follows ``Link: <url>; rel="next"`` headers). ``auth_header_env`` names the
    environment variable holding the Authorization header value, which never appears in ``uri``
    or messages. 429, 5xx and network errors are retried ``max_retries`` times with exponential
    backoff from ``backoff_s`` (``Retry-After`` honoured, waits capped at 30 s).

    The schema is decided from the first ``sample_pages`` pages with records; a paginated source
    has an ``_extra`` column holding, as a JSON object, the fields of records whose keys were not
    in those pages (null when there are none), so nothing is lost.

    >>> api = httpx.MockTransport(lambda request: httpx.Response(200, json=[{"id": 7, "ok": True}]))
    >>> next(HttpSource("https://api.example.com/users", transport=api).batches()).to_pylist()
    [{'id': '7', 'ok': 'true'}]
    """

    kind = "http"

    def __init__(
        self,
        url: str,
        *,
        records: str | None = None,
        pagination: Pagination = "none",
        cursor_field: str | None = None,
        cursor_param: str = "cursor",
        page_param: str = "page",
        start_page: int = 1,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        auth_header_env: str | None = None,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 30.0,
        max_pages: int | None = None,
        sample_pages: int = 1,
        batch_rows: int = 65_536,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.records = records
        self.pagination = pagination
        self.cursor_field = cursor_field
        self.cursor_param = cursor_param
        self.page_param = page_param
        self.start_page = start_page
        self.params = params
        self.headers = headers
        self.auth_header_env = auth_header_env
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self.sample_pages = sample_pages
        self.batch_rows = batch_rows
        self.transport = transport
        self._bytes_read = 0

    @property
    def uri(self) -> str:
        try:
            return _redact(httpx.URL(self.url).copy_merge_params(dict(self.params or {})))
        except httpx.InvalidURL:
            return _redact(self.url)

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    def batches(self) -> Iterator[pa.RecordBatch]:
        self._check()
        secret = self._auth_value()
        headers = dict(self.headers or {})
        if secret is not None:
            headers["Authorization"] = secret
        self._bytes_read = 0
        client = httpx.Client(
            headers=headers, timeout=self.timeout_s, transport=self.transport, follow_redirects=True
        )
        with client:
            fetcher = _Fetcher(self, client, secret)
            pages = self._pages(fetcher)
            sample: list[list[dict[str, Any]]] = []
            for page in pages:
                sample.append(page)
                if sum(1 for p in sample if p) >= self.sample_pages:
                    break
            columns = list(dict.fromkeys(key for page in sample for r in page for key in r))
            extra = self.pagination != "none"
            if extra and EXTRA in columns:
                raise DataError(
                    f"{self.uri}: the records have a field {EXTRA!r}, the name of the column "
                    "that keeps fields first seen after the sampled pages; rename it upstream"
                )
            names = [*columns, EXTRA] if extra else columns
            schema = pa.schema([pa.field(n, pa.string()) for n in names])
            while sample:
                yield from self._to_batches(sample.pop(0), columns, schema)
            for page in pages:
                yield from self._to_batches(page, columns, schema)

    def _check(self) -> None:
        problems = []
        if self.pagination not in _PAGINATIONS:
            problems.append(f"pagination must be one of {', '.join(_PAGINATIONS)}")
        if self.pagination == "cursor" and not self.cursor_field:
            problems.append('pagination="cursor" needs cursor_field, the path to the next cursor')
        if self.pagination == "cursor" and not self.cursor_param:
            problems.append('pagination="cursor" needs cursor_param, the query parameter to send')
        if self.pagination == "page" and not self.page_param:
            problems.append('pagination="page" needs page_param, the query parameter to send')
        try:
            if httpx.URL(self.url).scheme not in ("http", "https"):
                problems.append("url must start with http:// or https://")
        except httpx.InvalidURL as exc:
            problems.append(f"url is not valid ({exc})")
        for name in ("max_retries", "backoff_s"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be at least 0")
        for name in ("timeout_s", "sample_pages", "batch_rows"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be more than 0")
        if self.max_pages is not None and self.max_pages < 1:
            problems.append("max_pages must be at least 1")
        if problems:
            raise ConfigError(f"HttpSource({self.uri}): {'; '.join(problems)}")

    def _auth_value(self) -> str | None:
        if self.auth_header_env is None:
            return None
        value = os.environ.get(self.auth_header_env)
        if not value:
            raise DataError(
                f"environment variable {self.auth_header_env} is not set; it should hold the "
                f"Authorization header for {self.uri}, e.g. 'Bearer <token>'"
            )
        return value

    def _first_url(self) -> httpx.URL:
        url = httpx.URL(self.url).copy_merge_params(dict(self.params or {}))
        if self.pagination == "page":
            url = url.copy_set_param(self.page_param, self.start_page)
        return url

    def _pages(self, fetcher: _Fetcher) -> Iterator[list[dict[str, Any]]]:
        """Each page's records, fetched only when the previous page has been used."""
        url = self._first_url()
        page_number = self.start_page
        seen = {str(url)}
        number = 0
        while self.max_pages is None or number < self.max_pages:
            number += 1
            response = fetcher.get(url)
            body = _json(response, number)
            records = self._records(body, number, response)
            yield records
            if self.pagination == "page":
                if not records:
                    return
                page_number += 1
                url = url.copy_set_param(self.page_param, page_number)
            elif self.pagination == "cursor":
                cursor = _dig(body, self.cursor_field or "")
                if cursor is _MISSING or cursor is None or cursor == "":
                    return
                url = url.copy_set_param(self.cursor_param, str(cursor))
            elif self.pagination == "link":
                link = response.links.get("next", {}).get("url")
                if not link:
                    return
                url = response.url.join(link)
            else:
                return
            if str(url) in seen:
                raise DataError(
                    f"page {number} ({_redact(response.url)}) points back to {_redact(url)}, "
                    "a page already read; stopping instead of looping"
                )
            seen.add(str(url))

    def _records(self, body: Any, number: int, response: httpx.Response) -> list[dict[str, Any]]:
        where = f"page {number} ({_redact(response.url)})"
        found = body if self.records is None else _dig(body, self.records)
        if found is _MISSING:
            keys = ", ".join(body) if isinstance(body, dict) else "none"
            raise DataError(
                f"{where}: no {self.records!r} in the response (its top-level keys: {keys}); "
                "set records to the dotted path of the list of records"
            )
        if not isinstance(found, list):
            at = "the response" if self.records is None else repr(self.records)
            raise DataError(
                f"{where}: expected a JSON array of records at {at}, found {_json_type(found)}; "
                "set records to the dotted path of the list, e.g. records='data.items'"
            )
        for i, record in enumerate(found):
            if not isinstance(record, dict):
                raise DataError(
                    f"{where}, record at index {i}: expected a JSON object, found "
                    f"{_json_type(record)} {_short(record)}"
                )
        return found

    def _to_batches(
        self, records: list[dict[str, Any]], columns: list[str], schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        known = set(columns)
        for start in range(0, len(records), self.batch_rows):
            chunk = records[start : start + self.batch_rows]
            arrays = [pa.array([_text(r.get(c)) for r in chunk], pa.string()) for c in columns]
            if EXTRA in schema.names:
                extras = [{k: v for k, v in r.items() if k not in known} for r in chunk]
                arrays.append(pa.array([_text(e) if e else None for e in extras], pa.string()))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass
class _Fetcher:
    """GET with retries; keeps the byte count and keeps the secret out of messages."""

    source: HttpSource
    client: httpx.Client
    secret: str | None

    def get(self, url: httpx.URL) -> httpx.Response:
        attempts = self.source.max_retries + 1
        failure = ""
        for attempt in range(1, attempts + 1):
            retry_after = None
            try:
                response = self.client.get(url)
            except httpx.TransportError as exc:
                failure = f"failed ({type(exc).__name__}: {self._scrub(str(exc) or 'no detail')})"
            except httpx.RequestError as exc:  # not worth retrying: a redirect loop, a bad URL
                raise DataError(
                    f"GET {_redact(url)} failed: {type(exc).__name__}: {self._scrub(str(exc))}"
                ) from exc
            else:
                self.source._bytes_read += len(response.content)
                status = response.status_code
                if response.is_success:
                    return response
                if status != 429 and status < 500:
                    raise DataError(
                        f"GET {_redact(url)} answered {status} {response.reason_phrase}: "
                        f"{self._scrub(_short(response.text))}; check the URL, parameters and "
                        "credentials"
                    )
                failure = f"answered {status}"
                if status in (429, 503):
                    retry_after = _retry_after(response)
            if attempt < attempts:
                time.sleep(self._delay(attempt, retry_after))
        raise DataError(
            f"GET {_redact(url)} {failure} on {attempts} attempts; the API may be down or "
            "rate-limiting: try again later or raise max_retries"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, _MAX_DELAY_S)
        delay = min(self.source.backoff_s * 2 ** (attempt - 1), _MAX_DELAY_S)
        # Jitter keeps many clients that failed together from retrying together.
        return delay / 2 + random.uniform(0, delay / 2)

    def _scrub(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _json(response: httpx.Response, number: int) -> Any:
    try:
        return json.loads(response.content)
    except ValueError as exc:
        kind = response.headers.get("Content-Type", "no Content-Type")
        raise DataError(
            f"page {number} ({_redact(response.url)}): the response is not JSON ({kind}: {exc}); "
            f"it starts with {_short(response.text)}"
        ) from exc


def _dig(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            return _MISSING
        body = body[part]
    return body


def _text(value: Any) -> str | None:
    """A JSON value as the string column holds it: strings as is, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _redact(url: httpx.URL | str) -> str:
    """The URL with its password and secret-looking query parameter values masked."""
    parts = urlsplit(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    masked = [(k, "***" if _is_secret(k) else v) for k, v in query]
    new_query = urlencode(masked, safe="*") if masked != query else parts.query
    return urlunsplit(parts._replace(netloc=netloc, query=new_query))


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)
