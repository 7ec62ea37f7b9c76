"""``mlscale models list|show|promote|rollback|history``: the model registry on the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mlscale.cli.output import console, print_json, table
from mlscale.store.records import AliasEvent, ModelVersion
from mlscale.workspace import Workspace

if TYPE_CHECKING:
    from mlscale.registry.lineage import Lineage
    from mlscale.registry.promote import Comparison


def _ws(ctx: click.Context) -> Workspace:
    return Workspace.open(ctx.obj.get("workspace"))


def _when(t: Any) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _v(version: int | None) -> str:
    return "-" if version is None else str(version)


@click.group()
def models() -> None:
    """List, inspect, promote and roll back model versions."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    """Every model version, newest last."""
    ws = _ws(ctx)
    versions = [v for m in ws.models() for v in ws.metadata.list_model_versions(m.name)]
    if as_json:
        print_json([_model_dict(v) for v in versions])
        return
    if not versions:
        console.print("no models yet: mlscale train DATASET --target COLUMN")
        return
    table(
        None,
        ["model", "flavor", "task", "aliases", "metrics", "dataset", "created"],
        [
            [
                v.ref,
                v.flavor,
                v.signature["task"],
                ", ".join(v.aliases),
                " ".join(f"{k}={m:.3f}" for k, m in v.metrics.items()),
                v.dataset,
                v.created_at.strftime("%Y-%m-%d %H:%M"),
            ]
            for v in versions
        ],
    )


def _model_dict(v: ModelVersion) -> dict[str, Any]:
    return {
        "ref": v.ref,
        "name": v.name,
        "version": v.version,
        "flavor": v.flavor,
        "aliases": v.aliases,
        "metrics": v.metrics,
        "dataset": v.dataset,
        "run": v.run_id,
        "artifact_sha256": v.artifact_sha,
        "created_at": v.created_at.isoformat(),
        "signature": v.signature,
    }


@models.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """One model version: metrics, lineage (dataset -> run -> version -> aliases), signature."""
    from mlscale.registry.lineage import lineage

    found = lineage(_ws(ctx), ref)
    v = found.model
    if as_json:
        print_json(_model_dict(v) | {"lineage": found.to_dict()})
        return
    sig = v.signature
    console.print(f"[bold]{v.ref}[/bold]  {v.flavor}, {sig['task']}, target {sig['target']!r}")
    console.print(f"aliases: {', '.join(v.aliases) or '-'}")
    console.print(f"lineage: dataset {v.dataset} -> run {v.run_id} -> {v.ref}")
    console.print("metrics: " + ", ".join(f"{k}={m:.4f}" for k, m in v.metrics.items()))
    if sig.get("classes"):
        console.print(f"classes: {sig['classes']}")
    _print_lineage(found)
    table(
        "signature",
        ["feature", "type", "kind", "categories"],
        [
            [f["name"], f["type"], f["kind"], ", ".join(f.get("categories", [])[:8])]
            for f in sig["features"]
        ],
    )


def _print_lineage(found: Lineage) -> None:
    d, r = found.dataset, found.run
    if d is not None:
        console.print(
            f"  dataset {d.ref}: {d.num_rows:,} rows from {d.source.get('uri', '?')}, "
            f"ingested {_when(d.created_at)} UTC"
        )
    if r is not None:
        took = f" in {r.duration_s:.1f}s" if r.duration_s is not None else ""
        console.print(
            f"  run {r.id}: {r.kind}, {r.status}{took}, started {_when(r.started_at)} UTC"
        )
        scalars = {
            k: p for k, p in r.params.items() if not isinstance(p, dict | list) and p is not None
        }
        if scalars:
            console.print("    params: " + " ".join(f"{k}={p}" for k, p in scalars.items()))
        hyper = r.params.get("hyperparameters")
        if isinstance(hyper, dict) and hyper:
            console.print("    hyperparameters: " + " ".join(f"{k}={p}" for k, p in hyper.items()))
        if r.metrics:
            console.print("    metrics: " + ", ".join(f"{k}={m:.4f}" for k, m in r.metrics.items()))
    if found.moves:
        table(f"alias moves of {found.model.ref}", *_moves_table(found.moves))


def _moves_table(moves: list[AliasEvent]) -> tuple[list[str], list[list[Any]]]:
    return (
        ["when (UTC)", "alias", "from -> to", "who", "why"],
        [
            [
                _when(e.at),
                e.alias,
                f"{_v(e.from_version)} -> {_v(e.to_version)}",
                e.actor or "",
                e.reason or "",
            ]
            for e in moves
        ],
    )


def _print_comparison(c: Comparison) -> None:
    console.print(f"{c.metric} on {c.holdout}:")
    rows = [[c.challenger, "challenger", f"{c.challenger_value:.4f}"]]
    if c.holder is not None and c.holder_value is not None:
        rows.append([c.holder, f"current {c.alias}", f"{c.holder_value:.4f}"])
    table(None, ["model", "role", c.metric], rows)
    console.print(c.verdict)


@models.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="production", show_default=True)
@click.option(
    "--require-better",
    "metric",
    metavar="METRIC",
    help="Refuse unless VERSION beats the alias's holder on this metric on the same holdout.",
)
@click.option(
    "--min-delta",
    default=0.0,
    show_default=True,
    type=float,
    help="How much better it must be (with --require-better).",
)
@click.option("--reason", help="Why: kept in the alias history.")
@click.pass_context
def models_promote(
    ctx: click.Context,
    name: str,
    version: int,
    alias: str,
    metric: str | None,
    min_delta: float,
    reason: str | None,
) -> None:
    """Point NAME@ALIAS at VERSION (servers pick it up within a second)."""
    done = _ws(ctx).promote(
        name, version, alias=alias, require_better=metric, min_delta=min_delta, reason=reason
    )
    if done.comparison is not None:
        _print_comparison(done.comparison)
    event = done.event
    if event is None:
        console.print(f"{name}@{alias} already points at version {version}: nothing changed")
        return
    before = f"(was {event.from_version})" if event.from_version else "(new alias)"
    console.print(f"{name}@{alias} -> version {event.to_version} {before}")


@models.command("rollback")
@click.argument("name")
@click.option("--alias", default="production", show_default=True)
@click.option("--reason", help="Why: kept in the alias history.")
@click.pass_context
def models_rollback(ctx: click.Context, name: str, alias: str, reason: str | None) -> None:
    """Move NAME@ALIAS back to where it was before its last move."""
    event = _ws(ctx).rollback(name, alias=alias, reason=reason)
    if event.to_version is None:
        console.print(f"{name}@{alias} removed (was {event.from_version}): its first move undone")
    else:
        console.print(
            f"{name}@{alias} -> version {event.to_version} (was {_v(event.from_version)})"
        )


@models.command("history")
@click.argument("name")
@click.option("--alias", help="Only this alias.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_history(ctx: click.Context, name: str, alias: str | None, as_json: bool) -> None:
    """Every alias move of model NAME: when, alias, from -> to, who, why."""
    from mlscale.registry.aliases import history

    moves = history(_ws(ctx), name, alias=alias)
    if as_json:
        print_json(
            [
                {
                    "at": e.at.isoformat(),
                    "alias": e.alias,
                    "from": e.from_version,
                    "to": e.to_version,
                    "actor": e.actor,
                    "reason": e.reason,
                }
                for e in moves
            ]
        )
        return
    if not moves:
        console.print(f"no alias moves of {name} yet: mlscale models promote {name} VERSION")
        return
    table(f"alias moves of {name}", *_moves_table(moves))


ALL = [models]
