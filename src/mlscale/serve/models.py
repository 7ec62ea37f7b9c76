"""Which model versions a server serves, loaded once and found by ``name@version|alias``.

Aliases are watched in the background: when one moves, the new version is loaded and warmed up
first, then the alias switches in one assignment, so no request waits for a load or fails during
the swap; requests already holding the old version finish on it. A version that fails to load
leaves the previous one serving, and ``errors`` says why. Rollback is moving the alias back.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from mlscale.errors import NotFoundError
from mlscale.models.predictor import Predictor
from mlscale.refs import Ref, cached_ref
from mlscale.serve.batching import Batcher

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

ALIAS_POLL_S = 1.0  # how often aliases are re-read: a promoted version is served within ~1 s
log = logging.getLogger("mlscale.serve")


class ServedModels:
    """Serves every model that has an alias, plus the references named when the server started."""

    def __init__(
        self, ws: Workspace, refs: list[str] | None = None, *, batching: dict | None = None
    ) -> None:
        self.ws = ws
        self.batching = batching or {}
        self._batchers: dict[tuple[str, int], Batcher] = {}
        self._lock = threading.Lock()
        self._predictors: dict[tuple[str, int], Predictor] = {}
        self._aliases: dict[tuple[str, str], int] = {}
        self.errors: dict[str, str] = {}  # "name@alias" -> why its newest version is not served
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        named = [Ref.parse(r) for r in refs or []]
        self.names = sorted(
            {r.name for r in named}
            | {m.name for m in ws.metadata.list_models() if self._has_alias(m.name)}
        )
        for ref in named:  # unknown references fail now, not on the first request
            self.get(str(ref))
        for name in self.names:
            for version in ws.metadata.list_model_versions(name):
                if version.aliases:
                    self.get(f"{name}@{version.version}")

    def _has_alias(self, name: str) -> bool:
        return any(v.aliases for v in self.ws.metadata.list_model_versions(name))

    def get(self, text: str) -> Predictor:
        """The predictor for a reference; NotFoundError for models this server does not serve."""
        ref = cached_ref(text)
        if ref.name not in self.names:
            served = ", ".join(self.names) or "none"
            raise NotFoundError(f"model {ref.name!r} is not served here (served: {served})")
        version = ref.version if ref.version is not None else self._resolve_alias(ref)
        key = (ref.name, version)
        predictor = self._predictors.get(key)
        if predictor is None:
            with self._lock:
                predictor = self._predictors.get(key)
                if predictor is None:
                    model = self.ws.metadata.get_model_version(Ref(ref.name, version=version))
                    predictor = Predictor.load(self.ws, model)
                    self._predictors[key] = predictor
        return predictor

    def _resolve_alias(self, ref: Ref) -> int:
        assert ref.alias is not None
        key = (ref.name, ref.alias)
        version = self._aliases.get(key)
        if version is None:  # first use of this alias: resolve now, then watch it
            version = self.ws.metadata.get_model_version(ref).version
            self._aliases[key] = version
            self._watch()
        return version

    def _watch(self) -> None:
        if self._watcher is None:
            with self._lock:
                if self._watcher is None:
                    self._watcher = threading.Thread(
                        target=self._watch_loop, name="mlscale-aliases", daemon=True
                    )
                    self._watcher.start()

    def _watch_loop(self) -> None:
        while not self._stop.wait(ALIAS_POLL_S):
            for key, current in list(self._aliases.items()):
                try:
                    self._follow(key, current)
                except Exception:  # the watcher must outlive a flaky database
                    log.exception("could not check %s@%s", *key)

    def _follow(self, key: tuple[str, str], current: int) -> None:
        name, alias = key
        try:
            newest = self.ws.metadata.get_model_version(Ref(name, alias=alias)).version
        except NotFoundError:
            return  # the alias was removed: keep serving what it pointed at
        if newest == current:
            return
        ref = f"{name}@{alias}"
        try:
            predictor = self.get(f"{name}@{newest}")
            X = np.full((1, len(predictor.signature.features)), np.nan)
            predictor.predict_matrix(X)  # warm up before any request is sent to it
        except Exception as exc:
            reason = f"version {newest} failed to load ({exc}); still serving version {current}"
            if self.errors.get(ref) != reason:
                log.error("%s: %s", ref, reason)
            self.errors[ref] = reason
            return
        self._aliases[key] = newest  # the switch: one assignment, seen by the next request
        self.errors.pop(ref, None)
        log.info("%s: now version %d (was %d)", ref, newest, current)

    def batcher(self, predictor: Predictor) -> Batcher:
        """The micro-batcher of a loaded version (created on first use, on the running loop)."""
        key = (predictor.version.name, predictor.version.version)
        batcher = self._batchers.get(key)
        if batcher is None:
            batcher = self._batchers[key] = Batcher(predictor, **self.batching)
        return batcher

    def close(self) -> None:
        self._stop.set()
        for batcher in self._batchers.values():
            batcher.close()

    def loaded(self) -> list[str]:
        return [f"{name}@{version}" for name, version in sorted(self._predictors)]
