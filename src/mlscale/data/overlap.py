"""Overlap reading, computing and writing: a read-ahead thread and a write-behind thread.

Arrow, DuckDB, numpy and the GBDT libraries release the GIL while they work, so a batch can be
read while the previous one is predicted and the one before is compressed and written. Queues
are bounded (memory stays at a few batches) and an error on any side stops the others.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead of the consumer.

    The source's errors are raised in the consumer; a consumer that stops early (an error, a
    ``break``) stops the thread at its next item.

    >>> list(read_ahead(range(5)))
    [0, 1, 2, 3, 4]
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(buffer, item, stop):
                    return
            _put(buffer, _DONE, stop)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put(buffer, _Failure(exc), stop)

    thread = threading.Thread(target=produce, name="mlscale-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class WriteBehind(Generic[T]):
    """Call ``write`` on each put item in a background thread, in order, ``depth`` at most queued.

    Use as a context manager: leaving it waits for the writes (and raises the first write error);
    leaving it with an exception abandons what is queued. ``put`` raises a write error early.
    """

    def __init__(self, write: Callable[[T], None], depth: int = 2) -> None:
        self._write = write
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mlscale-write-behind", daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        self._raise_error()
        while not _put(self._queue, item, self._stop):
            self._raise_error()
            raise RuntimeError("write-behind thread stopped")

    def __enter__(self) -> WriteBehind[T]:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self._stop.set()
        else:
            _put(self._queue, _DONE, self._stop)
        self._thread.join()
        if exc_type is None:
            self._raise_error()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            try:
                self._write(item)  # type: ignore[arg-type]
            except BaseException as exc:
                self._error = exc
                self._stop.set()
                return

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(buffer: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; True when it was put."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
