"""Plain records the metadata store hands out. JSON-able fields are plain dicts and lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset: ``name@version``."""

    name: str
    version: int
    content_hash: str  # sha256 over the schema and the part hashes: equal content, equal hash
    num_rows: int
    num_quarantined: int
    schema: dict[str, Any]  # {"columns": [{"name", "type", "nullable"}, ...]}
    parts: list[str]  # artifact sha256 of each Parquet part, in order
    quarantine: list[str]  # artifact sha256 of each quarantine Parquet part
    profile_sha: str  # artifact sha256 of the profile JSON
    source: dict[str, Any]  # {"uri", "format", "bytes", ...}
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Run:
    """One training or tuning execution (a tuning trial has its study's run as parent)."""

    id: str
    kind: str  # "train" | "tune" | "trial"
    status: str  # "running" | "finished" | "failed"
    params: dict[str, Any]
    metrics: dict[str, float]
    dataset: str | None  # "name@version"
    env: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    error: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> artifact sha256
    parent_id: str | None = None  # the tuning study run a trial belongs to


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version: ``name@version``, with everything needed to serve it."""

    name: str
    version: int
    flavor: str  # "lightgbm" | "logistic" ...
    artifact_sha: str  # the model file in the library's own format
    signature: dict[str, Any]
    metrics: dict[str, float]
    profile_sha: str  # training profile: the reference for drift
    run_id: str | None
    dataset: str | None  # "name@version"
    created_at: datetime
    aliases: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias (kept forever, so a move can be audited and undone)."""

    model: str
    alias: str
    from_version: int | None
    to_version: int | None  # None: the alias was removed
    at: datetime
    actor: str | None = None  # who moved it (user name, "retrain", ...)
    reason: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """One API token for the model server; the secret itself is never stored, only its hash."""

    id: str
    name: str
    role: str  # "predict" | "admin"
    created_at: datetime
    revoked_at: datetime | None
    last4: str  # the secret's last 4 characters, so a person can tell tokens apart

    @property
    def active(self) -> bool:
        return self.revoked_at is None
