"""Where alert events go: a structured log line now, and webhooks from a background thread.

:class:`AlertNotifier` owns one thread and a bounded queue. :meth:`AlertNotifier.submit` only
puts the delivery in the queue (or, when it is full, records it as failed at once), so neither
serving nor an alert evaluation ever waits for a webhook. The thread POSTs the event as JSON
with httpx; a connection error, a timeout, a 5xx, 408 or 429 is retried after ``backoff``,
doubling each time, up to the webhook's ``tries``; any other 4xx fails at once (retrying would
not change the answer). Every outcome is written to the event's delivery row in the alert store
(``queued`` -> ``retrying`` -> ``sent`` | ``failed``, with the tries and the last error).
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from mlscale.monitor.alert_rules import Webhook

log = logging.getLogger("mlscale.monitor.alerts")

QUEUE_SIZE = 1_000
MAX_BACKOFF_S = 300.0
_RETRY_STATUS = frozenset({408, 429})


def log_event(payload: dict[str, Any]) -> None:
    """Write an alert event to the log as one JSON line (warning when firing, info resolved)."""
    level = logging.WARNING if payload.get("status") == "firing" else logging.INFO
    log.log(level, "%s", json.dumps(payload, sort_keys=True, default=str))


class _Delivery(NamedTuple):
    event_id: int
    payload: dict[str, Any]
    webhook: Webhook


class AlertNotifier:
    """Sends alert events to webhooks from a background thread; records each outcome.

    ``db_path`` is the alert store the outcomes are written to. Call :meth:`flush` to wait for
    what is queued (bounded), and :meth:`close` when done; a delivery still waiting for a retry
    when the notifier closes is recorded as failed.
    """

    def __init__(self, db_path: str | Path, *, queue_size: int = QUEUE_SIZE) -> None:
        self.db_path = Path(db_path)
        self._queue: queue.Queue[_Delivery] = queue.Queue(maxsize=queue_size)
        self._pending = 0
        self._done = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlscale-alerts", daemon=True)
        self._thread.start()

    def submit(self, event_id: int, payload: dict[str, Any], webhook: Webhook) -> bool:
        """Queue one delivery; False (recorded as failed) when the queue is full or closed."""
        if self._stop.is_set():
            self._record(event_id, webhook, "failed", 0, "not sent: the notifier is closed")
            return False
        with self._done:
            self._pending += 1
        try:
            self._queue.put_nowait(_Delivery(event_id, payload, webhook))
        except queue.Full:
            self._finished()
            error = f"not sent: {self._queue.maxsize} deliveries were already waiting"
            self._record(event_id, webhook, "failed", 0, error)
            log.warning("alert webhook %s: %s", webhook.name, error)
            return False
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery is sent or has failed; False if ``timeout`` passed."""
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Wait up to ``timeout`` for the queue, then stop; what is left is recorded as failed."""
        self.flush(timeout)
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> AlertNotifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        with httpx.Client(follow_redirects=False) as client:
            while True:
                try:
                    delivery = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
                try:
                    if self._stop.is_set():
                        self._record(delivery.event_id, delivery.webhook, "failed", 0,
                                     "not sent: the notifier closed first")  # fmt: skip
                    else:
                        self._deliver(client, delivery)
                except Exception:  # the thread must outlive one bad delivery
                    log.exception("alert webhook %s: delivery failed", delivery.webhook.name)
                finally:
                    self._finished()

    def _deliver(self, client: httpx.Client, delivery: _Delivery) -> None:
        hook = delivery.webhook
        error = ""
        for attempt in range(1, hook.tries + 1):
            retry = True
            try:
                response = client.post(
                    hook.url, json=delivery.payload, headers=hook.headers, timeout=hook.timeout_s
                )
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code < 300:
                    self._record(delivery.event_id, hook, "sent", attempt, None)
                    return
                error = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
                retry = response.status_code >= 500 or response.status_code in _RETRY_STATUS
            if not retry or attempt == hook.tries:
                break
            self._record(delivery.event_id, hook, "retrying", attempt, error)
            delay = min(hook.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            if self._stop.wait(delay):
                self._record(delivery.event_id, hook, "failed", attempt,
                             f"{error}; not retried: the notifier closed")  # fmt: skip
                return
        self._record(delivery.event_id, hook, "failed", attempt, error)
        tries = "try" if attempt == 1 else "tries"
        log.warning("alert webhook %s: gave up after %d %s: %s", hook.name, attempt, tries, error)

    def _finished(self) -> None:
        with self._done:
            self._pending -= 1
            self._done.notify_all()

    def _record(
        self, event_id: int, webhook: Webhook, status: str, tries: int, error: str | None
    ) -> None:
        # A connection per write: the thread's writes are rare, and this stays thread-safe.
        try:
            db = sqlite3.connect(self.db_path, timeout=60)
            try:
                with db:
                    db.execute(
                        "UPDATE deliveries SET status = ?, tries = ?, error = ?, updated = ? "
                        "WHERE event_id = ? AND sink = ?",
                        (status, tries, error, time.time(), event_id, webhook.name),
                    )
            finally:
                db.close()
        except sqlite3.Error:
            log.exception("alert store %s: cannot record a delivery", self.db_path)
