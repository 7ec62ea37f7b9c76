"""Workspace configuration: ``mlscale.toml`` with ``MLSCALE_*`` environment overrides."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlscale.compute import BACKENDS
from mlscale.errors import ConfigError

CONFIG_FILE = "mlscale.toml"
STATE_DIR = ".mlscale"

DEFAULT_CONFIG = """\
# mlscale workspace configuration. Environment variables override these settings:
# MLSCALE_DB_URL, MLSCALE_ARTIFACTS, MLSCALE_BACKEND, MLSCALE_RAY_ADDRESS.

[store]
# Metadata database: SQLite in .mlscale/ by default, or a PostgreSQL URL such as
# "postgresql://user@host:5432/mlscale".
# db_url = "sqlite:///.mlscale/metadata.db"

# Artifact store: a local folder (relative to the workspace) or an fsspec URL such as "s3://bucket/mlscale".
# artifacts = ".mlscale/artifacts"

[compute]
# Where train, tune and predict run when no --backend is given: "local" (this machine) or
# "ray" (Ray Train, Ray Tune workers, Ray Data).
# backend = "local"

# The Ray cluster to join with the ray backend (HOST:PORT or ray://HOST:PORT); without one,
# Ray is started on this machine.
# ray_address = "127.0.0.1:6379"
"""


@dataclass(frozen=True)
class Config:
    """Resolved settings of one workspace."""

    root: Path
    db_url: str
    artifacts: str
    backend: str = "local"
    ray_address: str | None = None

    @classmethod
    def load(cls, root: Path) -> Config:
        path = root / CONFIG_FILE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        store, compute = _table(data, "store", path), _table(data, "compute", path)
        db_url = os.environ.get("MLSCALE_DB_URL") or store.get("db_url")
        artifacts = os.environ.get("MLSCALE_ARTIFACTS") or store.get("artifacts")
        return cls(
            root=root,
            db_url=_resolve_db_url(root, db_url),
            artifacts=_resolve_artifacts(root, artifacts),
            backend=_backend(compute, path),
            ray_address=os.environ.get("MLSCALE_RAY_ADDRESS") or compute.get("ray_address"),
        )


def _table(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return table


def _backend(compute: dict[str, Any], path: Path) -> str:
    """``$MLSCALE_BACKEND``, else ``[compute] backend``, else local; named where it was set."""
    if os.environ.get("MLSCALE_BACKEND"):
        backend, where = os.environ["MLSCALE_BACKEND"], "MLSCALE_BACKEND"
    else:
        backend, where = compute.get("backend", "local"), f"{path}: [compute] backend"
    if backend not in BACKENDS:
        raise ConfigError(f"{where} is {backend!r}; expected one of {', '.join(BACKENDS)}")
    return backend


def _resolve_db_url(root: Path, url: str | None) -> str:
    if not url:
        return f"sqlite:///{root / STATE_DIR / 'metadata.db'}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # A relative SQLite path is relative to the workspace, not to the current directory.
        return f"sqlite:///{root / url.removeprefix('sqlite:///')}"
    return url


def _resolve_artifacts(root: Path, location: str | None) -> str:
    if not location:
        return str(root / STATE_DIR / "artifacts")
    if "://" in location:
        return location
    return str((root / location).resolve())
