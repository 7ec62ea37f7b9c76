"""The local backend's worker processes: started ahead, given work later, errors raised here.

The functions the workers run are built-ins: a worker unpickles them by reference, and a test
module is not importable from a fresh interpreter.
"""

from __future__ import annotations

import math
import os
import time

import pytest

from mlscale.compute.local import WorkerError, Workers, run_parallel


def test_run_parallel_returns_in_index_order() -> None:
    assert run_parallel(math.factorial, 3) == [1, 1, 2]


def test_workers_started_ahead_run_what_they_are_given_later() -> None:
    with Workers(3, preload=["json"]) as workers:
        time.sleep(0.2)  # the caller's own work, while they import
        workers.start(abs, [-1, -2])  # two calls: the third worker is not needed
        assert workers.wait(poll_interval=0.05) == [1, 2]
        spare = workers.spare
    assert len(spare) == 1 and spare[0].poll() is not None


def test_check_raises_a_failed_workers_error_with_its_traceback() -> None:
    with Workers(2) as workers:
        workers.start(math.sqrt, [-1, 4])
        deadline = time.monotonic() + 60
        with pytest.raises(ValueError, match="math domain error") as raised:
            while time.monotonic() < deadline:  # the caller's own work, checking in between
                workers.check()
                time.sleep(0.05)
    assert "in worker -1" in raised.value.__notes__[0]


def test_a_worker_that_dies_without_a_result_is_named() -> None:
    with Workers(1) as workers:
        workers.start(os._exit, [3])
        with pytest.raises(WorkerError, match=r"worker 3 .* exit code 3 with no result"):
            workers.wait(poll_interval=0.05)


def test_workers_never_started_end_when_closed() -> None:
    workers = Workers(2, preload=["json"])
    processes = list(workers.processes)
    workers.close()
    assert all(p.poll() is not None for p in processes)
    assert not workers.folder.exists()
