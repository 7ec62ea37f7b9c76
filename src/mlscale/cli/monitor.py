"""``mlscale monitor``: live drift and data quality from the prediction log (thin: parse, call,
print)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from mlscale.cli.output import console, print_json, table
from mlscale.errors import UserError
from mlscale.monitor.drift import THRESHOLDS, FeatureDrift
from mlscale.workspace import Workspace

_COLOUR = {"stable": "green", "warning": "yellow", "drift": "bold red"}


def _ws(ctx: click.Context) -> Workspace:
    return Workspace.open(ctx.obj.get("workspace"))


def _window_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--last-rows", type=int, help="The newest N logged rows (whole minutes).")(f)
    f = click.option("--window", help="How far back: 15m, 1h, 7d (default: every logged row).")(f)
    f = click.option("--no-update", is_flag=True, help="Do not read new log rows first.")(f)
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


def _check_window(window: str | None, last_rows: int | None) -> None:
    if window is not None and last_rows is not None:
        raise UserError("give --window or --last-rows, not both")


@click.group()
def monitor() -> None:
    """Drift and data quality of served traffic against each model's training reference."""


@monitor.command("update")
@click.argument("name", required=False)
@click.option("--resolution", help="Bucket width of the summaries (default 1m).")
@click.option("--rebuild", is_flag=True, help="Forget the summaries and read the log again.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def update(
    ctx: click.Context, name: str | None, resolution: str | None, rebuild: bool, as_json: bool
) -> None:
    """Fold new prediction-log rows of NAME (default: every model) into window summaries."""
    from mlscale.monitor.windows import update_windows

    results = update_windows(_ws(ctx), name, resolution=resolution, rebuild=rebuild)
    if as_json:
        print_json([asdict(r) for r in results])
        return
    if not results:
        console.print("the prediction log is empty: serve a model (mlscale serve) first")
        return
    table(
        None,
        ["model", "new rows", "segments", "buckets written", "rows skipped"],
        [[r.model, f"{r.rows:,}", r.segments, r.buckets, f"{r.skipped_rows:,}"] for r in results],
    )
    for r in results:
        for problem in r.problems:
            console.print(f"[yellow]{r.model}: {problem}[/]")


def _drift_rows(items: list[FeatureDrift]) -> list[list[str]]:
    return [
        [
            f.feature,
            f.kind,
            f"{f.rows:,}",
            f"{f.method} {f.score:.3f}",
            f"{f.threshold:.3f}",
            f"{f.psi:.3f}",
            f"{f.js:.3f}",
            "" if f.ks is None else f"{f.ks:.3f}",
            "" if f.wasserstein is None else f"{f.wasserstein:.3f}",
            f"{f.reference_missing:.1%} -> {f.current_missing:.1%}",
            f"[{_COLOUR[f.verdict]}]{f.verdict}[/]",
        ]
        for f in items
    ]


_DRIFT_COLUMNS = [
    "column", "kind", "values", "score", "threshold", "PSI", "JS", "KS", "W/std",
    "missing ref->now", "verdict",
]  # fmt: skip


