"""Where a study lives: beside the workspace's metadata, so an interrupted run resumes.

- A PostgreSQL workspace keeps its studies in the same database, in a schema of their own
  (``optuna``), through Optuna's ``RDBStorage``. Workers on other machines reach it as they reach
  the metadata.
- A SQLite workspace keeps one Optuna journal file per study in ``.mlscale/studies/``.

Why not Optuna's tables in the workspace's SQLite file: Optuna migrates its schema with Alembic
and keeps its revision in ``alembic_version``, the table mlscale's own migrations use; in one file
they clash (Optuna refuses to start: "no longer compatible with the table schema"). And SQLite as
Optuna's storage for parallel workers, even in a file of its own, is slow and fragile: four
processes running 100 trials of 20 reports each took 126 s on SQLite against 34 s on a journal
file, and in one of two runs a worker died on a lock. The journal file is an append-only log
written under a file lock, which is what several local processes need.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlscale.config import STATE_DIR

if TYPE_CHECKING:
    import optuna

    from mlscale.workspace import Workspace

#: The PostgreSQL schema that holds Optuna's tables in a PostgreSQL workspace.
PG_SCHEMA = "optuna"
STUDIES_DIR = "studies"


@dataclass(frozen=True)
class StudyStorage:
    """Where one study is stored; plain data, so worker processes can open it themselves."""

    kind: str  # "journal" | "rdb"
    location: str  # the journal file, or the database URL

    def open(self, *, create: bool = False) -> optuna.storages.BaseStorage:
        """Optuna's storage object; ``create`` (once, before any worker starts) makes the
        PostgreSQL schema if it is missing."""
        import optuna

        if self.kind == "journal":
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(self.location))
        if create:
            _create_schema(self.location)
        return optuna.storages.RDBStorage(
            self.location,
            engine_kwargs={
                "connect_args": {"options": f"-csearch_path={PG_SCHEMA}", "connect_timeout": 5}
            },
        )

    def describe(self) -> str:
        """Where the study is, for people: the file, or the database without its password."""
        if self.kind == "journal":
            return self.location
        import sqlalchemy as sa

        url = sa.make_url(self.location).render_as_string(hide_password=True)
        return f"{url} (schema {PG_SCHEMA})"


def study_storage(ws: Workspace, study: str) -> StudyStorage:
    """The storage of ``study`` in workspace ``ws``.

    >>> import tempfile
    >>> from mlscale.workspace import Workspace
    >>> ws = Workspace.init(tempfile.mkdtemp())
    >>> study_storage(ws, "lightgbm-loans@1-default").location.endswith(
    ...     ".mlscale/studies/lightgbm-loans@1-default.journal")
    True
    """
    url = ws.config.db_url
    if url.startswith(("postgresql://", "postgresql+psycopg://")):
        return StudyStorage("rdb", "postgresql+psycopg://" + url.split("://", 1)[1])
    folder = ws.root / STATE_DIR / STUDIES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return StudyStorage("journal", str(folder / f"{_file_name(study)}.journal"))


def _file_name(study: str) -> str:
    """A safe file name for a study name; a hash keeps two names that differ in odd characters
    apart.

    >>> _file_name("loans-tuning")
    'loans-tuning'
    >>> _file_name("a/b")[:4]
    'a_b-'
    """
    safe = re.sub(r"[^A-Za-z0-9_.@=-]+", "_", study)[:100]
    if safe == study:
        return safe
    return f"{safe}-{hashlib.sha256(study.encode()).hexdigest()[:8]}"


def _create_schema(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
    finally:
        engine.dispose()
