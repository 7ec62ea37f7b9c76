"""The metadata store contract: every backend (SQLite, PostgreSQL) must pass all of these."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mlscale.errors import ConfigError, NotFoundError, UserError
from mlscale.refs import Ref
from mlscale.store.sql import SqlMetadataStore
from mlscale.store.tables import metadata

SHA = "0" * 64


def add_dataset(store: SqlMetadataStore, name: str = "loans", content: str = "a", **kw: Any):
    args: dict[str, Any] = {
        "content_hash": content * 64,
        "num_rows": 10,
        "num_quarantined": 1,
        "schema": {"columns": [{"name": "age", "type": "int64", "nullable": False}]},
        "parts": [SHA],
        "quarantine": [],
        "profile_sha": SHA,
        "source": {"uri": "loans.csv", "format": "csv", "bytes": 123},
    }
    return store.add_dataset_version(name, **(args | kw))


def add_model(store: SqlMetadataStore, name: str = "loans", run_id: str | None = None):
    return store.add_model_version(
        name,
        flavor="lightgbm",
        artifact_sha=SHA,
        signature={"inputs": [{"name": "age", "type": "int64"}]},
        metrics={"auc": 0.9},
        profile_sha=SHA,
        run_id=run_id,
        dataset="loans@1",
    )


def message(exc: pytest.ExceptionInfo[BaseException]) -> str:
    return str(exc.value)


# -- datasets -------------------------------------------------------------------------------
def test_dataset_versions_count_from_one(store: SqlMetadataStore) -> None:
    first, created = add_dataset(store, content="a")
    second, _ = add_dataset(store, content="b")
    other, _ = add_dataset(store, "flights", content="a")
    assert created
    assert (first.ref, second.ref, other.ref) == ("loans@1", "loans@2", "flights@1")
    assert first.schema["columns"][0]["name"] == "age"
    assert first.parts == [SHA]
    assert first.created_at.tzinfo is not None


def test_adding_the_same_content_returns_the_existing_version(store: SqlMetadataStore) -> None:
    first, _ = add_dataset(store, content="a")
    again, created = add_dataset(store, content="a", num_rows=99)
    assert not created
    assert again == first
    assert [d.version for d in store.list_dataset_versions("loans")] == [1]


def test_get_dataset_by_version_and_latest(store: SqlMetadataStore) -> None:
    add_dataset(store, content="a")
    add_dataset(store, content="b")
    assert store.get_dataset_version(Ref("loans", version=1)).content_hash == "a" * 64
    assert store.get_dataset_version(Ref.parse("loans")).version == 2
    assert (
        store.get_dataset_version(Ref.parse("loans@2")) == store.list_dataset_versions("loans")[1]
    )


def test_dataset_not_found_messages_name_what_exists(store: SqlMetadataStore) -> None:
    add_dataset(store, content="a")
    with pytest.raises(NotFoundError) as exc:
        store.get_dataset_version(Ref.parse("loans@7"))
    assert message(exc) == "dataset 'loans' has no version 7 (versions: 1)"
    with pytest.raises(NotFoundError) as exc:
        store.get_dataset_version(Ref.parse("lons"))
    assert message(exc) == "no dataset named 'lons' (datasets: loans)"
    with pytest.raises(NotFoundError, match="dataset 'loans' has no alias 'production'"):
        store.get_dataset_version(Ref.parse("loans@production"))


def test_list_datasets_gives_the_latest_of_each_by_name(store: SqlMetadataStore) -> None:
    assert store.list_datasets() == []
    add_dataset(store, "zebra", content="a")
    add_dataset(store, "apple", content="a")
    add_dataset(store, "apple", content="b")
    assert [d.ref for d in store.list_datasets()] == ["apple@2", "zebra@1"]
    assert [d.ref for d in store.list_dataset_versions("apple")] == ["apple@1", "apple@2"]
    assert store.list_dataset_versions("nothing") == []


def test_invalid_dataset_name_is_a_user_error(store: SqlMetadataStore) -> None:
    with pytest.raises(UserError, match="invalid dataset name"):
        add_dataset(store, "no spaces")


# -- runs -----------------------------------------------------------------------------------
def test_run_lifecycle(store: SqlMetadataStore) -> None:
    run = store.create_run("train", params={"lr": 0.1}, dataset="loans@1")
    assert len(run.id) == 32
    assert (run.status, run.ended_at, run.duration_s) == ("running", None, None)
    assert store.get_run(run.id) == run

    done = store.finish_run(run.id, status="finished", metrics={"auc": 0.91}, env={"py": "3.11"})
    assert done.status == "finished"
    assert done.metrics == {"auc": 0.91}
    assert done.env == {"py": "3.11"}
    assert done.params == {"lr": 0.1}
    assert done.ended_at is not None and done.ended_at.tzinfo is not None
    assert done.ended_at >= done.started_at
    assert done.duration_s == pytest.approx((done.ended_at - done.started_at).total_seconds())
    assert store.get_run(run.id) == done


def test_failed_run_keeps_its_error(store: SqlMetadataStore) -> None:
    run = store.create_run("train", params={}, dataset=None)
    failed = store.finish_run(run.id, status="failed", metrics={}, env={}, error="boom")
    assert (failed.status, failed.error) == ("failed", "boom")


def test_unknown_run(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFoundError) as exc:
        store.get_run("nope")
    assert message(exc) == "no run with id 'nope' (no runs yet)"
    run = store.create_run("train", params={}, dataset=None)
    with pytest.raises(NotFoundError, match=f"newest runs: {run.id}"):
        store.finish_run("nope", status="finished", metrics={}, env={})


def test_list_runs_newest_first(store: SqlMetadataStore) -> None:
    ids = [store.create_run("train", params={"i": i}, dataset=None).id for i in range(3)]
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(limit=2)] == ids[:0:-1]


# -- models and aliases ---------------------------------------------------------------------
def test_model_versions_count_from_one(store: SqlMetadataStore) -> None:
    run = store.create_run("train", params={}, dataset="loans@1")
    first = add_model(store, run_id=run.id)
    second = add_model(store)
    assert (first.ref, second.ref) == ("loans@1", "loans@2")
    assert first.run_id == run.id
    assert first.aliases == []
    assert first.created_at.tzinfo is not None
    assert store.get_model_version(Ref.parse("loans@1")) == first


def test_model_with_an_unknown_run_is_not_found(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFoundError, match="no run with id 'ghost'"):
        add_model(store, run_id="ghost")
    assert store.list_models() == []


def test_latest_alias_and_version_resolution(store: SqlMetadataStore) -> None:
    for _ in range(3):
        add_model(store)
    store.set_alias("loans", "production", 2)
    store.set_alias("loans", "champion", 2)
    assert store.get_model_version(Ref.parse("loans")).version == 3
    assert store.get_model_version(Ref.parse("loans@latest")).version == 3
    assert store.get_model_version(Ref.parse("loans@1")).version == 1
    production = store.get_model_version(Ref.parse("loans@production"))
    assert (production.version, production.aliases) == (2, ["champion", "production"])
    assert [m.aliases for m in store.list_model_versions("loans")] == [
        [],
        ["champion", "production"],
        [],
    ]


def test_model_not_found_messages_name_what_exists(store: SqlMetadataStore) -> None:
    for _ in range(3):
        add_model(store)
    store.set_alias("loans", "staging", 3)
    cases = {
        "loans@7": "model 'loans' has no version 7 (versions: 1, 2, 3)",
        "loans@production": "model 'loans' has no alias 'production' (aliases: staging)",
        "lons": "no model named 'lons' (models: loans)",
    }
    for ref, expected in cases.items():
        with pytest.raises(NotFoundError) as exc:
            store.get_model_version(Ref.parse(ref))
        assert message(exc) == expected


def test_not_found_when_empty(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFoundError) as exc:
        store.get_model_version(Ref.parse("loans"))
    assert message(exc) == "no model named 'loans' (no models yet)"


def test_alias_moves_are_recorded(store: SqlMetadataStore) -> None:
    add_model(store)
    add_model(store)
    first = store.set_alias("loans", "production", 1)
    moved = store.set_alias("loans", "production", 2)
    assert (first.from_version, first.to_version) == (None, 1)
    assert (moved.from_version, moved.to_version) == (1, 2)
    assert moved.at.tzinfo is not None
    assert store.get_model_version(Ref.parse("loans@production")).version == 2
    assert store.get_model_version(Ref.parse("loans@1")).aliases == []
    assert store.alias_history("loans") == [first, moved]
    assert store.alias_history("other") == []


def test_latest_is_a_reserved_alias(store: SqlMetadataStore) -> None:
    add_model(store)
    with pytest.raises(UserError, match="'latest' is reserved"):
        store.set_alias("loans", "latest", 1)


def test_alias_to_a_missing_version(store: SqlMetadataStore) -> None:
    add_model(store)
    with pytest.raises(NotFoundError, match=r"has no version 5 \(versions: 1\)"):
        store.set_alias("loans", "production", 5)
    with pytest.raises(NotFoundError, match="no model named 'other'"):
        store.set_alias("other", "production", 1)
    assert store.alias_history("loans") == []


def test_list_models_gives_the_latest_of_each_with_aliases(store: SqlMetadataStore) -> None:
    add_model(store, "zebra")
    add_model(store, "apple")
    add_model(store, "apple")
    store.set_alias("apple", "production", 2)
    listed = store.list_models()
    assert [(m.ref, m.aliases) for m in listed] == [("apple@2", ["production"]), ("zebra@1", [])]
    assert store.list_model_versions("nothing") == []


# -- concurrency and lifecycle --------------------------------------------------------------
def test_concurrent_writers_get_distinct_versions(store: SqlMetadataStore) -> None:
    writers = 8
    barrier = threading.Barrier(writers)

    def add(_: int) -> int:
        barrier.wait()
        return add_model(store).version

    with ThreadPoolExecutor(writers) as pool:
        versions = list(pool.map(add, range(writers)))
    assert sorted(versions) == list(range(1, writers + 1))
    assert [m.version for m in store.list_model_versions("loans")] == list(range(1, writers + 1))


def test_concurrent_openers_of_a_new_database(store_url: str) -> None:
    openers = 4
    barrier = threading.Barrier(openers)

    def open_and_add(i: int) -> int:
        barrier.wait()
        with closing(SqlMetadataStore(store_url)) as store:
            return add_dataset(store, content="abcd"[i])[0].version

    with ThreadPoolExecutor(openers) as pool:
        assert sorted(pool.map(open_and_add, range(openers))) == [1, 2, 3, 4]


def test_one_process_opening_many_new_databases_at_once(tmp_path: Path) -> None:
    # Alembic's context is process-global: migrations of different databases must not overlap.
    openers = 6
    barrier = threading.Barrier(openers)

    def open_one(i: int) -> None:
        barrier.wait()
        SqlMetadataStore(f"sqlite:///{tmp_path / f'{i}.db'}").close()

    with ThreadPoolExecutor(openers) as pool:
        list(pool.map(open_one, range(openers)))


def test_reopening_keeps_everything(store: SqlMetadataStore) -> None:
    add_dataset(store)
    add_model(store)
    with closing(SqlMetadataStore(store.url)) as again:
        assert [d.ref for d in again.list_datasets()] == ["loans@1"]
        assert add_model(again).version == 2


def test_tables_match_the_migrations(store: SqlMetadataStore) -> None:
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_timestamps_read_back_as_utc(store: SqlMetadataStore) -> None:
    before = datetime.now(UTC)
    run = store.create_run("train", params={}, dataset=None)
    stored = store.get_run(run.id).started_at
    assert stored.utcoffset() is not None and stored.utcoffset().total_seconds() == 0
    assert stored >= before.replace(microsecond=0)


# -- configuration --------------------------------------------------------------------------
def test_unreachable_postgresql_is_a_config_error() -> None:
    url = "postgresql://mlscale:secret@127.0.0.1:1/nothing"
    with pytest.raises(ConfigError) as exc:
        SqlMetadataStore(url)
    assert "127.0.0.1:1" in message(exc)
    assert "secret" not in message(exc)


def test_unsupported_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported metadata database URL"):
        SqlMetadataStore("mysql://localhost/x")


def test_alias_moves_record_who_and_why(store: SqlMetadataStore) -> None:
    add_model(store, "loans")
    event = store.set_alias("loans", "production", 1, actor="ana", reason="better AUC")
    assert (event.actor, event.reason) == ("ana", "better AUC")
    assert store.alias_history("loans") == [event]


def test_run_artifacts_and_trials(store: SqlMetadataStore) -> None:
    study = store.create_run("tune", params={}, dataset=None)
    trial = store.create_run("trial", params={"n": 1}, dataset=None, parent_id=study.id)
    assert (study.artifacts, trial.parent_id) == ({}, study.id)
    store.log_run_artifact(study.id, "curves", "a" * 64)
    updated = store.log_run_artifact(study.id, "report", "b" * 64)
    assert updated.artifacts == {"curves": "a" * 64, "report": "b" * 64}
    assert store.get_run(study.id).artifacts == updated.artifacts
    assert [r.id for r in store.list_runs(parent_id=study.id)] == [trial.id]
    assert [r.id for r in store.list_runs(kind="tune")] == [study.id]
    with pytest.raises(NotFoundError, match="no run with id 'nope'"):
        store.log_run_artifact("nope", "x", "c" * 64)


def test_removing_an_alias_is_recorded(store: SqlMetadataStore) -> None:
    add_model(store)
    add_model(store)
    set_ = store.set_alias("loans", "production", 2)
    store.set_alias("loans", "staging", 1)
    removed = store.remove_alias("loans", "production", actor="ana", reason="bad release")
    assert (removed.model, removed.alias, removed.from_version, removed.to_version) == (
        "loans",
        "production",
        2,
        None,
    )
    assert (removed.actor, removed.reason) == ("ana", "bad release")
    assert removed.at.tzinfo is not None
    assert store.alias_history("loans")[0] == set_
    assert store.alias_history("loans")[-1] == removed
    assert store.get_model_version(Ref.parse("loans@2")).aliases == []
    with pytest.raises(NotFoundError) as exc:
        store.get_model_version(Ref.parse("loans@production"))
    assert message(exc) == "model 'loans' has no alias 'production' (aliases: staging)"
    # An alias that was removed can be set again, from nothing.
    again = store.set_alias("loans", "production", 1)
    assert (again.from_version, again.to_version) == (None, 1)


def test_removing_a_missing_alias_names_what_exists(store: SqlMetadataStore) -> None:
    add_model(store)
    store.set_alias("loans", "staging", 1)
    with pytest.raises(NotFoundError) as exc:
        store.remove_alias("loans", "production")
    assert message(exc) == "model 'loans' has no alias 'production' (aliases: staging)"
    with pytest.raises(NotFoundError, match="no model named 'other'"):
        store.remove_alias("other", "production")
    with pytest.raises(UserError, match="'latest' is reserved"):
        store.remove_alias("loans", "latest")
    assert len(store.alias_history("loans")) == 1
