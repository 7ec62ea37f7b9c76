"""Run ``fn(0) .. fn(n - 1)`` in ``n`` local worker processes and collect what they return.

Each worker is a fresh ``python`` that unpickles ``fn`` from a file, calls it with its index and
pickles the result (or the error) back. Not ``multiprocessing``: a forked child would inherit the
parent's OpenMP, Arrow and database threads in an unknown state, and a spawned one re-imports
the caller's main module, which hangs or recurses in a script without a ``__main__`` guard or in
a notebook. ``fn`` must be picklable by reference (a top-level function, or an instance of a
top-level class with ``__call__``).

Ctrl-C: a terminal sends SIGINT to the parent and to every worker; a worker turns the first one
into a KeyboardInterrupt (so its work can record that it was interrupted) and ignores any later
one, so that this clean-up is not cut short. The parent forwards SIGINT to workers that did not
get it (a signal sent to the parent alone), waits for them, and raises KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlscale.errors import MlscaleError

T = TypeVar("T")

#: How long interrupted workers get to record where they stopped before they are terminated.
GRACE_SECONDS = 30.0
_CHILD = "from mlscale.compute.local import _child_main; _child_main()"


class WorkerError(MlscaleError):
    """A worker process ended without a result (it died, or its error could not be sent)."""


def run_parallel(
    fn: Callable[[int], T],
    n_workers: int,
    *,
    poll: Callable[[], None] | None = None,
    poll_interval: float = 0.5,
) -> list[T]:
    """``[fn(0), ..., fn(n_workers - 1)]``, each call in a process of its own.

    ``poll`` is called every ``poll_interval`` seconds while the workers run (progress). The
    first error raised in a worker stops the others and is raised here, with the worker's
    traceback as a note.

    >>> run_parallel(abs, 2)  # abs(0), abs(1), each in its own process
    [0, 1]
    """
    folder = Path(tempfile.mkdtemp(prefix="mlscale-workers-"))
    workers: list[subprocess.Popen[bytes]] = []
    try:
        task = folder / "task.pickle"
        task.write_bytes(pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL))
        for index in range(n_workers):
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", _CHILD, str(task), str(index), str(folder)],
                    stdin=subprocess.DEVNULL,
                )
            )
        return _collect(workers, folder, poll, poll_interval)
    except BaseException:  # Ctrl-C, or one worker's error: the others stop too
        _interrupt(workers)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _collect(
    workers: list[subprocess.Popen[bytes]],
    folder: Path,
    poll: Callable[[], None] | None,
    poll_interval: float,
) -> list[Any]:
    results: dict[int, Any] = {}
    pending = dict(enumerate(workers))
    while pending:
        time.sleep(poll_interval)
        for index, process in list(pending.items()):
            if process.poll() is None:
                continue
            del pending[index]
            status, payload, remote_tb = _result(folder, index, process)
            if status == "interrupted":
                raise KeyboardInterrupt
            if status == "error":
                payload.add_note(f"in worker {index}:\n{remote_tb}")
                raise payload
            results[index] = payload
        if poll is not None:
            poll()
    return [results[i] for i in range(len(workers))]


def _result(folder: Path, index: int, process: subprocess.Popen[bytes]) -> tuple[str, Any, str]:
    path = folder / f"result-{index}.pickle"
    if not path.exists():
        code = process.returncode
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise WorkerError(f"worker {index} (pid {process.pid}) ended by {how} with no result")
    result: tuple[str, Any, str] = pickle.loads(path.read_bytes())
    return result


def _interrupt(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT to live workers, wait up to GRACE_SECONDS, then terminate what is left."""
    alive = [p for p in workers if p.poll() is None]
    for process in alive:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + GRACE_SECONDS
    try:
        for process in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
    finally:  # a second Ctrl-C while waiting ends the workers at once
        for process in alive:
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
            if process.poll() is None:
                process.kill()
                process.wait()


def _child_main() -> None:
    """Entry point of a worker process: ``python -c ... TASK INDEX FOLDER``."""
    signal.signal(signal.SIGINT, _first_interrupt)
    task, index, folder = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    result: tuple[str, Any, str]
    try:
        fn = pickle.loads(task.read_bytes())
        result = ("ok", fn(index), "")
    except KeyboardInterrupt:
        result = ("interrupted", None, "")
    except BaseException as exc:
        result = ("error", exc, traceback.format_exc())
    try:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # the error (or result) cannot be pickled: send its text
        data = pickle.dumps(("error", WorkerError(repr(result[1])), result[2]))
    out = folder / f"result-{index}.pickle"
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)


def _first_interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt
