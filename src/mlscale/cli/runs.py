"""``mlscale runs list|show|compare``: what was trained, with what, on what, and how it did.

RUN is a run id or any unique start of one (like a git commit).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click
from rich.markup import escape

from mlscale.cli.output import console, print_json, table
from mlscale.errors import UserError
from mlscale.reports import evaluation_page, load_json, runs_page, write_page
from mlscale.reports.html import number, text
from mlscale.reports.runs import (
    environment_rows,
    flat_params,
    key_metrics,
    ordered_metrics,
    param_rows,
    seconds,
    short_id,
    trials,
)
from mlscale.store.records import Run
from mlscale.workspace import Workspace


def _ws(ctx: click.Context) -> Workspace:
    return Workspace.open(ctx.obj.get("workspace"))


def _run_dict(run: Run) -> dict[str, Any]:
    return dataclasses.asdict(run) | {
        "started_at": run.started_at.isoformat(),
        "ended_at": run.ended_at and run.ended_at.isoformat(),
    }


def _metrics_text(run: Run) -> str:
    return ", ".join(f"{name} {number(value)}" for name, value in key_metrics(run))


@click.group()
def runs() -> None:
    """Training and tuning runs: list them, show one, compare several.

    \b
    RUN is a run id or a unique start of one, e.g.  mlscale runs show 3f2a9c
    """


@runs.command("list")
@click.option("--kind", help="Only runs of this kind (train, tune, trial); trials are hidden else.")
@click.option("--limit", "-n", default=20, show_default=True, help="The newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.pass_context
def runs_list(ctx: click.Context, kind: str | None, limit: int, as_json: bool) -> None:
    """The newest runs, newest first."""
    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    ws = _ws(ctx)
    found = ws.runs(limit, kind=kind)
    studies = {r.id: len(trials(ws.metadata, r)) for r in found if r.kind == "tune"}
    if as_json:
        print_json(
            [_run_dict(r) | ({"trials": studies[r.id]} if r.id in studies else {}) for r in found]
        )
        return
    if not found:
        what = f"{kind} runs" if kind else "runs"
        console.print(f"no {what} yet: mlscale train DATASET@latest --target COLUMN")
        return
    columns = ["id", "kind", "status", "dataset", "model", "metrics", "duration", "started"]
    with_parent = any(r.parent_id for r in found)
    rows = []
    for r in found:
        model = str(r.params.get("model") or "")
        if r.id in studies:
            model = f"{model} ({studies[r.id]} trials)".strip()
        row = [
            short_id(r.id),
            r.kind,
            r.status,
            r.dataset or "",
            model,
            _metrics_text(r),
            seconds(r.duration_s),
            f"{r.started_at:%Y-%m-%d %H:%M}",
        ]
        rows.append([escape(v) for v in row] + ([short_id(r.parent_id or "")] * with_parent))
    table(None, columns + ["study"] * with_parent, rows)


@runs.command("show")
@click.argument("run_ref", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print the whole run record as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the run's evaluation page (plots, curves, params) to this file.",
)
@click.pass_context
def runs_show(ctx: click.Context, run_ref: str, as_json: bool, html_path: str | None) -> None:
    """One run: params, metrics, environment, dataset, artifacts and the model it produced."""
    ws = _ws(ctx)
    run = ws.run(run_ref)
    children = trials(ws.metadata, run) if run.kind == "tune" else []
    if html_path:
        evaluation = load_json(ws.artifacts, run, "evaluation")
        curves = load_json(ws.artifacts, run, "curves")
        write_page(html_path, evaluation_page(run, evaluation, curves))
    if as_json:
        extra = {"trials": [c.id for c in children]} if run.kind == "tune" else {}
        print_json(_run_dict(run) | extra | ({"html": html_path} if html_path else {}))
        return
    _print_run(run, children)
    if html_path:
        note = "" if "evaluation" in run.artifacts else " (no evaluation recorded for this run)"
        console.print(f"wrote {escape(html_path)}{note}")


def _print_run(run: Run, children: list[Run]) -> None:
    console.print(f"[bold]run {run.id}[/bold]  {run.kind}, {escape(run.status)}")
    facts = [
        ("dataset", run.dataset),
        ("model", run.params.get("model")),
        ("task", run.params.get("task")),
        ("seed", run.params.get("seed")),
        ("model version", run.env.get("model_version")),
        ("study", run.parent_id),
        ("started", f"{run.started_at:%Y-%m-%d %H:%M:%S}"),
        ("ended", run.ended_at and f"{run.ended_at:%Y-%m-%d %H:%M:%S}"),
        ("wall time", seconds(run.duration_s)),
    ]
    for label, value in facts:
        if value not in (None, ""):
            console.print(f"  {label + ':':<15}{escape(text(value))}")
    if run.error:
        console.print(f"  {'error:':<15}{escape(run.error)}")
    if run.metrics:
        table(
            "metrics",
            ["metric", "value"],
            [[escape(m), number(run.metrics[m])] for m in ordered_metrics(run.metrics)],
        )
    params = flat_params(run.params)
    if params:
        table(
            "params", ["param", "value"], [[escape(k), escape(text(v))] for k, v in params.items()]
        )
    env = environment_rows(run)
    if env:
        table("environment", ["", ""], [[escape(k), escape(v)] for k, v in env])
    if run.artifacts:
        table("artifacts", ["name", "sha256"], sorted(run.artifacts.items()))
    if children:
        table(
            f"trials ({len(children)})",
            ["id", "status", "metrics", "duration"],
            [
                [short_id(c.id), c.status, escape(_metrics_text(c)), seconds(c.duration_s)]
                for c in children
            ],
        )


@runs.command("compare")
@click.argument("run_refs", metavar="RUN RUN...", nargs=-1, required=True)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write a page with the learning curves overlaid to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.pass_context
def runs_compare(
    ctx: click.Context, run_refs: tuple[str, ...], html_path: str | None, as_json: bool
) -> None:
    """Runs side by side: metrics, then the params that differ."""
    if len(run_refs) < 2:
        raise UserError("compare needs at least two runs, e.g. mlscale runs compare 3f2a 9b1c")
    ws = _ws(ctx)
    chosen = [ws.run(ref) for ref in run_refs]
    if len({r.id for r in chosen}) < len(chosen):
        raise UserError(f"the same run is given twice in {' '.join(run_refs)}")
    if html_path:
        curves = {r.id: load_json(ws.artifacts, r, "curves") for r in chosen}
        write_page(html_path, runs_page(chosen, curves))
    if as_json:
        print_json([_run_dict(r) for r in chosen])
        return
    columns = ["", *(short_id(r.id) for r in chosen)]
    rows: list[list[Any]] = [
        ["run", *(escape(f"{r.kind} {r.params.get('model') or ''}".strip()) for r in chosen)],
        ["dataset", *(escape(r.dataset or "") for r in chosen)],
        ["duration", *(seconds(r.duration_s) for r in chosen)],
    ]
    for name in ordered_metrics({m for r in chosen for m in r.metrics}):
        values = [r.metrics.get(name) for r in chosen]
        rows.append([escape(name), *("" if v is None else number(v) for v in values)])
    params = param_rows(chosen)
    differ = [(k, vs) for k, vs, d in params if d]
    for key, values in differ:
        rows.append([f"[yellow]{escape(key)}[/yellow]", *(escape(text(v)) for v in values)])
    table(None, columns, rows)
    same = len(params) - len(differ)
    console.print(f"{len(differ)} params differ (highlighted), {same} are the same")
    if html_path:
        console.print(f"wrote {escape(html_path)}")


ALL = [runs]
