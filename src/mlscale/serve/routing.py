"""Traffic rules per model: a canary share to a challenger, and shadow copies to another version.

A canary sends ``percent`` of the requests for ``name@alias`` to a challenger reference and
returns its answer (the response names the version that answered). With a routing key (header
``X-Routing-Key``) the choice is sticky: the same key always lands on the same side. A shadow
receives a copy of every request on a bounded side queue; its answers go to the prediction log
only, and when the queue is full the copy is dropped rather than slowing the real answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from mlscale.errors import UserError
from mlscale.refs import Ref

log = logging.getLogger("mlscale.serve")


@dataclass(frozen=True)
class Rule:
    """Traffic rule for requests to ``source`` (``name@alias``)."""

    source: str
    canary: str | None = None
    percent: float = 0.0
    shadow: str | None = None

    def pick(self, key: str | None) -> str:
        """The reference that answers: the canary for ``percent`` of requests, else the source."""
        if self.canary is None or self.percent <= 0:
            return self.source
        if key is None:
            draw = random.random() * 100
        else:  # sticky: a stable hash of the key, not Python's per-process one
            draw = (
                int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest()) % 10_000 / 100
            )
        return self.canary if draw < self.percent else self.source


def parse_rules(canaries: list[str], shadows: list[str]) -> dict[str, Rule]:
    """``--canary name@production=name@staging:10`` and ``--shadow name@production=name@7``."""
    rules: dict[str, dict[str, Any]] = {}
    for text in canaries:
        source, target, percent = _split(text, "--canary", with_percent=True)
        rules.setdefault(source, {}).update(canary=target, percent=percent)
    for text in shadows:
        source, target, _ = _split(text, "--shadow", with_percent=False)
        rules.setdefault(source, {}).update(shadow=target)
    return {source: Rule(source, **kw) for source, kw in rules.items()}


def _split(text: str, option: str, *, with_percent: bool) -> tuple[str, str, float]:
    example = "loans@production=loans@staging" + (":10" if with_percent else "")
    source, sep, target = text.partition("=")
    percent = 0.0
    if with_percent:
        target, colon, share = target.rpartition(":")
        if not colon:
            raise UserError(f"{option} {text!r}: expected SOURCE=TARGET:PERCENT, e.g. {example}")
        try:
            percent = float(share)
        except ValueError:
            raise UserError(f"{option} {text!r}: {share!r} is not a percentage") from None
        if not 0 <= percent <= 100:
            raise UserError(f"{option} {text!r}: the percentage must be between 0 and 100")
    if not sep or not source or not target:
        raise UserError(f"{option} {text!r}: expected SOURCE=TARGET, e.g. {example}")
    for ref in (source, target):
        Ref.parse(ref)
    if Ref.parse(source).name != Ref.parse(target).name:
        raise UserError(f"{option} {text!r}: both sides must be versions of the same model")
    return str(Ref.parse(source)), str(Ref.parse(target)), percent


@dataclass
class ShadowQueue:
    """A bounded side queue; full means the copy is dropped (counted), never awaited."""

    size: int = 256
    dropped: int = 0
    _queue: asyncio.Queue[tuple[Any, ...]] | None = field(default=None, init=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def offer(self, work: tuple[Any, ...], handler: Any) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue(maxsize=self.size)
            self._task = loop.create_task(self._run(self._queue, handler))
        assert self._queue is not None
        try:
            self._queue.put_nowait(work)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self, queue: asyncio.Queue[tuple[Any, ...]], handler: Any) -> None:
        while True:
            work = await queue.get()
            try:
                await handler(*work)
            except Exception:  # a failing shadow must never affect serving
                log.exception("shadow prediction failed")
            await asyncio.sleep(0)  # let real requests go first
