"""API token commands: ``tokens create|list|revoke`` (the tokens the model server accepts)."""

from __future__ import annotations

from typing import Any

import click

from mlscale.cli.output import console, err_console, print_json, table
from mlscale.store.metadata import TOKEN_ROLES
from mlscale.store.records import TokenRecord
from mlscale.workspace import Workspace


def _ws(ctx: click.Context) -> Workspace:
    return Workspace.open(ctx.obj.get("workspace"))


def _when(t: Any) -> str:
    return "" if t is None else t.strftime("%Y-%m-%d %H:%M")


def _token_dict(t: TokenRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "role": t.role,
        "created_at": t.created_at.isoformat(),
        "revoked_at": t.revoked_at and t.revoked_at.isoformat(),
        "last4": t.last4,
    }


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens for the model server.

    \b
    A token's role says what it may do:
      predict  predict/infer, model metadata and health
      admin    everything, /metrics included
    """


@tokens.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(TOKEN_ROLES), default="predict", show_default=True, help="Its role."
)
@click.option("--json", "as_json", is_flag=True, help="Print the token and its secret as JSON.")
@click.pass_context
def tokens_create(ctx: click.Context, name: str, role: str, as_json: bool) -> None:
    """Create a token NAME and print its secret, shown this once only."""
    token, secret = _ws(ctx).metadata.create_token(name, role)
    if as_json:
        print_json({**_token_dict(token), "secret": secret})
        return
    # The secret alone on stdout, so `mlscale tokens create ci > ci.token` captures just it.
    err_console.print(f"created token [bold]{token.name}[/bold] (role {token.role})")
    click.echo(secret)
    # Only its hash is stored.
    err_console.print("[yellow]warning:[/yellow] copy this secret now; it cannot be shown again")


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tokens_list(ctx: click.Context, as_json: bool) -> None:
    """Every token, revoked ones included, oldest first."""
    found = _ws(ctx).metadata.list_tokens()
    if as_json:
        print_json([_token_dict(t) for t in found])
        return
    if not found:
        console.print("no API tokens yet: mlscale tokens create NAME --role predict")
        return
    table(
        None,
        ["name", "role", "created", "revoked", "last 4"],
        [[t.name, t.role, _when(t.created_at), _when(t.revoked_at), t.last4] for t in found],
    )


@tokens.command("revoke")
@click.argument("name")
@click.pass_context
def tokens_revoke(ctx: click.Context, name: str) -> None:
    """Revoke the active token NAME (or the token with id NAME)."""
    from mlscale.serve.auth import CACHE_SECONDS

    token = _ws(ctx).metadata.revoke_token(name)
    console.print(
        f"revoked token {token.name} (role {token.role}, ending {token.last4}); "
        f"running servers refuse it within {CACHE_SECONDS:g} s"
    )


ALL = [tokens]