@monitor.command("drift")
@click.argument("name")
@_window_options
@click.option(
    "--numeric-method",
    type=click.Choice(["psi", "jensen_shannon", "wasserstein", "ks"]),
    default="psi",
    show_default=True,
)
@click.option(
    "--categorical-method",
    type=click.Choice(["jensen_shannon", "psi"]),
    default="jensen_shannon",
    show_default=True,
)
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 3 if any feature drifted.")
@click.pass_context
def drift(
    ctx: click.Context,
    name: str,
    window: str | None,
    last_rows: int | None,
    no_update: bool,
    as_json: bool,
    numeric_method: str,
    categorical_method: str,
    fail_on_drift: bool,
) -> None:
    """Drift of NAME's served traffic (NAME, NAME@VERSION or NAME@ALIAS) against its reference."""
    from mlscale.monitor.drift import drift_report

    _check_window(window, last_rows)
    report = drift_report(
        _ws(ctx), name, window=window, last_rows=last_rows, update=not no_update,
        numeric_method=numeric_method, categorical_method=categorical_method,
    )  # fmt: skip
    if as_json:
        print_json(report.to_dict())
    else:
        w = report.window
        table(
            f"{report.model}: {w['description']} ({report.rows:,} rows, "
            f"{w['start'][:16]} to {w['end'][:16]}) vs its {report.reference} reference",
            _DRIFT_COLUMNS,
            _drift_rows(report.features),
        )
        if report.outputs:
            table("predictions", _DRIFT_COLUMNS, _drift_rows(report.outputs))
        elif report.reference == "profile":
            console.print("prediction drift: this version's reference holds no predictions")
        console.print(
            f"{len(report.drifted)} of {len(report.features)} features drifted"
            + (f": {', '.join(report.drifted)}" if report.drifted else "")
            + f" ({numeric_method} >= {THRESHOLDS[numeric_method][1]} numeric, "
            f"{categorical_method} >= {THRESHOLDS[categorical_method][1]} categorical, "
            "or the calibrated null level when higher)"
        )
        if report.prediction_drift:
            console.print("[bold red]the predictions drifted[/]")
    if fail_on_drift and report.drifted:
        raise SystemExit(3)


@monitor.command("quality")
@click.argument("name")
@_window_options
@click.option("--every", help="Also per period of the window: 10m, 1h.")
@click.pass_context
def quality(
    ctx: click.Context,
    name: str,
    window: str | None,
    last_rows: int | None,
    no_update: bool,
    as_json: bool,
    every: str | None,
) -> None:
    """Missing, out-of-range and unseen values and schema violations in NAME's served traffic."""
    from mlscale.monitor.quality import quality_report

    _check_window(window, last_rows)
    report = quality_report(
        _ws(ctx), name, window=window, last_rows=last_rows, every=every, update=not no_update
    )
    if as_json:
        print_json(report.to_dict())
        return

    def pct(v: float | None) -> str:
        return "" if v is None else f"{v:.2%}"

    w = report.window
    table(
        f"{report.model}: {w['description']} ({report.rows:,} rows)",
        ["column", "kind", "missing (ref)", "out of range", "unseen", "violations", "top unseen"],
        [
            [
                c.column,
                c.kind,
                f"{pct(c.missing_rate)} ({pct(c.reference_missing_rate)})",
                pct(c.out_of_range_rate),
                pct(c.unseen_rate),
                f"{c.violations:,}",
                ", ".join(f"{k} ({v:,})" for k, v in list(c.top_unseen.items())[:3]),
            ]
            for c in (*report.features, *report.outputs)
        ],
    )
    if report.buckets:
        names = [c.column for c in report.buckets[0].columns]
        table(
            f"missing / out-of-range or unseen, every {every}",
            ["from", "rows", *names],
            [
                [b.start[:16], f"{b.rows:,}"]
                + [
                    f"{c.missing_rate:.1%}/"
                    f"{(c.out_of_range_rate if c.unseen_rate is None else c.unseen_rate):.1%}"
                    for c in b.columns
                ]
                for b in report.buckets
            ],
        )


