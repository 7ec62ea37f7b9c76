"""``mlscale tune``: search hyperparameters, register the best trial; Ctrl-C, then resume."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from mlscale.cli.compute_options import address_option, backend_option
from mlscale.cli.output import console, err_console, print_json, table
from mlscale.models.base import ADAPTERS
from mlscale.workspace import Workspace

if TYPE_CHECKING:
    from mlscale.tune.tuner import TuneProgress

# Literal copies, so that `mlscale --help` does not import Optuna; tests keep them in step.
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("hyperband", "median", "none")


@click.command()
@click.argument("dataset")
@click.option("--target", "-t", required=True, help="The column to predict.")
@click.option(
    "--model", "-m", default="lightgbm", show_default=True, help=f"One of {', '.join(ADAPTERS)}."
)
@click.option("--trials", "-n", default=20, show_default=True, help="Trials in the study, in all.")
@click.option(
    "--parallel", default=1, show_default=True, help="Trials at once, each on cores/K threads."
)
@click.option("--timeout", type=float, help="Start no new trial after this many seconds.")
@click.option("--sampler", type=click.Choice(SAMPLERS), default="tpe", show_default=True)
@click.option("--pruner", type=click.Choice(PRUNERS), default=PRUNERS[0], show_default=True)
@click.option("--grid-points", default=3, show_default=True, help="Grid values per range.")
@click.option(
    "--space",
    "space",
    type=click.Path(dir_okay=False),
    help="YAML overrides of the search space: NAME: {low, high, log} | {choices: [...]} | VALUE.",
)
@click.option("--study", help="Study name (default: derived from the options, so reruns resume).")
@click.option("--metric", help="What to optimise (default: auc for classes, rmse for values).")
@click.option("--seed", default=42, show_default=True)
@click.option("--name", help="Model name to register (default: the dataset's name).")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), help="Override.")
@click.option("--exclude", multiple=True, help="A column not to use as a feature (repeatable).")
@backend_option("run the trials on Ray workers")
@address_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def tune(
    ctx: click.Context,
    dataset: str,
    target: str,
    model: str,
    trials: int,
    parallel: int,
    timeout: float | None,
    sampler: str,
    pruner: str,
    grid_points: int,
    space: str | None,
    study: str | None,
    metric: str | None,
    seed: int,
    name: str | None,
    task: str | None,
    exclude: tuple[str, ...],
    backend: str | None,
    address: str | None,
    as_json: bool,
) -> None:
    """Tune MODEL on DATASET (NAME@VERSION) and register the best trial as a version.

    The study is kept in the workspace: after Ctrl-C (or --timeout), the same command continues
    it up to --trials in all.
    """
    from mlscale.tune.tuner import TuneInterrupted

    ws = Workspace.open(ctx.obj.get("workspace"))
    try:
        with _progress(f"tuning {model} on {dataset}", trials) as update:
            result = ws.tune(
                dataset,
                target=target,
                model=model,
                trials=trials,
                parallel=parallel,
                timeout=timeout,
                sampler=sampler,
                pruner=pruner,
                grid_points=grid_points,
                space=space,
                study=study,
                metric=metric,
                seed=seed,
                name=name,
                task=task,
                exclude=list(exclude),
                backend=backend,
                address=address,
                progress=update,
            )
    except TuneInterrupted as stop:
        click.echo(
            f"interrupted after {stop.done} of {stop.total} trials; the study {stop.study!r} is "
            "saved: run the same command again to continue it",
            err=True,
        )
        sys.exit(130)
    mv = result.model
    if as_json:
        print_json(
            {
                "model": mv.ref,
                "run": result.run.id,
                "study": result.study,
                "storage": result.storage,
                "metric": result.metric,
                "best_trial": result.best_trial,
                "best_value": result.best_value,
                "best_params": result.best_params,
                "holdout": mv.metrics,
                "trials": {
                    "complete": result.complete,
                    "pruned": result.pruned,
                    "failed": result.failed,
                    "ran": result.ran,
                },
                "stopped": result.stopped,
            }
        )
        return
    trials_line = f"{result.complete} complete, {result.pruned} pruned"
    if result.failed:
        trials_line += f", {result.failed} failed"
    if result.ran == 0:
        trials_line += "; no new trial was needed"
    elif result.stopped != "done":
        trials_line += f"; stopped early ({result.stopped}): rerun to continue"
    console.print(f"study {result.study}: {trials_line}")
    console.print(
        f"best trial #{result.best_trial}: validation {result.metric} {result.best_value:.4f}"
    )
    console.print(
        f"registered [bold]{mv.ref}[/bold] ({mv.flavor}) from {mv.dataset}; "
        f"tuning run {result.run.id}"
    )
    table(None, ["hyperparameter", "value"], [[k, _fmt(v)] for k, v in result.best_params.items()])
    table(None, ["metric", "holdout"], [[k, f"{v:.4f}"] for k, v in mv.metrics.items()])


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[TuneProgress], None]]:
    """A bar of trials with the best score and pruned count on a terminal; a line every 5 s
    otherwise."""
    if err_console.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total, status="")

            def update(p: TuneProgress) -> None:
                bar.update(task, completed=p.done, status=_status(p))

            yield update
        return
    last = [0.0, -1]

    def update_line(p: TuneProgress) -> None:
        now = time.monotonic()
        if p.stage != "trials" or (p.done != last[1] and now - last[0] >= 5.0) or p.done == total:
            last[0], last[1] = now, p.done
            print(f"{description}: {p.done}/{p.total} trials, {_status(p)}", file=sys.stderr)

    yield update_line


def _status(p: TuneProgress) -> str:
    best = "-" if p.best is None else f"{p.best:.4f}"
    text = f"best {best}, {p.pruned} pruned"
    if p.failed:
        text += f", {p.failed} failed"
    if p.stage == "training":
        text += "; training the best on all training rows"
    return text


ALL = [tune]
