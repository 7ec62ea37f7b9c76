"""``--backend`` and ``--address``, the same on every command that can run on Ray."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mlscale.compute import BACKENDS

_DEFAULT = "default: [compute] backend in mlscale.toml or $MLSCALE_BACKEND, else local"


def backend_option(what: str) -> Callable[[Any], Any]:
    """``--backend local|ray``; ``what`` says what ray does for this command."""
    return click.option("--backend", type=click.Choice(BACKENDS), help=f"ray: {what} ({_DEFAULT}).")


address_option = click.option(
    "--address",
    help="Ray cluster address, e.g. 127.0.0.1:6379 (default: [compute] ray_address or "
    "$MLSCALE_RAY_ADDRESS, else Ray started here).",
)
