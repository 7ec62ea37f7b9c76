"""The ``mlscale`` command: parse, call the Python API, print. Nothing else lives here."""

from __future__ import annotations

import sys

import click

from mlscale.cli import (
    commands,
    dashboard,
    data,
    models,
    monitor,
    retrain,
    runs,
    tokens,
    train,
    tune,
)
from mlscale.errors import MlscaleError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    "-w",
    envvar="MLSCALE_WORKSPACE",
    type=click.Path(file_okay=False),
    help="Workspace folder (default: the nearest folder with mlscale.toml, from the current one up).",
)
@click.version_option(package_name="mlscale")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None) -> None:
    """mlscale: tabular ML from a file to a monitored production service.

    \b
    Start with:   mlscale quickstart
    Or step by step:
      mlscale init
      mlscale ingest loans.csv --name loans
      mlscale train loans@latest --target default
      mlscale models promote loans 1 --alias production
      mlscale serve
    """
    ctx.obj = {"workspace": workspace}


for command in [
    *data.ALL,
    *train.ALL,
    *tune.ALL,
    *runs.ALL,
    *commands.ALL,
    *models.ALL,
    *tokens.ALL,
    *monitor.ALL,
    *dashboard.ALL,
    *retrain.ALL,
]:
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print ``error: ...`` and exit 2; failures exit 1."""
    try:
        cli.main(args=argv, prog_name="mlscale", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except MlscaleError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
