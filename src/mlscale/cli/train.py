"""``mlscale train``: fit, evaluate and register a model version, with a live progress line."""

from __future__ import annotations

from typing import Any

import click

from mlscale.cli.compute_options import address_option, backend_option
from mlscale.cli.output import console, print_json, progress, table
from mlscale.errors import UserError
from mlscale.models.base import ADAPTERS
from mlscale.train.splits import SPLITS
from mlscale.workspace import Workspace


def parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs to a dict; numbers and true/false become numbers and booleans.

    >>> parse_params(("num_leaves=63", "learning_rate=0.1", "penalty=l1", "x=true"))
    {'num_leaves': 63, 'learning_rate': 0.1, 'penalty': 'l1', 'x': True}
    """
    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--param {item!r}: expected KEY=VALUE, e.g. --param num_leaves=63")
        value: Any = {"true": True, "false": False}.get(raw.lower(), raw)
        if value is raw:
            for convert in (int, float):
                try:
                    value = convert(raw)
                    break
                except ValueError:
                    continue
        params[key] = value
    return params


@click.command()
@click.argument("dataset")
@click.option("--target", "-t", required=True, help="The column to predict.")
@click.option(
    "--model",
    "-m",
    help=f"One of {', '.join(ADAPTERS)} (default: lightgbm, or the --init-from model's).",
)
@click.option("--name", help="Model name (default: the dataset's name).")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), help="Override.")
@click.option("--exclude", multiple=True, help="A column not to use as a feature (repeatable).")
@click.option("--param", "params", multiple=True, help="A hyperparameter KEY=VALUE (repeatable).")
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="holdout",
    show_default=True,
    help="holdout: random; time: the latest rows by --time-column; kfold: --folds fits.",
)
@click.option("--test-size", default=0.2, show_default=True, help="Holdout share.")
@click.option("--folds", default=5, show_default=True, help="Folds for --split kfold.")
@click.option("--time-column", help="Timestamp column for --split time.")
@click.option("--init-from", help="Continue training this model version (NAME@VERSION).")
@click.option(
    "--out-of-core",
    is_flag=True,
    help="Stream the dataset instead of loading it (lightgbm, xgboost, logistic, linear).",
)
@click.option("--seed", default=42, show_default=True)
@backend_option("fit lightgbm or xgboost data-parallel with Ray Train")
@address_option
@click.option("--workers", default=2, show_default=True, help="Ray Train workers (--backend ray).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def train(
    ctx: click.Context,
    dataset: str,
    target: str,
    model: str | None,
    name: str | None,
    task: str | None,
    exclude: tuple[str, ...],
    params: tuple[str, ...],
    split: str,
    test_size: float,
    folds: int,
    time_column: str | None,
    init_from: str | None,
    out_of_core: bool,
    seed: int,
    backend: str | None,
    address: str | None,
    workers: int,
    as_json: bool,
) -> None:
    """Train a model on DATASET (NAME@VERSION or NAME@latest) and register a version."""
    ws = Workspace.open(ctx.obj.get("workspace"))
    with progress(f"training {model or 'lightgbm'} on {dataset}", unit="iterations") as update:
        result = ws.train(
            dataset,
            target=target,
            model=model,
            name=name,
            task=task,
            exclude=list(exclude),
            params=parse_params(params),
            split=split,
            test_size=test_size,
            folds=folds,
            time_column=time_column,
            init_from=init_from,
            out_of_core=out_of_core,
            seed=seed,
            backend=backend,
            address=address,
            workers=workers,
            progress=lambda step, _planned, _metrics: update(step),
        )
    mv = result.model
    if as_json:
        print_json(
            {
                "model": mv.ref,
                "run": result.run.id,
                "metrics": result.metrics,
                "task": mv.signature["task"],
                "duration_s": result.run.duration_s,
            }
        )
        return
    console.print(
        f"registered [bold]{mv.ref}[/bold] ({mv.flavor}, {mv.signature['task']}) "
        f"from {mv.dataset} in {result.run.duration_s:.1f}s; run {result.run.id}"
    )
    held = f"{result.rows_test:,} holdout" if result.rows_test else f"{folds}-fold cross-validation"
    skipped = result.rows_without_target
    console.print(
        f"rows: {result.rows_train:,} train, {held}"
        + (f", {skipped:,} skipped (no target)" if skipped else "")
    )
    column = "holdout" if result.rows_test else f"mean of {folds} folds"
    table(None, ["metric", column], [[k, f"{v:.4f}"] for k, v in result.metrics.items()])
    if mv.signature["excluded"]:
        console.print(
            "not used as features: "
            + "; ".join(f"{k} ({v})" for k, v in mv.signature["excluded"].items())
        )


ALL = [train]
