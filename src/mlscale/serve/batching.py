"""Adaptive micro-batching: requests that arrive while a model is busy are predicted together.

The event loop parses requests between predictions, so whatever queued up during one prediction
goes into the next, with no timer by default: a lone request never waits, and under load the
per-call cost of the model is shared. An optional wait window trades latency for bigger batches.
"""

from __future__ import annotations

import asyncio
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
    _queue: asyncio.Queue[_Item] | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def predict(self, X: np.ndarray) -> asyncio.Future[Prediction]:
        """Queue ``X``; the future gets its prediction, or PredictionTimeout when it waited in
        the queue longer than ``timeout_s`` (a plain future, cheaper than a task per request)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new loop (test clients start one per call)
            self._loop = loop
            self._queue = asyncio.Queue(maxsize=self.max_queue)
            self._task = loop.create_task(self._run(self._queue))
        assert self._queue is not None
        future: asyncio.Future[Prediction] = loop.create_future()
        try:
            self._queue.put_nowait(_Item(X, future, loop.time() + self.timeout_s))
        except asyncio.QueueFull:  # answered through the future, as every other outcome
            future.set_exception(
                Overloaded(
                    f"{self.predictor.version.ref} has {self.max_queue} requests waiting; "
                    "retry shortly"
                )
            )
        return future

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            items = [await queue.get()]
            if self.wait_s:
                await asyncio.sleep(self.wait_s)
            rows = len(items[0].X)
            while rows < self.max_batch_rows and not queue.empty():
                item = queue.get_nowait()
                items.append(item)
                rows += len(item.X)
            now = self._loop.time() if self._loop is not None else 0.0
            for it in items:
                if now > it.deadline and not it.future.done():
                    it.future.set_exception(
                        PredictionTimeout(f"waited longer than {self.timeout_s:g}s to be predicted")
                    )
            live = [it for it in items if not it.future.done()]  # gone: timed out or cancelled
            if not live:
                continue
            try:
                X = live[0].X if len(live) == 1 else np.vstack([it.X for it in live])
                result = self.predictor.predict_matrix(X)
            except Exception as exc:  # every waiting caller gets the error
                for it in live:
                    if not it.future.done():
                        it.future.set_exception(exc)
                continue
            start = 0
            for it in live:
                end = start + len(it.X)
                if not it.future.done():
                    it.future.set_result(_slice(result, start, end))
                start = end

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _slice(result: Prediction, start: int, end: int) -> Prediction:
    probabilities = None if result.probabilities is None else result.probabilities[start:end]
    return Prediction(result.predictions[start:end], probabilities, result.classes)
