"""Which model versions a server serves, loaded once and found by ``name@version|alias``."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from mlscale.errors import NotFoundError
from mlscale.models.predictor import Predictor
from mlscale.refs import Ref
from mlscale.serve.batching import Batcher

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

ALIAS_TTL_S = 1.0  # how stale an alias may be: a promoted version is served within a second


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
        self._aliases: dict[tuple[str, str], tuple[float, int]] = {}
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
        ref = Ref.parse(text)
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
        cached = self._aliases.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ALIAS_TTL_S:
            return cached[1]
        version = self.ws.metadata.get_model_version(ref).version
        self._aliases[key] = (now, version)
        return version

    def batcher(self, predictor: Predictor) -> Batcher:
        """The micro-batcher of a loaded version (created on first use, on the running loop)."""
        key = (predictor.version.name, predictor.version.version)
        batcher = self._batchers.get(key)
        if batcher is None:
            batcher = self._batchers[key] = Batcher(predictor, **self.batching)
        return batcher

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()

    def loaded(self) -> list[str]:
        return [f"{name}@{version}" for name, version in sorted(self._predictors)]
