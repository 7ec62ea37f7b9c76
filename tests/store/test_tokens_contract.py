"""The API token part of the metadata store contract, on every backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest
import sqlalchemy as sa

from mlscale.errors import NotFoundError, UserError
from mlscale.store.metadata import TOKEN_ROLES
from mlscale.store.sql import SqlMetadataStore


def stored_rows(store: SqlMetadataStore) -> list[dict]:
    """The raw ``api_tokens`` rows, read past the store."""
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.exec_driver_sql("SELECT * FROM api_tokens")]
    finally:
        engine.dispose()


def test_create_returns_the_record_and_a_secret(store: SqlMetadataStore) -> None:
    token, secret = store.create_token("ci", "predict")
    assert secret.startswith("mls_") and len(secret) == 47
    assert (token.name, token.role, token.revoked_at, token.active) == ("ci", "predict", None, True)
    assert token.last4 == secret[-4:]
    assert len(token.id) == 32 and token.created_at.tzinfo is not None
    assert store.list_tokens() == [token]


def test_only_the_hash_of_the_secret_is_stored(store: SqlMetadataStore) -> None:
    _, secret = store.create_token("ci", "admin")
    [row] = stored_rows(store)
    assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(v) for v in row.values())


def test_verify_accepts_the_secret_and_nothing_else(store: SqlMetadataStore) -> None:
    token, secret = store.create_token("ci", "predict")
    other, other_secret = store.create_token("ops", "admin")
    assert secret != other_secret
    assert store.verify_token(secret) == token
    assert store.verify_token(other_secret) == other
    for wrong in ("", "mls_", secret[:-1], secret + "x", secret.upper(), secret[4:], "x" * 10_000):
        assert store.verify_token(wrong) is None


def test_revoked_tokens_no_longer_verify(store: SqlMetadataStore) -> None:
    token, secret = store.create_token("ci", "predict")
    revoked = store.revoke_token("ci")
    assert (revoked.id, revoked.active) == (token.id, False)
    assert revoked.revoked_at is not None and revoked.revoked_at >= token.created_at
    assert store.verify_token(secret) is None
    assert store.list_tokens() == [revoked]


def test_revoke_by_id(store: SqlMetadataStore) -> None:
    token, secret = store.create_token("ci", "predict")
    assert store.revoke_token(token.id).id == token.id
    assert store.verify_token(secret) is None


def test_revoking_twice_or_an_unknown_token_is_a_user_error(store: SqlMetadataStore) -> None:
    token, _ = store.create_token("ci", "predict")
    store.create_token("ops", "admin")
    store.revoke_token("ci")
    with pytest.raises(UserError, match=r"token 'ci' \(id \w+\) is already revoked"):
        store.revoke_token("ci")
    with pytest.raises(UserError, match="already revoked"):
        store.revoke_token(token.id)
    with pytest.raises(NotFoundError) as exc:
        store.revoke_token("nope")
    assert str(exc.value) == "no token named 'nope' (active tokens: ops)"


def test_unknown_role_lists_the_roles(store: SqlMetadataStore) -> None:
    with pytest.raises(UserError) as exc:
        store.create_token("ci", "superuser")
    assert str(exc.value) == "unknown token role 'superuser': expected one of predict, admin"
    assert TOKEN_ROLES == ("predict", "admin")
    with pytest.raises(UserError, match="invalid token name"):
        store.create_token("no spaces", "predict")
    assert store.list_tokens() == []


def test_names_are_unique_among_active_tokens(store: SqlMetadataStore) -> None:
    first, first_secret = store.create_token("ci", "predict")
    with pytest.raises(UserError, match="an active token named 'ci' already exists"):
        store.create_token("ci", "admin")
    store.revoke_token("ci")
    second, second_secret = store.create_token("ci", "admin")
    assert [t.id for t in store.list_tokens()] == [first.id, second.id]
    assert store.verify_token(first_secret) is None
    assert store.verify_token(second_secret) == second
    # With two tokens named "ci", the name means the active one; then the newest revoked one.
    assert store.revoke_token("ci").id == second.id
    with pytest.raises(UserError, match=f"id {second.id}"):
        store.revoke_token("ci")


def test_concurrent_creators_of_one_name(store: SqlMetadataStore) -> None:
    creators = 4
    barrier = threading.Barrier(creators)

    def create(_: int) -> str:
        barrier.wait()
        try:
            store.create_token("ci", "predict")
        except UserError:
            return "refused"
        return "created"

    with ThreadPoolExecutor(creators) as pool:
        outcomes = sorted(pool.map(create, range(creators)))
    assert outcomes == ["created"] + ["refused"] * (creators - 1)
    assert len(store.list_tokens()) == 1


def test_tokens_survive_reopening(store: SqlMetadataStore) -> None:
    token, secret = store.create_token("ci", "admin")
    with closing(SqlMetadataStore(store.url)) as again:
        assert again.verify_token(secret) == token
