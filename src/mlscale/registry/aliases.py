"""Alias moves: who makes them, where an alias points now, and the record of every move."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

from mlscale.errors import NotFoundError
from mlscale.refs import Ref
from mlscale.store.records import AliasEvent, ModelVersion

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


def current_actor() -> str:
    """``$MLSCALE_USER``, else the operating system's user name (``unknown`` if it has none).

    >>> current_actor() != ""
    True
    """
    if os.environ.get("MLSCALE_USER"):
        return os.environ["MLSCALE_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return "unknown"


def holder(ws: Workspace, name: str, alias: str) -> ModelVersion | None:
    """The version ``name@alias`` points at now; None if the alias does not exist (yet)."""
    try:
        return ws.metadata.get_model_version(Ref(name, alias=alias))
    except NotFoundError:
        return None


def history(ws: Workspace, name: str, *, alias: str | None = None) -> list[AliasEvent]:
    """Every move of model ``name``'s aliases (or of one alias), oldest first.

    NotFoundError names the models that exist when ``name`` is not one of them.
    """
    ws.metadata.get_model_version(Ref(name, alias="latest"))  # a clear error for a typo
    moves = ws.metadata.alias_history(name)
    return [e for e in moves if e.alias == alias] if alias is not None else moves


def describe_move(event: AliasEvent) -> str:
    """``production: 1 -> 2``, with ``none`` for a created or removed alias.

    >>> from datetime import datetime, UTC
    >>> describe_move(AliasEvent("loans", "production", None, 1, datetime.now(UTC)))
    'loans@production: none -> 1'
    """
    return f"{event.model}@{event.alias}: {_version(event.from_version)} -> {_version(event.to_version)}"


def _version(v: int | None) -> str:
    return "none" if v is None else str(v)
