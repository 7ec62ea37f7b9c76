"""Rollback, history and lineage: every alias move recorded and undoable."""

from __future__ import annotations

import types

import pytest

from mlscale import NotFoundError, UserError, Workspace
from mlscale.registry import current_actor, history, lineage
from tests.registry.conftest import Register


def moves(ws: Workspace, alias: str = "production") -> list[tuple[int | None, int | None]]:
    return [(e.from_version, e.to_version) for e in history(ws, "loans", alias=alias)]


def test_rollback_twice_returns_to_where_it_was(data_ws: Workspace, register: Register) -> None:
    for _ in range(2):
        register(features=["x1"])
    data_ws.promote("loans", 1)
    data_ws.promote("loans", 2, reason="new features")
    back = data_ws.rollback("loans", alias="production", actor="ops", reason="latency")
    assert (back.from_version, back.to_version, back.actor) == (2, 1, "ops")
    assert back.reason is not None
    assert back.reason.startswith("latency; rollback of loans@production: 1 -> 2 made ")
    assert data_ws.model("loans@production").version == 1
    forth = data_ws.rollback("loans")
    assert (forth.from_version, forth.to_version) == (1, 2)
    assert forth.reason is not None and "rollback of loans@production: 2 -> 1" in forth.reason
    assert data_ws.model("loans@production").version == 2
    assert moves(data_ws) == [(None, 1), (1, 2), (2, 1), (1, 2)]


def test_rollback_of_a_first_promotion_removes_the_alias(
    data_ws: Workspace, register: Register
) -> None:
    register(features=["x1"])
    data_ws.promote("loans", 1, alias="staging")
    data_ws.promote("loans", 1, alias="production")
    removed = data_ws.rollback("loans", alias="staging")
    assert (removed.from_version, removed.to_version) == (1, None)
    with pytest.raises(NotFoundError, match="has no alias 'staging'"):
        data_ws.model("loans@staging")
    assert data_ws.model("loans@1").aliases == ["production"]
    restored = data_ws.rollback("loans", alias="staging")  # undoing the removal restores it
    assert (restored.from_version, restored.to_version) == (None, 1)
    assert data_ws.model("loans@staging").version == 1
    assert moves(data_ws, "staging") == [(None, 1), (1, None), (None, 1)]


def test_rollback_without_history_is_a_clear_error(data_ws: Workspace, register: Register) -> None:
    register(features=["x1"])
    with pytest.raises(UserError) as exc:
        data_ws.rollback("loans")
    assert str(exc.value) == (
        "loans@production has never been moved, so there is nothing to roll back "
        "(no alias moves yet)"
    )
    data_ws.promote("loans", 1, alias="staging")
    with pytest.raises(UserError, match=r"\(aliases with a history: staging\)"):
        data_ws.rollback("loans", alias="production")
    with pytest.raises(NotFoundError, match=r"no model named 'lons' \(models: loans\)"):
        data_ws.rollback("lons")
    with pytest.raises(UserError, match="'latest' is reserved"):
        data_ws.rollback("loans", alias="latest")
    assert moves(data_ws, "staging") == [(None, 1)]


def test_the_actor_defaults_to_mlscale_user(
    data_ws: Workspace, register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(features=["x1"])
    monkeypatch.setenv("MLSCALE_USER", "ci-bot")
    assert current_actor() == "ci-bot"
    assert data_ws.promote("loans", 1).event.actor == "ci-bot"  # type: ignore[union-attr]
    monkeypatch.delenv("MLSCALE_USER")
    monkeypatch.setenv("USER", "someone")
    monkeypatch.setenv("LOGNAME", "someone")
    assert current_actor() == "someone"
    assert data_ws.rollback("loans").actor == "someone"


def test_history_of_an_unknown_model_names_the_known_ones(
    data_ws: Workspace, register: Register
) -> None:
    register(features=["x1"])
    assert history(data_ws, "loans") == []
    with pytest.raises(NotFoundError, match=r"no model named 'other' \(models: loans\)"):
        history(data_ws, "other")


def test_lineage_from_dataset_to_aliases(data_ws: Workspace, register: Register) -> None:
    first = register(features=["x1"])
    register(features=["x1", "x2"])
    data_ws.promote("loans", 1, alias="staging")
    data_ws.promote("loans", 1)
    data_ws.promote("loans", 2)
    found = lineage(data_ws, "loans@1")
    assert found.model.ref == "loans@1" and found.aliases == ["staging"]
    assert found.dataset is not None and found.dataset.ref == "loans@1"
    assert str(found.dataset.source["uri"]).endswith("loans.parquet")
    assert found.run is not None and found.run.id == first.run_id
    assert found.run.params["target"] == "label" and "holdout" in found.run.artifacts
    assert [(e.alias, e.from_version, e.to_version) for e in found.moves] == [
        ("staging", None, 1),
        ("production", None, 1),
        ("production", 1, 2),
    ]
    as_dict = found.to_dict()
    assert as_dict["dataset"]["ref"] == "loans@1" and as_dict["run"]["id"] == first.run_id
    assert [m["to"] for m in as_dict["moves"]] == [1, 1, 2]
    assert lineage(data_ws, "loans@production").model.version == 2


def test_registry_lists_its_public_names() -> None:
    import mlscale.registry as registry

    public = {
        n
        for n, v in vars(registry).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert public == set(registry.__all__)
