"""``mlscale retrain`` and ``mlscale watch``: continuous training (thin: parse, call, print)."""

from __future__ import annotations

import json
import time

import click
from rich.markup import escape

from mlscale.cli.output import console, print_json
from mlscale.cli.train import parse_params
from mlscale.monitor.drift import DRIFT_SHARE
from mlscale.monitor.retrain import RetrainDecision
from mlscale.monitor.triggers import TRIGGERS
from mlscale.workspace import Workspace

_COLOUR = {
    "promoted": "bold green",
    "canary": "green",
    "kept": "yellow",
    "skipped": "dim",
    "would retrain": "cyan",
    "failed": "bold red",
}


def _ws(ctx: click.Context) -> Workspace:
    return Workspace.open(ctx.obj.get("workspace"))


def _gate_options(f: click.decorators.FC) -> click.decorators.FC:
    """The triggers' and the gate's options, the same for ``retrain`` and ``watch``."""
    for option in reversed(
        [
            click.option("--alias", default="production", show_default=True,
                         help="The alias that names the champion, and that moves."),
            click.option("--window", help="Drift over this much recent traffic: 1h, 7d "
                         "(default: every logged row of the champion)."),
            click.option("--drift-share", type=float, default=DRIFT_SHARE, show_default=True,
                         help="Drift trigger: the share of features that must drift."),
            click.option("--interval", default="7d", show_default=True,
                         help="Schedule trigger: retrain when the last retrain is this old."),
            click.option("--metric", help="Gate metric (default: auc, or rmse for regression)."),
            click.option("--min-delta", type=float, default=0.0, show_default=True,
                         help="How much better the challenger must score."),
            click.option("--canary", type=float, metavar="PCT",
                         help="Move the 'canary' alias instead, to be served PCT% of traffic."),
        ]
    ):  # fmt: skip
        f = option(f)
    return f


@click.command()
@click.argument("name")
@click.option("--on", "trigger", type=click.Choice(TRIGGERS), default="manual", show_default=True,
              help="Retrain only if this trigger fires.")  # fmt: skip
@click.option("--data", help="Dataset version to train on (default: the latest version of the "
              "champion's dataset).")  # fmt: skip
@click.option("--incremental", is_flag=True, help="Continue the champion's model on the data.")
@click.option("--param", "params", multiple=True, help="Override a hyperparameter KEY=VALUE.")
@_gate_options
@click.option("--dry-run", is_flag=True, help="Check the trigger and the data; train nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.pass_context
def retrain(
    ctx: click.Context,
    name: str,
    trigger: str,
    data: str | None,
    incremental: bool,
    params: tuple[str, ...],
    alias: str,
    window: str | None,
    drift_share: float,
    interval: str,
    metric: str | None,
    min_delta: float,
    canary: float | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Train a challenger to NAME@production on fresh data and promote it only if it wins.

    \b
    Fresh data: --data, else the latest version of the champion's dataset plus the older
    half of the labelled logged traffic; the newest half (when there are 200 labelled rows
    or more) judges both models, else the challenger's holdout does.
    With --canary PCT the 'canary' alias moves instead; route traffic to it with
      mlscale serve --canary NAME@production=NAME@canary:PCT
    and complete it with: mlscale models promote NAME VERSION
    The decision (promoted, canary, kept, skipped, failed) is recorded as a run:
      mlscale runs list --kind retrain
    Exit status 1 when the retrain failed.
    """
    decision = _ws(ctx).retrain(
        name, on=trigger, alias=alias, data=data, metric=metric, min_delta=min_delta,
        incremental=incremental, canary=canary, params=parse_params(params) or None,
        dry_run=dry_run, window=window, drift_share=drift_share, interval=interval,
    )  # fmt: skip
    if as_json:
        print_json(decision.to_dict())
    else:
        _print_decision(decision)
    if decision.decision == "failed":
        raise SystemExit(1)


def _print_decision(d: RetrainDecision) -> None:
    colour = _COLOUR[d.decision]
    console.print(
        f"{escape(d.model)}@{escape(d.alias)}: [{colour}]{d.decision}[/] "
        f"(trigger: {d.trigger}, champion {escape(d.champion)}"
        + (f", challenger {escape(d.challenger)}" if d.challenger else "")
        + ")"
    )
    facts = [
        ("why", d.reason),
        ("data", d.data),
        ("moved", d.moved),
        ("recorded", d.run and f"run {d.run[:8]} (mlscale runs show {d.run[:8]})"),
    ]
    if d.metric and d.challenger_value is not None and d.champion_value is not None:
        facts.insert(
            1,
            (
                d.metric,
                f"{d.challenger_value:.4f} for {d.challenger} vs {d.champion_value:.4f} for "
                f"{d.champion} on {d.evaluated_on} (gain {d.gain:+.4f}, required "
                f"> 0 and >= {d.min_delta:g})",
            ),
        )
    for label, value in facts:
        if value:
            console.print(f"  {label + ':':<10}{escape(str(value))}", soft_wrap=True)


@click.command()
@click.argument("names", nargs=-1)
@click.option("--every", "period", default="5m", show_default=True, help="Time between ticks.")
@click.option("--once", is_flag=True, help="Run one tick and exit (for cron and tests).")
@_gate_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per tick.")
@click.pass_context
def watch(
    ctx: click.Context,
    names: tuple[str, ...],
    period: str,
    once: bool,
    alias: str,
    window: str | None,
    drift_share: float,
    interval: str,
    metric: str | None,
    min_delta: float,
    canary: float | None,
    as_json: bool,
) -> None:
    """Every --every: read new traffic, evaluate the alert rules (monitor.yaml), then retrain
    NAMES (default: every model with the alias) on drift, a firing alert or the schedule.
    One line per tick, per alert event and per decision; Ctrl-C stops."""
    from mlscale.monitor.watch import tick
    from mlscale.monitor.windows import parse_duration

    seconds = parse_duration(period)
    ws = _ws(ctx)
    for name in names:  # a typo fails now, not at every tick
        ws.model(f"{name}@{alias}")
    if not once:
        console.print(f"watching {', '.join(names) or f'every model with @{alias}'} "
                      f"every {period}; Ctrl-C stops")  # fmt: skip
    try:
        while True:
            result = tick(
                ws, list(names) or None, alias=alias, window=window, drift_share=drift_share,
                interval=interval, metric=metric, min_delta=min_delta, canary=canary,
            )  # fmt: skip
            if as_json:  # one line per tick (JSON Lines), for a log collector
                click.echo(json.dumps(result.to_dict(), default=str))
            else:
                # One line each, never wrapped: a log reader (or grep) sees whole decisions.
                console.print(escape(result.describe()), soft_wrap=True)
                for event in result.alerts.events if result.alerts else []:
                    line = f"  alert {event.rule} {event.status}: {event.message}"
                    console.print(escape(line), soft_wrap=True)
                for d in result.decisions:
                    colour = _COLOUR[d.decision]
                    console.print(f"  [{colour}]{escape(d.describe())}[/]", soft_wrap=True)
                for problem in result.problems:
                    console.print(f"  [yellow]{escape(problem)}[/]", soft_wrap=True)
            if once:
                return
            time.sleep(seconds)
    except KeyboardInterrupt:
        console.print("watch stopped")


ALL = [retrain, watch]
