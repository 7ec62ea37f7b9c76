"""Printing for people: tables, summaries and progress (a bar on a terminal, lines otherwise)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.table import Table

# Piped output is not cut to 80 columns: tables stay readable in logs and CI.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    console.print(t)


@contextmanager
def progress(description: str, unit: str = "rows") -> Iterator[Callable[[int], None]]:
    """Yield ``update(done)``: a live spinner on a terminal, a line every 2 s otherwise."""
    if err_console.is_terminal:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,} " + unit),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=None)
            yield lambda done: bar.update(task, completed=done)
        return
    last = [time.monotonic()]

    def update(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0:
            last[0] = now
            print(f"{description}: {done:,} {unit}", file=sys.stderr, flush=True)

    yield update
