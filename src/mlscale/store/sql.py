"""The metadata store on SQLAlchemy: SQLite (WAL) by default, PostgreSQL by URL.

Opening a store runs the Alembic migrations in ``migrations/`` up to head
(:mod:`mlscale.store.engine`); the tables in :mod:`mlscale.store.tables` must agree with them
(``tests/store/test_metadata_contract.py`` compares the two).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = SqlMetadataStore(f"sqlite:///{tmp}/metadata.db")
...     run = store.create_run("train", params={"lr": 0.1}, dataset=None)
...     print(store.get_run(run.id).status)
...     store.close()
running
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from datetime import UTC, datetime
from itertools import chain
from typing import Any, NoReturn, TypeVar
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlscale.errors import NotFoundError, UserError
from mlscale.refs import Ref, check_name
from mlscale.store.engine import masked, open_engine, writer
from mlscale.store.metadata import (
    TOKEN_PREFIX,
    BaseMetadataStore,
    check_alias,
    check_role,
    new_token_secret,
    token_hash,
)
from mlscale.store.records import AliasEvent, DatasetVersion, ModelVersion, Run, TokenRecord
from mlscale.store.tables import (
    alias_events,
    aliases,
    api_tokens,
    dataset_versions,
    model_versions,
    runs,
)

T = TypeVar("T")
R = TypeVar("R")

# An attempt fails only when a concurrent writer took the same version number, so up to this many
# concurrent writers on one name all succeed.
_ATTEMPTS = 10
# Far above a real secret (47 characters): anything longer is rejected before it is hashed.
_MAX_SECRET_CHARS = 256


class SqlMetadataStore(BaseMetadataStore):
    """The metadata store on one SQLite file or one PostgreSQL database, migrated on open.

    ``url`` is ``sqlite:///PATH/metadata.db`` or ``postgresql://USER@HOST/DATABASE``. Call
    :meth:`close` when done.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = open_engine(url)
        # On SQLite, writes take the write lock when they begin (see mlscale.store.engine).
        self._writer = writer(self._engine)

    def close(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"SqlMetadataStore({masked(self.url)!r})"

    # -- datasets ---------------------------------------------------------------------------
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
        check_name(name, "dataset name")
        t = dataset_versions

        def add(conn: Connection) -> tuple[DatasetVersion, bool]:
            same = sa.select(t).where(t.c.name == name, t.c.content_hash == content_hash)
            existing = conn.execute(same).one_or_none()
            if existing is not None:
                return _record(DatasetVersion, existing), False
            row = {
                "name": name,
                "version": _next_version(conn, t, name),
                "content_hash": content_hash,
                "num_rows": num_rows,
                "num_quarantined": num_quarantined,
                "schema": schema,
                "parts": parts,
                "quarantine": quarantine,
                "profile_sha": profile_sha,
                "source": source,
                "created_at": _now(),
            }
            conn.execute(t.insert().values(row))
            return _record(DatasetVersion, row), True

        return self._write(add)

    def get_dataset_version(self, ref: Ref) -> DatasetVersion:
        t = dataset_versions
        with self._engine.connect() as conn:
            has_alias = ref.version is None and ref.alias != "latest"
            row = None if has_alias else conn.execute(_pick(t, ref)).one_or_none()
            if row is None:
                self._not_found(conn, t, "dataset", ref)
            return _record(DatasetVersion, row)

    def list_datasets(self) -> list[DatasetVersion]:
        with self._engine.connect() as conn:
            rows = conn.execute(_latest_of_each(dataset_versions))
            return [_record(DatasetVersion, r) for r in rows]

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of one dataset, oldest first; empty for an unknown name."""
        t = dataset_versions
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.name == name).order_by(t.c.version))
            return [_record(DatasetVersion, r) for r in rows]

    # -- runs -------------------------------------------------------------------------------
    def create_run(
        self,
        kind: str,
        *,
        params: dict[str, Any],
        dataset: str | None,
        parent_id: str | None = None,
    ) -> Run:
        row = {
            "id": uuid4().hex,
            "kind": kind,
            "status": "running",
            "params": params,
            "metrics": {},
            "dataset": dataset,
            "env": {},
            "started_at": _now(),
            "ended_at": None,
            "duration_s": None,
            "error": None,
            "artifacts": {},
            "parent_id": parent_id,
        }
        with self._writer.begin() as conn:
            conn.execute(runs.insert().values(row))
        return _record(Run, row)

    def log_run_artifact(self, run_id: str, name: str, sha: str) -> Run:
        """Attach artifact ``sha`` to the run under ``name`` (replacing one of the same name)."""
        this_run = runs.c.id == run_id

        def attach(conn: Connection) -> Run:
            current = conn.scalar(sa.select(runs.c.artifacts).where(this_run))
            if current is None:
                self._run_not_found(conn, run_id)
            conn.execute(runs.update().where(this_run).values(artifacts=current | {name: sha}))
            return _record(Run, conn.execute(sa.select(runs).where(this_run)).one())

        return self._write(attach)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        metrics: dict[str, float],
        env: dict[str, Any],
        error: str | None = None,
    ) -> Run:
        """Record the outcome; ``duration_s`` is the time since :meth:`create_run`."""
        this_run = runs.c.id == run_id
        with self._writer.begin() as conn:
            started_at = conn.scalar(sa.select(runs.c.started_at).where(this_run))
            if started_at is None:
                self._run_not_found(conn, run_id)
            ended_at = _now()
            duration_s = (ended_at - started_at).total_seconds()
            conn.execute(
                runs.update()
                .where(this_run)
                .values(
                    status=status,
                    metrics=metrics,
                    env=env,
                    error=error,
                    ended_at=ended_at,
                    duration_s=duration_s,
                )
            )
            return _record(Run, conn.execute(sa.select(runs).where(this_run)).one())

    def get_run(self, run_id: str) -> Run:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).one_or_none()
            if row is None:
                self._run_not_found(conn, run_id)
            return _record(Run, row)

    def list_runs(
        self, limit: int = 50, *, kind: str | None = None, parent_id: str | None = None
    ) -> list[Run]:
        """Newest first."""
        query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id).limit(limit)
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        if parent_id is not None:
            query = query.where(runs.c.parent_id == parent_id)
        with self._engine.connect() as conn:
            return [_record(Run, r) for r in conn.execute(query)]

    # -- models -----------------------------------------------------------------------------
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
    ) -> ModelVersion:
        check_name(name, "model name")
        t = model_versions

        def add(conn: Connection) -> ModelVersion:
            # Checked first so that an unknown run is a clear error, not a foreign key violation.
            known = sa.select(runs.c.id).where(runs.c.id == run_id)
            if run_id is not None and conn.scalar(known) is None:
                self._run_not_found(conn, run_id)
            row = {
                "name": name,
                "version": _next_version(conn, t, name),
                "flavor": flavor,
                "artifact_sha": artifact_sha,
                "signature": signature,
                "metrics": metrics,
                "profile_sha": profile_sha,
                "run_id": run_id,
                "dataset": dataset,
                "created_at": _now(),
            }
            conn.execute(t.insert().values(row))
            return _record(ModelVersion, row, aliases=[])

        return self._write(add)

    def get_model_version(self, ref: Ref) -> ModelVersion:
        t = model_versions
        if ref.version is None and ref.alias != "latest":
            same = (aliases.c.name == t.c.name) & (aliases.c.version == t.c.version)
            query = sa.select(t).join(aliases, same)
            query = query.where(aliases.c.name == ref.name, aliases.c.alias == ref.alias)
        else:
            query = _pick(t, ref)
        with self._engine.connect() as conn:
            row = conn.execute(query).one_or_none()
            if row is None:
                self._not_found(conn, t, "model", ref)
            return _record(ModelVersion, row, aliases=_aliases(conn, ref.name).get(row.version, []))

    def list_models(self) -> list[ModelVersion]:
        with self._engine.connect() as conn:
            rows = conn.execute(_latest_of_each(model_versions)).all()
            return [
                _record(ModelVersion, r, aliases=_aliases(conn, r.name).get(r.version, []))
                for r in rows
            ]

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of one model, oldest first; empty for an unknown name."""
        t = model_versions
        with self._engine.connect() as conn:
            by_version = _aliases(conn, name)
            rows = conn.execute(sa.select(t).where(t.c.name == name).order_by(t.c.version))
            return [_record(ModelVersion, r, aliases=by_version.get(r.version, [])) for r in rows]

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> AliasEvent:
        """Point ``name@alias`` at ``version`` (which must exist); ``latest`` is reserved."""
        check_alias(alias)
        t = model_versions

        def move(conn: Connection) -> AliasEvent:
            exists = sa.select(t.c.version).where(t.c.name == name, t.c.version == version)
            if conn.scalar(exists) is None:
                self._not_found(conn, t, "model", Ref(name, version=version))
            key = (aliases.c.name == name, aliases.c.alias == alias)
            current = conn.scalar(sa.select(aliases.c.version).where(*key).with_for_update())
            if current is None:
                conn.execute(aliases.insert().values(name=name, alias=alias, version=version))
            else:
                conn.execute(aliases.update().where(*key).values(version=version))
            return _record_move(
                conn, AliasEvent(name, alias, current, version, _now(), actor, reason)
            )

        return self._write(move)

    def remove_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str | None = None
    ) -> AliasEvent:
        """Delete ``name@alias``, recorded as a move to ``to_version=None``."""
        check_alias(alias)

        def remove(conn: Connection) -> AliasEvent:
            key = (aliases.c.name == name, aliases.c.alias == alias)
            current = conn.scalar(sa.select(aliases.c.version).where(*key).with_for_update())
            if current is None:
                self._not_found(conn, model_versions, "model", Ref(name, alias=alias))
            conn.execute(aliases.delete().where(*key))
            return _record_move(conn, AliasEvent(name, alias, current, None, _now(), actor, reason))

        return self._write(remove)

    def alias_history(self, name: str) -> list[AliasEvent]:
        """Every move of every alias of one model, oldest first; empty for an unknown name."""
        e = alias_events
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(e).where(e.c.name == name).order_by(e.c.id))
            return [_record(AliasEvent, r, model=r.name) for r in rows]

    # -- API tokens -------------------------------------------------------------------------
    def create_token(self, name: str, role: str) -> tuple[TokenRecord, str]:
        """Create a token; returns ``(record, secret)``. Only the secret's SHA-256 is stored."""
        check_name(name, "token name")
        check_role(role)
        t = api_tokens
        secret = new_token_secret()

        def add(conn: Connection) -> TokenRecord:
            active = sa.select(t.c.created_at).where(t.c.name == name, t.c.revoked_at.is_(None))
            created_at = conn.scalar(active)
            if created_at is not None:
                raise UserError(
                    f"an active token named {name!r} already exists "
                    f"(created {created_at:%Y-%m-%d %H:%M} UTC): revoke it first or choose "
                    "another name"
                )
            row = {
                "id": uuid4().hex,
                "name": name,
                "role": role,
                "secret_sha256": token_hash(secret),
                "last4": secret[-4:],
                "created_at": _now(),
                "revoked_at": None,
            }
            conn.execute(t.insert().values(row))
            return _record(TokenRecord, row)

        return self._write(add), secret

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included, oldest first."""
        t = api_tokens
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.created_at, t.c.id))
            return [_record(TokenRecord, r) for r in rows]

    def revoke_token(self, name_or_id: str) -> TokenRecord:
        """Revoke the active token with this name, or the token with this id."""
        t = api_tokens
        with self._writer.begin() as conn:
            active = t.c.revoked_at.is_(None)
            row = conn.execute(sa.select(t).where(t.c.name == name_or_id, active)).one_or_none()
            if row is None:
                row = conn.execute(sa.select(t).where(t.c.id == name_or_id)).one_or_none()
            if row is None:
                revoked = sa.select(t).where(t.c.name == name_or_id).order_by(t.c.revoked_at.desc())
                row = conn.execute(revoked.limit(1)).one_or_none()
            if row is None:
                names = conn.scalars(sa.select(t.c.name).where(active).order_by(t.c.name))
                raise NotFoundError(
                    f"no token named {name_or_id!r} ({_listing('active tokens', names)})"
                )
            revoked_at = _now()
            # "still active" in the WHERE clause: of two concurrent revokers, one wins.
            done = conn.execute(
                t.update().where(t.c.id == row.id, active).values(revoked_at=revoked_at)
            )
            if done.rowcount != 1:
                when = row.revoked_at or conn.scalar(
                    sa.select(t.c.revoked_at).where(t.c.id == row.id)
                )
                raise UserError(
                    f"token {row.name!r} (id {row.id}) is already revoked "
                    f"(since {when:%Y-%m-%d %H:%M:%S} UTC)"
                )
            return replace(_record(TokenRecord, row), revoked_at=revoked_at)

    def verify_token(self, secret: str) -> TokenRecord | None:
        """The active token whose secret this is; None for an unknown or revoked one."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > _MAX_SECRET_CHARS:
            return None
        digest = token_hash(secret)
        t = api_tokens
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.secret_sha256 == digest)).one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        # The index matched on the hash already; this constant-time re-check keeps the decision
        # independent of how a database collation compares strings.
        if not hmac.compare_digest(row.secret_sha256, digest):
            return None
        return _record(TokenRecord, row)

    # -- helpers ----------------------------------------------------------------------------
    def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction; again if a concurrent writer took its key first."""
        for _ in range(_ATTEMPTS - 1):
            try:
                with self._writer.begin() as conn:
                    return fn(conn)
            except sa.exc.IntegrityError:
                continue
        with self._writer.begin() as conn:
            return fn(conn)

    @staticmethod
    def _not_found(conn: Connection, t: sa.Table, kind: str, ref: Ref) -> NoReturn:
        """Raise NotFoundError for ``ref``, naming what does exist."""
        versions = list(conn.scalars(sa.select(t.c.version).where(t.c.name == ref.name)))
        if not versions:
            names = conn.scalars(sa.select(t.c.name).distinct().order_by(t.c.name))
            raise NotFoundError(f"no {kind} named {ref.name!r} ({_listing(f'{kind}s', names)})")
        if ref.version is not None:
            what, found = f"version {ref.version}", _listing("versions", sorted(versions))
        elif t is model_versions:
            names = sorted(chain(*_aliases(conn, ref.name).values()))
            what, found = f"alias {ref.alias!r}", _listing("aliases", names)
        else:
            what, found = f"alias {ref.alias!r}", "datasets have only versions and 'latest'"
        raise NotFoundError(f"{kind} {ref.name!r} has no {what} ({found})")

    @staticmethod
    def _run_not_found(conn: Connection, run_id: str) -> NoReturn:
        newest = sa.select(runs.c.id).order_by(runs.c.started_at.desc()).limit(5)
        ids = ", ".join(conn.scalars(newest))
        found = f"newest runs: {ids}" if ids else "no runs yet"
        raise NotFoundError(f"no run with id {run_id!r} ({found})")


# -- queries --------------------------------------------------------------------------------
def _next_version(conn: Connection, t: sa.Table, name: str) -> int:
    return (conn.scalar(sa.select(sa.func.max(t.c.version)).where(t.c.name == name)) or 0) + 1


def _pick(t: sa.Table, ref: Ref) -> sa.Select[Any]:
    """The row of ``name@version`` or ``name@latest``."""
    query = sa.select(t).where(t.c.name == ref.name)
    if ref.version is not None:
        return query.where(t.c.version == ref.version)
    return query.order_by(t.c.version.desc()).limit(1)


def _latest_of_each(t: sa.Table) -> sa.Select[Any]:
    top = sa.select(t.c.name, sa.func.max(t.c.version).label("version")).group_by(t.c.name)
    latest = top.subquery()
    same = (t.c.name == latest.c.name) & (t.c.version == latest.c.version)
    return sa.select(t).join(latest, same).order_by(t.c.name)


def _aliases(conn: Connection, name: str) -> dict[int, list[str]]:
    """The aliases of model ``name`` by version, sorted."""
    query = sa.select(aliases).where(aliases.c.name == name).order_by(aliases.c.alias)
    by_version: dict[int, list[str]] = {}
    for r in conn.execute(query):
        by_version.setdefault(r.version, []).append(r.alias)
    return by_version


def _record_move(conn: Connection, event: AliasEvent) -> AliasEvent:
    """Append ``event`` to the alias audit trail and return it."""
    conn.execute(
        alias_events.insert().values(
            name=event.model,
            alias=event.alias,
            from_version=event.from_version,
            to_version=event.to_version,
            at=event.at,
            actor=event.actor,
            reason=event.reason,
        )
    )
    return event


# -- small things ---------------------------------------------------------------------------
def _record(cls: type[R], row: Any, **extra: Any) -> R:
    """Build ``cls`` from a result row or an inserted dict; ``extra`` gives the other fields."""
    m = row if isinstance(row, dict) else row._mapping
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: m[n] for n in names if n not in extra}, **extra)


def _listing(label: str, items: Iterable[object]) -> str:
    shown = [str(i) for i in items]
    if not shown:
        return f"no {label} yet"
    if len(shown) > 10:
        shown = [*shown[:10], f"... ({len(shown)} in all)"]
    return f"{label}: {', '.join(shown)}"


def _now() -> datetime:
    return datetime.now(UTC)
