"""Undo an alias's last move; the undo is itself a recorded move, so it can be undone too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlscale.errors import UserError
from mlscale.registry.aliases import current_actor, describe_move, history, holder
from mlscale.store.metadata import check_alias
from mlscale.store.records import AliasEvent

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


def rollback(
    ws: Workspace,
    name: str,
    alias: str = "production",
    *,
    actor: str | None = None,
    reason: str | None = None,
) -> AliasEvent:
    """Move ``name@alias`` back to where it was before its last move.

    If that move created the alias, the rollback removes it; if it removed the alias, the
    rollback restores it. Rolling back twice returns to where the alias was before the first.
    """
    check_alias(alias)
    everything = history(ws, name)
    moves = [e for e in everything if e.alias == alias]
    if not moves:
        others = sorted({e.alias for e in everything})
        found = f"aliases with a history: {', '.join(others)}" if others else "no alias moves yet"
        raise UserError(
            f"{name}@{alias} has never been moved, so there is nothing to roll back ({found})"
        )
    last = moves[-1]
    now = holder(ws, name, alias)
    current = now.version if now is not None else None
    if current != last.to_version:
        # Only a move made while this one was being decided can get here.
        points = f"version {current}" if current is not None else "nothing"
        raise UserError(
            f"{name}@{alias} points at {points}, but its last recorded move was "
            f"{describe_move(last)}: it moved meanwhile; look at the history and try again"
        )
    undo = f"rollback of {describe_move(last)} made {last.at:%Y-%m-%d %H:%M:%S} UTC"
    note = f"{reason}; {undo}" if reason else undo
    who = actor or current_actor()
    if last.from_version is None:
        return ws.metadata.remove_alias(name, alias, actor=who, reason=note)
    return ws.metadata.set_alias(name, alias, last.from_version, actor=who, reason=note)
