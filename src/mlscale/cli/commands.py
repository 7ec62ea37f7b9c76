"""Every CLI command: one verb each, thin (parse, call :class:`mlscale.Workspace`, print)."""

from __future__ import annotations

from pathlib import Path

import click

from mlscale.cli.compute_options import address_option, backend_option
from mlscale.cli.output import console, print_json, progress, table
from mlscale.workspace import Workspace

# A literal copy of mlscale.models.batch.COMPRESSIONS, so that `mlscale --help` does not import
# pyarrow; a test keeps the two in step.
COMPRESSIONS = ("snappy", "zstd", "lz4", "none")


def _ws(ctx: click.Context) -> Workspace:
    return Workspace.open(ctx.obj.get("workspace"))


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Create a workspace (mlscale.toml and .mlscale/) in DIRECTORY."""
    ws = Workspace.init(directory)
    console.print(f"workspace ready at {ws.root}")


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
    console.print(f"dashboard: {scheme}://{host}:{port}/dashboard  metrics: /metrics")
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
@backend_option("score on Ray Data (same output)")
@address_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes predicting in parallel (local; default 1) or Ray actors (ray).",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default=COMPRESSIONS[0],
    show_default=True,
    help="The output's Parquet codec (zstd: ~30% smaller, a little slower).",
)
@click.pass_context
def predict(
    ctx: click.Context,
    model: str,
    input_file: Path,
    output: Path,
    backend: str | None,
    address: str | None,
    workers: int | None,
    compression: str,
) -> None:
    """Score INPUT (CSV or Parquet) with MODEL into OUTPUT (Parquet), in batches."""
    ws = _ws(ctx)
    options = {"workers": workers} if workers is not None else {}
    with progress(f"scoring {input_file.name}") as update:
        result = ws.predict(
            model,
            input_file,
            output,
            backend=backend,
            address=address,
            compression=compression,
            on_progress=update,
            **options,
        )
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


ALL = [init, serve, predict, drift, quickstart]
