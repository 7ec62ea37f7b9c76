"""The metadata store contract: datasets, runs, model versions and aliases.

The rules live here once; :mod:`mlscale.store.sql` implements them on SQLAlchemy for SQLite and
PostgreSQL. Every backend must pass ``tests/store/test_metadata_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from mlscale.refs import Ref
from mlscale.store.records import AliasEvent, DatasetVersion, ModelVersion, Run


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
    def create_run(self, kind: str, *, params: dict[str, Any], dataset: str | None) -> Run: ...

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
    def list_runs(self, limit: int = 50) -> list[Run]:
        """Newest first."""

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
    def set_alias(self, name: str, alias: str, version: int) -> AliasEvent:
        """Point ``name@alias`` at ``version`` (which must exist); ``latest`` is reserved."""

    @abstractmethod
    def alias_history(self, name: str) -> list[AliasEvent]: ...
