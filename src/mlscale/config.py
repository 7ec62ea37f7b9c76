"""Workspace configuration: ``mlscale.toml`` with ``MLSCALE_*`` environment overrides."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mlscale.errors import ConfigError

CONFIG_FILE = "mlscale.toml"
STATE_DIR = ".mlscale"

DEFAULT_CONFIG = """\
# mlscale workspace configuration. Environment variables override these settings:
# MLSCALE_DB_URL, MLSCALE_ARTIFACTS.

[store]
# Metadata database: SQLite in .mlscale/ by default, or a PostgreSQL URL such as
# "postgresql://user@host:5432/mlscale".
# db_url = "sqlite:///.mlscale/metadata.db"

# Artifact store: a local folder (relative to the workspace) or an fsspec URL such as "s3://bucket/mlscale".
# artifacts = ".mlscale/artifacts"
"""


@dataclass(frozen=True)
class Config:
    """Resolved settings of one workspace."""

    root: Path
    db_url: str
    artifacts: str

    @classmethod
    def load(cls, root: Path) -> Config:
        path = root / CONFIG_FILE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        store = data.get("store", {})
        if not isinstance(store, dict):
            raise ConfigError(f"{path}: [store] must be a table")
        db_url = os.environ.get("MLSCALE_DB_URL") or store.get("db_url")
        artifacts = os.environ.get("MLSCALE_ARTIFACTS") or store.get("artifacts")
        return cls(
            root=root,
            db_url=_resolve_db_url(root, db_url),
            artifacts=_resolve_artifacts(root, artifacts),
        )


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
