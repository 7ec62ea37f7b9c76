"""Finding runs by an id prefix, and listing studies apart from their trials (on a real store)."""

from collections import Counter

import pytest

from mlscale import NotFoundError, UserError, Workspace
from mlscale.reports.runs import find_run, param_rows, top_level_runs, trials


def test_a_run_is_found_by_its_id_or_a_unique_prefix(ws: Workspace) -> None:
    store = ws.metadata
    with pytest.raises(NotFoundError, match="no run id starts with 'abc' \\(no runs yet"):
        find_run(store, "abc")
    made = [store.create_run("train", params={"i": i}, dataset=None) for i in range(17)]
    # 17 hex ids: at least two share a first character (pigeonhole), so that prefix is ambiguous.
    first, count = Counter(r.id[0] for r in made).most_common(1)[0]
    assert count >= 2
    with pytest.raises(UserError, match=f"run prefix '{first}' is ambiguous: {count} runs match"):
        find_run(store, first)
    target = made[5]
    assert find_run(store, target.id) == target
    unique = next(
        target.id[:n]
        for n in range(1, 33)
        if sum(r.id.startswith(target.id[:n]) for r in made) == 1
    )
    assert find_run(store, unique).id == target.id == ws.run(unique).id
    assert find_run(store, target.id[:12].upper()).id == target.id
    with pytest.raises(NotFoundError, match="no run id starts with 'zz' \\(newest runs: "):
        find_run(store, "zz")
    with pytest.raises(UserError, match="empty"):
        find_run(store, " ")


def test_trials_stay_with_their_study(ws: Workspace) -> None:
    store = ws.metadata
    study = store.create_run("tune", params={"model": "lightgbm"}, dataset="loans@1")
    made = [
        store.create_run("trial", params={"n": i}, dataset=None, parent_id=study.id)
        for i in range(5)
    ]
    solo = store.create_run("train", params={}, dataset=None)
    assert [r.id for r in top_level_runs(store, 10)] == [solo.id, study.id]
    assert [r.id for r in ws.runs()] == [solo.id, study.id]
    assert [r.id for r in top_level_runs(store, 1)] == [solo.id]
    # Even when the trials are the newest runs, a short page still finds the study behind them.
    late = store.create_run("trial", params={"n": 5}, dataset=None, parent_id=study.id)
    assert [r.id for r in top_level_runs(store, 2)] == [solo.id, study.id]
    assert len(top_level_runs(store, 50, kind="trial")) == 6
    assert [r.id for r in trials(store, study)] == [r.id for r in [*made, late]]


def test_param_rows_mark_what_differs(ws: Workspace) -> None:
    store = ws.metadata
    a = store.create_run("train", params={"seed": 1, "hp": {"lr": 0.1}, "f": ["x"]}, dataset=None)
    b = store.create_run("train", params={"seed": 1, "hp": {"lr": 0.2}}, dataset=None)
    assert param_rows([a, b]) == [
        ("seed", [1, 1], False),
        ("hp.lr", [0.1, 0.2], True),
        ("f", [["x"], None], True),
    ]
