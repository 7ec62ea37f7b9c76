"""Every CLI command: one verb each, thin (parse, call :class:`mlscale.Workspace`, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlscale.cli.output import console, print_json, progress, table
from mlscale.errors import UserError
from mlscale.workspace import Workspace


def _ws(ctx: click.Context) -> Workspace:
    return Workspace.open(ctx.obj.get("workspace"))


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Create a workspace (mlscale.toml and .mlscale/) in DIRECTORY."""
    ws = Workspace.init(directory)
    console.print(f"workspace ready at {ws.root}")


def _parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--param {item!r}: expected KEY=VALUE, e.g. --param num_leaves=63")
        value: Any = raw
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
    "--model", "-m", default="lightgbm", show_default=True, help="lightgbm, logistic or linear."
)
@click.option("--name", help="Model name (default: the dataset's name).")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), help="Override.")
@click.option("--exclude", multiple=True, help="A column not to use as a feature (repeatable).")
@click.option("--param", "params", multiple=True, help="A hyperparameter KEY=VALUE (repeatable).")
@click.option("--test-size", default=0.2, show_default=True, help="Holdout share.")
@click.option("--seed", default=42, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def train(
    ctx: click.Context,
    dataset: str,
    target: str,
    model: str,
    name: str | None,
    task: str | None,
    exclude: tuple[str, ...],
    params: tuple[str, ...],
    test_size: float,
    seed: int,
    as_json: bool,
) -> None:
    """Train a model on DATASET (NAME@VERSION or NAME@latest) and register a version."""
    ws = _ws(ctx)
    with console.status(f"training {model} on {dataset}"):
        result = ws.train(
            dataset,
            target=target,
            model=model,
            name=name,
            task=task,
            exclude=list(exclude),
            params=_parse_params(params),
            test_size=test_size,
            seed=seed,
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
    console.print(
        f"rows: {result.rows_train:,} train, {result.rows_test:,} holdout"
        + (
            f", {result.rows_without_target:,} skipped (no target)"
            if result.rows_without_target
            else ""
        )
    )
    table(None, ["metric", "holdout"], [[k, f"{v:.4f}"] for k, v in result.metrics.items()])
    if mv.signature["excluded"]:
        console.print(
            "not used as features: "
            + "; ".join(f"{k} ({v})" for k, v in mv.signature["excluded"].items())
        )


@click.group()
def models() -> None:
    """List, inspect and promote model versions."""


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


def _model_dict(v: Any) -> dict[str, Any]:
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
    """One model version: metrics, lineage and signature."""
    v = _ws(ctx).model(ref)
    if as_json:
        print_json(_model_dict(v))
        return
    sig = v.signature
    console.print(f"[bold]{v.ref}[/bold]  {v.flavor}, {sig['task']}, target {sig['target']!r}")
    console.print(f"aliases: {', '.join(v.aliases) or '-'}")
    console.print(f"lineage: dataset {v.dataset} -> run {v.run_id} -> {v.ref}")
    console.print("metrics: " + ", ".join(f"{k}={m:.4f}" for k, m in v.metrics.items()))
    if sig.get("classes"):
        console.print(f"classes: {sig['classes']}")
    table(
        "signature",
        ["feature", "type", "kind", "categories"],
        [
            [f["name"], f["type"], f["kind"], ", ".join(f.get("categories", [])[:8])]
            for f in sig["features"]
        ],
    )


@models.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="production", show_default=True)
@click.pass_context
def models_promote(ctx: click.Context, name: str, version: int, alias: str) -> None:
    """Point NAME@ALIAS at VERSION (servers pick it up within a second)."""
    event = _ws(ctx).promote(name, version, alias=alias)
    before = f"(was {event.from_version})" if event.from_version else "(new alias)"
    console.print(f"{name}@{alias} -> version {event.to_version} {before}")


@click.command()
@click.argument("refs", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=int, help="Worker processes (default: one per core).")
@click.option("--access-log", is_flag=True, help="Log one JSON line per request.")
@click.option(
    "--no-prediction-log", is_flag=True, help="Do not record requests in the prediction log."
)
@click.option(
    "--unseen",
    type=click.Choice(["unknown", "reject"]),
    default="unknown",
    show_default=True,
    help="A category not seen in training: treat it as unknown, or reject the request.",
)
@click.option(
    "--cache",
    "cache_size",
    default=0,
    show_default=True,
    help="Answers to keep for repeated requests.",
)
@click.option(
    "--canary",
    "canaries",
    multiple=True,
    help="Send a share of traffic to a challenger: loans@production=loans@staging:10",
)
@click.option(
    "--shadow",
    "shadows",
    multiple=True,
    help="Mirror traffic to a version: loans@production=loans@7",
)
@click.option("--require-token", is_flag=True, help="Require API tokens (always on off loopback).")
@click.option("--certfile", type=click.Path(dir_okay=False), help="TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.pass_context
def serve(
    ctx: click.Context,
    refs: tuple[str, ...],
    host: str,
    port: int,
    workers: int | None,
    access_log: bool,
    no_prediction_log: bool,
    unseen: str,
    cache_size: int,
    canaries: tuple[str, ...],
    shadows: tuple[str, ...],
    require_token: bool,
    certfile: str | None,
    keyfile: str | None,
) -> None:
    """Serve every model with an alias, plus REFS (NAME@VERSION), over HTTP."""
    from mlscale.serve.server import serve as run_server

    ws = _ws(ctx)
    scheme = "https" if certfile else "http"
    console.print(f"serving on {scheme}://{host}:{port}  (POST /v1/models/NAME@ALIAS/predict)")
    run_server(
        ws, list(refs), host=host, port=port, workers=workers, access_log=access_log,
        log_predictions=not no_prediction_log, unseen=unseen, cache_size=cache_size,
        canaries=list(canaries), shadows=list(shadows),
        require_token=require_token,
        certfile=certfile,
        keyfile=keyfile,
    )  # fmt: skip


@click.command()
@click.argument("model")
@click.argument("input_file", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def predict(ctx: click.Context, model: str, input_file: Path, output: Path) -> None:
    """Score INPUT (CSV or Parquet) with MODEL into OUTPUT (Parquet), in batches."""
    ws = _ws(ctx)
    with progress(f"scoring {input_file.name}") as update:
        result = ws.predict(model, input_file, output, on_progress=update)
    console.print(f"scored {result['rows']:,} rows with {result['model']} -> {result['output']}")


@click.command()
@click.argument("model")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 3 if any feature drifted.")
@click.pass_context
def drift(ctx: click.Context, model: str, file: Path, as_json: bool, fail_on_drift: bool) -> None:
    """Per-feature drift of FILE against MODEL's training profile."""
    report = _ws(ctx).drift(model, file)
    if as_json:
        print_json(report.to_dict())
    else:
        colour = {"stable": "green", "warning": "yellow", "drift": "bold red"}
        table(
            f"drift of {file.name} ({report.rows:,} rows) vs the training data of {report.model}",
            ["feature", "kind", "method", "score", "PSI", "JS", "missing ref->now", "verdict"],
            [
                [
                    f.feature,
                    f.kind,
                    f.method,
                    f"{f.score:.3f}",
                    f"{f.psi:.3f}",
                    f"{f.js:.3f}",
                    f"{f.reference_missing:.1%} -> {f.current_missing:.1%}",
                    f"[{colour[f.verdict]}]{f.verdict}[/]",
                ]
                for f in report.features
            ],
        )
        console.print(
            f"{len(report.drifted)} of {len(report.features)} features drifted"
            + (f": {', '.join(report.drifted)}" if report.drifted else "")
            + " (PSI >= 0.2 numeric, Jensen-Shannon >= 0.1 categorical)"
        )
        if report.rows_unreadable:
            console.print(f"{report.rows_unreadable:,} rows with unreadable values were skipped")
    if fail_on_drift and report.drifted:
        raise SystemExit(3)


@click.command()
@click.argument("directory", default="mlscale-quickstart", type=click.Path(file_okay=False))
@click.option("--rows", default=20_000, show_default=True, help="Rows of synthetic loan data.")
@click.option("--port", default=0, help="Server port (default: a free one).")
def quickstart(directory: str, rows: int, port: int) -> None:
    """Generate loan data, then ingest, train, promote, serve, score and check drift."""
    from mlscale.quickstart.walkthrough import run

    run(Path(directory), rows=rows, port=port)


ALL = [init, train, models, serve, predict, drift, quickstart]
