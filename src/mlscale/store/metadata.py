"""The metadata store contract: datasets, runs, model versions, aliases and API tokens.

The rules live here once; :mod:`mlscale.store.sql` implements them on SQLAlchemy for SQLite and
PostgreSQL. Every backend must pass ``tests/store/test_metadata_contract.py`` and
``tests/store/test_tokens_contract.py``.

API tokens are ``mls_`` followed by 32 random bytes (urlsafe base64); a store keeps only their
SHA-256 (:func:`token_hash`). A slow password hash (bcrypt, scrypt, argon2) exists to make guessing
*low-entropy* passwords expensive; a 256-bit random secret cannot be guessed, so it gains nothing
there, while the server verifies a token on every request and must stay fast. Nor is a pepper
needed: a stolen hash cannot be reversed to a 256-bit secret either way.
"""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from typing import Any

from mlscale.errors import UserError
from mlscale.refs import Ref, check_name
from mlscale.store.records import AliasEvent, DatasetVersion, ModelVersion, Run, TokenRecord

#: What each role may do on the model server: ``predict`` calls predict/infer and reads model
#: metadata and health; ``admin`` may do everything, ``/metrics`` included.
TOKEN_ROLES = ("predict", "admin")
TOKEN_PREFIX = "mls_"
_TOKEN_BYTES = 32


def new_token_secret() -> str:
    """A new random API token secret.

    >>> secret = new_token_secret()
    >>> secret.startswith("mls_"), len(secret)
    (True, 47)
    """
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def token_hash(secret: str) -> str:
    """The SHA-256 (hex) of a token secret: all a store keeps of it.

    >>> token_hash("mls_example")[:16]
    'fbfbcfe737da87c8'
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_role(role: str) -> str:
    """Return ``role`` if it is one of :data:`TOKEN_ROLES`, else raise a UserError listing them.

    >>> check_role("admin")
    'admin'
    """
    if role not in TOKEN_ROLES:
        raise UserError(f"unknown token role {role!r}: expected one of {', '.join(TOKEN_ROLES)}")
    return role


def check_alias(alias: str) -> str:
    """Return ``alias`` if it may be set or removed; ``latest`` is reserved for the newest version.

    >>> check_alias("production")
    'production'
    """
    check_name(alias, "alias")
    if alias == "latest":
        raise UserError(
            "alias 'latest' is reserved: it always means the highest version; "
            "choose another name, such as 'production' or 'staging'"
        )
    return alias


class BaseMetadataStore(ABC):
    """Where every dataset version, run and model version is recorded.

    Versions are numbered per name from 1, with no gaps, safely under concurrent writers.
    """

    # -- datasets ---------------------------------------------------------------------------
    @abstractmethod
    def add_dataset_version(
        self,
        name: str,
        *,
        content_hash: str,
        num_rows: int,
        num_quarantined: int,
        schema: dict[str, Any],
        parts: list[str],
        quarantine: list[str],
        profile_sha: str,
        source: dict[str, Any],
    ) -> tuple[DatasetVersion, bool]:
        """Record a version; if ``name`` already has one with ``content_hash``, return that one.

        Returns ``(version, created)``.
        """

    @abstractmethod
    def get_dataset_version(self, ref: Ref) -> DatasetVersion:
        """``name@3`` or ``name@latest``; raises NotFoundError naming what exists."""

    @abstractmethod
    def list_datasets(self) -> list[DatasetVersion]:
        """The latest version of every dataset, by name."""

    @abstractmethod
    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of one dataset, oldest first."""

    # -- runs -------------------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        kind: str,
        *,
        params: dict[str, Any],
        dataset: str | None,
        parent_id: str | None = None,
    ) -> Run: ...

    @abstractmethod
    def log_run_artifact(self, run_id: str, name: str, sha: str) -> Run:
        """Attach artifact ``sha`` to the run under ``name`` (replacing one of the same name)."""

    @abstractmethod
    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        metrics: dict[str, float],
        env: dict[str, Any],
        error: str | None = None,
    ) -> Run: ...

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def list_runs(
        self, limit: int = 50, *, kind: str | None = None, parent_id: str | None = None
    ) -> list[Run]:
        """Newest first; optionally only one kind, or only the trials of one study run."""

    # -- models -----------------------------------------------------------------------------
    @abstractmethod
    def add_model_version(
        self,
        name: str,
        *,
        flavor: str,
        artifact_sha: str,
        signature: dict[str, Any],
        metrics: dict[str, float],
        profile_sha: str,
        run_id: str | None,
        dataset: str | None,
    ) -> ModelVersion: ...

    @abstractmethod
    def get_model_version(self, ref: Ref) -> ModelVersion:
        """``name@3``, ``name@production`` or ``name@latest``; NotFoundError names what exists."""

    @abstractmethod
    def list_models(self) -> list[ModelVersion]:
        """The latest version of every model, by name."""

    @abstractmethod
    def list_model_versions(self, name: str) -> list[ModelVersion]: ...

    @abstractmethod
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> AliasEvent:
        """Point ``name@alias`` at ``version`` (which must exist); ``latest`` is reserved.

        The move is recorded with who made it and why (:meth:`alias_history`).
        """

    @abstractmethod
    def remove_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str | None = None
    ) -> AliasEvent:
        """Delete ``name@alias`` (which must exist), recorded as a move to ``to_version=None``.

        NotFoundError names the aliases that do exist; ``latest`` is reserved.
        """

    @abstractmethod
    def alias_history(self, name: str) -> list[AliasEvent]:
        """Every move of every alias of one model, oldest first; empty for an unknown name."""

    # -- API tokens -------------------------------------------------------------------------
    @abstractmethod
    def create_token(self, name: str, role: str) -> tuple[TokenRecord, str]:
        """Create a token; returns ``(record, secret)``. The secret cannot be read back later.

        ``role`` must be in :data:`TOKEN_ROLES`; ``name`` must not belong to an active token
        (a revoked token's name may be reused). Only :func:`token_hash` of the secret is stored.
        """

    @abstractmethod
    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included, oldest first."""

    @abstractmethod
    def revoke_token(self, name_or_id: str) -> TokenRecord:
        """Revoke the active token with this name, or the token with this id.

        NotFoundError names the active tokens; revoking a revoked token is a UserError.
        """

    @abstractmethod
    def verify_token(self, secret: str) -> TokenRecord | None:
        """The active token whose secret this is; None for an unknown or revoked one."""
