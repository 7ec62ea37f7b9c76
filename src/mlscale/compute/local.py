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
import importlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
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
    with Workers(n_workers) as workers:
        workers.start(fn, range(n_workers))
        return workers.wait(poll, poll_interval)


class Workers:
    """Worker processes started ahead of their work, so that their start-up (a fresh Python
    importing ``preload``, a second or more for a numerical library) overlaps the caller's own
    work; ``start`` then hands them ``fn`` and an index each. Leaving the ``with`` block stops
    workers that are still running (SIGINT, then terminate after ``GRACE_SECONDS``) and ends the
    ones never started.

    >>> with Workers(2, preload=["json"]) as workers:
    ...     workers.start(abs, [-3, -4])
    ...     workers.wait()
    [3, 4]
    """

    def __init__(self, n_workers: int, *, preload: Iterable[str] = ()) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mlscale-workers-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.spare: list[subprocess.Popen[bytes]] = []  # started, then not needed
        self.indices: list[int] = []
        self.results: dict[int, Any] = {}
        try:
            for slot in range(n_workers):
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _CHILD, str(self.folder), str(slot), *preload],
                        stdin=subprocess.PIPE,
                    )
                )
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, fn: Callable[[int], Any], indices: Iterable[int]) -> None:
        """Run ``fn(index)`` for each of ``indices``, one per worker; workers left over end."""
        task = self.folder / "task.pickle"
        task.write_bytes(pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL))
        chosen = list(indices)
        if len(chosen) > len(self.processes):
            raise ValueError(f"{len(chosen)} calls for {len(self.processes)} workers")
        for slot, process in enumerate(self.processes):
            order = f"{task}\t{chosen[slot]}\n" if slot < len(chosen) else ""
            with contextlib.suppress(BrokenPipeError):  # it died: its missing result says so
                assert process.stdin is not None
                process.stdin.write(order.encode())
                process.stdin.close()
        self.spare = self.processes[len(chosen) :]
        self.processes, self.indices = self.processes[: len(chosen)], chosen

    def check(self) -> None:
        """Raise the error of a worker that has failed (or KeyboardInterrupt), if any."""
        for slot, process in enumerate(self.processes):
            if slot not in self.results and process.poll() is not None:
                self.results[slot] = self._result(slot, process)

    def wait(self, poll: Callable[[], None] | None = None, poll_interval: float = 0.5) -> list[Any]:
        """What each ``fn(index)`` returned, in the order of ``indices``; the first error raised
        in a worker is raised here, with the worker's traceback as a note."""
        while len(self.results) < len(self.processes):
            time.sleep(poll_interval)
            self.check()
            if poll is not None:
                poll()
        return [self.results[slot] for slot in range(len(self.processes))]

    def close(self) -> None:
        """Stop what still runs, end the workers never started, remove the task and results."""
        if not self.indices:  # never started: nothing of theirs to keep
            self.spare, self.processes = self.spare + self.processes, []
        try:
            _interrupt([p for slot, p in enumerate(self.processes) if slot not in self.results])
        finally:
            for process in self.spare:
                if process.stdin is not None:
                    with contextlib.suppress(BrokenPipeError):
                        process.stdin.close()
                process.terminate()  # silently, even before its Ctrl-C handler is set
                process.wait()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _result(self, slot: int, process: subprocess.Popen[bytes]) -> Any:
        path = self.folder / f"result-{slot}.pickle"
        index = self.indices[slot]
        if not path.exists():
            code = process.returncode
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            raise WorkerError(f"worker {index} (pid {process.pid}) ended by {how} with no result")
        status, payload, remote_tb = pickle.loads(path.read_bytes())
        if status == "interrupted":
            raise KeyboardInterrupt
        if status == "error":
            payload.add_note(f"in worker {index}:\n{remote_tb}")
            raise payload
        return payload


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
    """Entry point of a worker process: ``python -c ... FOLDER SLOT [MODULE ...]``; it imports
    the modules, then reads ``TASK<TAB>INDEX`` from stdin (nothing: it is not needed, it ends)."""
    signal.signal(signal.SIGINT, _first_interrupt)
    folder, slot = Path(sys.argv[1]), int(sys.argv[2])
    result: tuple[str, Any, str]
    try:
        for module in sys.argv[3:]:
            importlib.import_module(module)
        order = sys.stdin.readline().strip()
        if not order:
            return
        task, index = order.split("\t")
        fn = pickle.loads(Path(task).read_bytes())
        result = ("ok", fn(int(index)), "")
    except KeyboardInterrupt:
        result = ("interrupted", None, "")
    except BaseException as exc:
        result = ("error", exc, traceback.format_exc())
    try:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # the error (or result) cannot be pickled: send its text
        data = pickle.dumps(("error", WorkerError(repr(result[1])), result[2]))
    out = folder / f"result-{slot}.pickle"
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)


def _first_interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt
