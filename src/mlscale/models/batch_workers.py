"""Batch scoring in worker processes: each loads the model version once and predicts batches.

The parent reads and validates the input and writes the output (both overlapped with the
workers); the workers encode and predict, one thread each, so N workers use N cores whatever the
model library does with threads. Batches come back in input order, at most two per worker in
flight, so memory stays bounded.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa

if TYPE_CHECKING:
    from mlscale.models.predictor import Predictor


@dataclass(frozen=True)
class VersionRef:
    """What a worker process needs to load the same model version (picklable): the workspace
    root and an exact ``name@version``. Loading verifies the artifact's hash, as everywhere."""

    root: str
    ref: str

    def load(self) -> Predictor:
        from mlscale.workspace import Workspace

        return Workspace.open(self.root).predictor(self.ref)


T = TypeVar("T")
_predictor: Predictor | None = None


def _start_worker(version: VersionRef) -> None:
    # One thread per worker: the workers are the parallelism. Set before the model library
    # (and its OpenMP runtime) is first imported in this fresh process.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    global _predictor
    _predictor = version.load()


def _score(features: pa.Table) -> dict[str, pa.Array]:
    from mlscale.models.batch import prediction_columns

    assert _predictor is not None, "worker not started"
    return prediction_columns(_predictor, features)


def scored_in_workers(
    version: VersionRef, feature_names: list[str], tables: Iterable[pa.Table], workers: int
) -> Iterator[tuple[pa.Table, dict[str, pa.Array]]]:
    """Each table of ``tables`` with its prediction columns, computed by ``workers`` processes."""
    context = multiprocessing.get_context("spawn")  # fork would copy the parent's threads' locks
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(version,)
    ) as pool:
        yield from in_order(
            lambda t: pool.submit(_score, t.select(feature_names)), tables, 2 * workers
        )


def in_order(
    submit: Callable[[pa.Table], Future[T]], tables: Iterable[pa.Table], ahead: int
) -> Iterator[tuple[pa.Table, T]]:
    """Each table with its result, in input order, with at most ``ahead`` submitted and waiting;
    what is still waiting is cancelled when the caller stops early."""
    pending: deque[tuple[pa.Table, Future[T]]] = deque()
    try:
        for table in tables:
            pending.append((table, submit(table)))
            if len(pending) >= ahead:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        for _, future in pending:
            future.cancel()