# -- delayed labels and performance ---------------------------------------------------------------
@monitor.command("labels")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--id-column", required=True, help="The column holding each row's request id.")
@click.option("--label-column", help="The column holding the outcome (default: the target).")
@click.option("--timestamp-column", help="The column holding when the outcome happened.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def labels(
    ctx: click.Context,
    name: str,
    file: str,
    id_column: str,
    label_column: str | None,
    timestamp_column: str | None,
    as_json: bool,
) -> None:
    """Store the outcomes in FILE (CSV, JSON Lines, Parquet) as labels of NAME's predictions.

    Each row names a logged prediction by id: its request id, or REQUEST:ROW (rows from 0) for
    requests of several rows. Ids with no logged prediction yet are kept and join later.
    """
    from mlscale.monitor.labels import ingest_labels

    result = ingest_labels(
        _ws(ctx), name, file, id_column=id_column, label_column=label_column,
        timestamp_column=timestamp_column,
    )  # fmt: skip
    if not result.stored:
        raise UserError(
            f"{file}: every label was refused ({result.invalid:,}):\n  "
            + "\n  ".join(result.problems)
        )
    if as_json:
        print_json(result.to_dict())
        return
    ids = "id" if result.unknown == 1 else "ids"
    console.print(
        f"{result.model}: {result.stored:,} stored ({result.replaced:,} replaced an earlier "
        f"label), {result.joined:,} joined to logged predictions, {result.unknown:,} unknown "
        f"{ids}, {result.invalid:,} invalid"
    )
    if result.unknown_ids:
        console.print(
            f"[yellow]unknown {ids} (kept: they join once the prediction is logged): "
            f"{', '.join(result.unknown_ids)}{' ...' if result.unknown > 10 else ''}[/]"
        )
    if result.invalid:
        console.print(f"[yellow]invalid rows ({_counts(result.reasons)}):[/]")
        for problem in result.problems:
            console.print(f"  {problem}", markup=False)
    for problem in result.log_problems:
        console.print(f"[yellow]prediction log: {problem}[/]")
    console.print(
        f"{result.model} has {result.total_labels:,} labels; {result.total_unknown:,} "
        f"{'names' if result.total_unknown == 1 else 'name'} no logged prediction yet"
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {n:,}" for kind, n in counts.items())


@monitor.command("performance")
@click.argument("name")
@click.option("--window", help="How far back: 15m, 1h, 7d (default: every logged row).")
@click.option("--every", help="Also per period of the window: 10m, 1h.")
@click.option("--no-update", is_flag=True, help="Do not read new log rows first.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def performance(
    ctx: click.Context,
    name: str,
    window: str | None,
    every: str | None,
    no_update: bool,
    as_json: bool,
) -> None:
    """Realised performance of NAME from delayed labels, label coverage, and (classifiers) the
    confidence-based estimate for the rows still without a label."""
    from mlscale.monitor.performance import performance_report

    report = performance_report(_ws(ctx), name, window=window, every=every, update=not no_update)
    if as_json:
        print_json(report.to_dict())
        return
    o = report.overall
    names = sorted({*o.realised, *o.estimated})

    def figure(values: dict[str, float], metric: str) -> str:
        return f"{values[metric]:.4f}" if metric in values else "-"

    def row(p: Any, label: str) -> list[str]:
        coverage = "" if p.coverage is None else f"{p.coverage:.1%}"
        cells = [label, f"{p.rows:,}", f"{p.labelled:,}", coverage]
        if report.task == "regression":
            return cells + [figure(p.realised, m) for m in names]
        return cells + [f"{figure(p.realised, m)} / {figure(p.estimated, m)}" for m in names]

    what = "" if report.task == "regression" else " (realised / estimated)"
    columns = ["window", "rows", "labelled", "coverage", *[f"{m}{what}" for m in names]]
    rows = [row(o, report.window["description"])]
    rows += [row(p, p.to_dict()["start"][:16]) for p in report.periods]
    table(f"{report.model} ({report.task}): {report.window['description']}", columns, rows)
    if o.estimated_labelled:
        console.print(
            "on the labelled rows, estimated vs realised: "
            + ", ".join(
                f"{m} {o.estimated_labelled[m]:.4f} vs {o.realised[m]:.4f}"
                for m in names
                if m in o.estimated_labelled and m in o.realised
            )
        )
    if report.task != "regression":
        advice = {
            "well calibrated": "estimates are meaningful",
            "not well calibrated": "treat the estimates with care",
            "calibration unknown": "the estimates assume calibrated probabilities",
        }[report.calibration]
        console.print(f"{report.calibration} at training: {advice}")
    console.print(
        f"{report.labels:,} labels, {report.unknown_labels:,} of them naming no logged prediction"
    )
    for problem in report.problems:
        console.print(f"[yellow]{problem}[/]")


# -- alerts ------------------------------------------------------------------------------------
_STATUS_COLOUR = {"firing": "bold red", "pending": "yellow", "ok": "green", "no data": "dim",
                  "error": "red", "resolved": "green"}  # fmt: skip


@monitor.command("alerts")
@click.argument("name", required=False)
@click.option("--evaluate", is_flag=True, help="Evaluate the rules now; send what changed.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False),
              help="The rules file (default: monitor.yaml in the workspace).")  # fmt: skip
@click.option("--limit", type=int, default=20, show_default=True, help="Recent events shown.")
@click.option("--wait", type=float, default=30.0, show_default=True,
              help="Seconds to wait for webhook deliveries after --evaluate.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def alerts(
    ctx: click.Context,
    name: str | None,
    evaluate: bool,
    rules_file: str | None,
    limit: int,
    wait: float,
    as_json: bool,
) -> None:
    """The alert rules of NAME (default: every model), the alerts firing and recent events.

    Rules live in monitor.yaml beside mlscale.toml (see mlscale.monitor.alert_rules); with
    --evaluate they are applied to the latest complete windows, and alerts that fire or
    resolve are written to the log and sent to the webhooks.
    """
    from rich.markup import escape

    from mlscale.monitor.alert_rules import load_alert_config, rules_path
    from mlscale.monitor.alert_sinks import AlertNotifier
    from mlscale.monitor.alerts import (
        active_alerts,
        alert_events,
        alert_store_path,
        evaluate_alerts,
    )
    from mlscale.monitor.windows import resolve_version

    ws = _ws(ctx)
    config = load_alert_config(rules_file or rules_path(ws.root))
    model = resolve_version(ws, name).name if name else None
    rules = config.rules_for(model) if model else list(config.rules)
    evaluation = None
    if evaluate and rules:
        notifier = AlertNotifier(alert_store_path(ws)) if config.webhooks else None
        try:
            evaluation = evaluate_alerts(ws, model, config=config, notifier=notifier)
        finally:
            if notifier is not None:
                notifier.close(timeout=wait)  # deliveries still retrying then are marked failed
    active = active_alerts(ws, model)
    events = alert_events(ws, model, limit=limit)
    if as_json:
        print_json({
            "rules_file": config.path,
            "rules": [r.to_dict() for r in rules],
            "evaluation": None if evaluation is None else evaluation.to_dict(),
            "active": [asdict(a) for a in active],
            "events": [e.to_dict() for e in events],
        })  # fmt: skip
        return
    if not rules:
        console.print(
            f"no alert rules{' for ' + model if model else ''} in {config.path}; "
            "write them there (rules: - name, metric, op, threshold, window, for)"
        )
    else:
        table(
            f"alert rules ({config.path})",
            ["rule", "condition", "models", "severity", "repeat"],
            [[r.name, r.describe(), ", ".join(r.models) or "all", r.severity, r.repeat or "-"]
             for r in rules],
        )  # fmt: skip
    if evaluation is not None:
        table(
            "evaluated now",
            ["rule", "model", "status", "values (oldest first)", "message"],
            [
                [r.rule, r.model, f"[{_STATUS_COLOUR[r.status]}]{r.status}[/]",
                 ", ".join("-" if v is None else f"{v:.4g}" for _, _, v in r.values),
                 escape(r.message)]
                for r in evaluation.results
            ],
        )  # fmt: skip
        for problem in evaluation.problems:
            console.print(f"[yellow]{escape(problem)}[/]")
    if active:
        console.print(
            "[bold red]firing:[/] "
            + "; ".join(f"{a.rule} on {a.model} since {_when(a.since)}" for a in active)
        )
    else:
        console.print("no alert is firing")
    if events:
        table(
            "recent events",
            ["#", "at", "rule", "model", "status", "message", "deliveries"],
            [
                [e.id, _when(e.at), e.rule, e.model,
                 f"[{_STATUS_COLOUR.get(e.status, 'white')}]{e.status}[/]", escape(e.message),
                 escape("; ".join(_delivery(sink, d) for sink, d in e.deliveries.items()))]
                for e in events
            ],
        )  # fmt: skip


def _when(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _delivery(sink: str, d: dict[str, Any]) -> str:
    tries = "" if d["tries"] in (0, 1) else f" ({d['tries']} tries)"
    error = f": {d['error']}" if d["status"] == "failed" and d["error"] else ""
    return f"{sink} {d['status']}{tries}{error}"


ALL = [monitor]
