"""Adaptive micro-batching: requests that arrive while a model is busy are predicted together.

The event loop parses requests between predictions, so whatever queued up during one prediction
goes into the next, with no timer by default: a lone request never waits, and under load the
per-call cost of the model is shared. An optional wait window trades latency for bigger batches.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from mlscale.errors import MlscaleError
from mlscale.models.predictor import Prediction, Predictor


class Overloaded(MlscaleError):
    """The model's queue is full: answer 503 with Retry-After instead of queueing forever."""

    http_status = 503


class PredictionTimeout(MlscaleError):
    http_status = 504


@dataclass
class _Item:
    X: np.ndarray
    future: asyncio.Future[Prediction]
    deadline: float  # loop time


@dataclass
class Batcher:
    """One per loaded model version, living on the server's event loop."""

    predictor: Predictor
    max_queue: int = 256  # requests waiting; beyond this, 503
    max_batch_rows: int = 2_048
    wait_s: float = 0.0
    timeout_s: float = 30.0  # longest wait in the queue before a 504
    _pending: deque[_Item] = field(default_factory=deque, init=False)
    _scheduled: bool = field(default=False, init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)

    @property
    def depth(self) -> int:
        return len(self._pending)

    def predict(self, X: np.ndarray) -> asyncio.Future[Prediction]:
        """Queue ``X``; the future gets its prediction, or PredictionTimeout when it waited in
        the queue longer than ``timeout_s`` (a plain future, cheaper than a task per request).

        The batch is predicted by a callback scheduled behind the requests already ready to run,
        so those join it; no task or queue object sits between a request and the model.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new loop (test clients start one per call)
            self._loop, self._scheduled = loop, False
            self._pending.clear()
        future: asyncio.Future[Prediction] = loop.create_future()
        if len(self._pending) >= self.max_queue:  # answered through the future, as the rest
            future.set_exception(
                Overloaded(
                    f"{self.predictor.version.ref} has {self.max_queue} requests waiting; "
                    "retry shortly"
                )
            )
            return future
        self._pending.append(_Item(X, future, loop.time() + self.timeout_s))
        if not self._scheduled:
            self._scheduled = True
            if self.wait_s:
                loop.call_later(self.wait_s, self._drain)
            else:
                loop.call_soon(self._drain)
        return future

    def _drain(self) -> None:
        """Predict one batch of what is queued; schedule the next batch if more is waiting."""
        assert self._loop is not None
        items: list[_Item] = []
        rows = 0
        while self._pending and rows < self.max_batch_rows:
            item = self._pending.popleft()
            items.append(item)
            rows += len(item.X)
        if self._pending:
            self._loop.call_soon(self._drain)  # the loop reads more requests in between
        else:
            self._scheduled = False
        now = self._loop.time()
        for it in items:
            if now > it.deadline and not it.future.done():
                it.future.set_exception(
                    PredictionTimeout(f"waited longer than {self.timeout_s:g}s to be predicted")
                )
        live = [it for it in items if not it.future.done()]  # gone: timed out or cancelled
        if not live:
            return
        try:
            X = live[0].X if len(live) == 1 else np.vstack([it.X for it in live])
            result = self.predictor.predict_matrix(X)
        except Exception as exc:  # every waiting caller gets the error
            for it in live:
                if not it.future.done():
                    it.future.set_exception(exc)
            return
        start = 0
        for it in live:
            end = start + len(it.X)
            if not it.future.done():
                it.future.set_result(_slice(result, start, end))
            start = end

    def close(self) -> None:
        for item in self._pending:  # nobody will predict these now
            if not item.future.done():
                item.future.cancel()
        self._pending.clear()


def _slice(result: Prediction, start: int, end: int) -> Prediction:
    probabilities = None if result.probabilities is None else result.probabilities[start:end]
    return Prediction(result.predictions[start:end], probabilities, result.classes)
