"""Continuous training: triggers, the challenger, the gate, the alias move and the record."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyarrow as pa
import pytest
from tests.monitor.conftest import NOW, log_traffic

from mlscale import Workspace
from mlscale.errors import NotFoundError, UserError
from mlscale.monitor import evaluate_alerts, ingest_labels
from mlscale.monitor.labelled_traffic import labelled_traffic
from mlscale.monitor.retrain import ACTOR, retrain
from mlscale.monitor.watch import tick
from mlscale.quickstart.loans import generate_loans, write_loans_csv
from mlscale.registry import Holdout, compare, history, score
from mlscale.serve.routing import parse_rules

# One thread: on a busy machine an OpenMP team waiting for a core costs more than it gains.
FEW_ROUNDS = {"num_boost_round": 30, "num_threads": 1}


def make_champion(ws: Workspace, folder: Path) -> Workspace:
    """loans@1: trained on 400 loans (a weak champion), promoted to production."""
    ws.ingest(write_loans_csv(folder / "old.csv", 400, seed=1), name="loans")
    ws.train("loans@1", target="default", exclude=["loan_id"], params=FEW_ROUNDS)
    ws.promote("loans", 1)
    return ws


@pytest.fixture
def champion(ws: Workspace, tmp_path: Path) -> Workspace:
    return make_champion(ws, tmp_path)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A champion for tests that change nothing, with a logistic model ``lin@production`` too."""
    folder = tmp_path_factory.mktemp("retrain")
    ws = make_champion(Workspace.init(folder / "ws"), folder)
    ws.train("loans@1", target="default", model="logistic", name="lin", exclude=["loan_id"])
    ws.promote("lin", 1)
    return ws


@pytest.fixture
def fresh_data(champion: Workspace, loans_csv: Path) -> Workspace:
    """The champion's workspace with 3,000 new loans ingested as loans@2 (the dataset)."""
    champion.ingest(loans_csv, name="loans")
    return champion


def test_a_better_challenger_on_a_new_dataset_version_is_promoted(fresh_data: Workspace) -> None:
    ws = fresh_data
    decision = ws.retrain("loans")

    assert (decision.decision, decision.trigger) == ("promoted", "manual")
    assert (decision.champion, decision.challenger, decision.data) == (
        "loans@1",
        "loans@2",
        "loans@2",
    )
    assert ws.model("loans@production").version == 2
    # The figures are the registry's own comparison on the challenger's holdout rows.
    again = compare(ws, ws.model("loans@2"), ws.model("loans@1"), "auc", "production")
    assert decision.challenger_value == pytest.approx(again.challenger_value)
    assert decision.champion_value == pytest.approx(again.holder_value)
    assert decision.gain is not None and decision.gain > 0
    assert decision.evaluated_on == again.holdout
    # The challenger was trained like the champion: its hyperparameters and features.
    train_run = ws.run(decision.train_run or "")
    champion_run = ws.run(ws.model("loans@1").run_id or "")
    assert train_run.params["hyperparameters"] == champion_run.params["hyperparameters"]
    assert train_run.params["features"] == champion_run.params["features"]
    assert train_run.dataset == "loans@2"

    move = history(ws, "loans", alias="production")[-1]
    assert (move.from_version, move.to_version, move.actor) == (1, 2, ACTOR)
    assert f"{decision.challenger_value:.4f}" in (move.reason or "")
    assert decision.moved == "loans@production: 1 -> 2"

    run = ws.run(decision.run or "")
    assert (run.kind, run.status, run.dataset) == ("retrain", "finished", "loans@2")
    assert run.params["decision"] == "promoted"
    assert run.params["champion"] == "loans@1" and run.params["challenger"] == "loans@2"
    assert run.params["trigger"] == "manual" and run.params["data"] == "loans@2"
    assert run.metrics["challenger_auc"] == pytest.approx(decision.challenger_value)
    assert run.metrics["champion_auc"] == pytest.approx(decision.champion_value)
    assert [r.id for r in ws.runs(kind="retrain")] == [decision.run]


def test_a_worse_challenger_is_refused_and_the_champion_stays(fresh_data: Workspace) -> None:
    ws = fresh_data
    crippled = {"num_boost_round": 1, "num_leaves": 2}
    decision = ws.retrain("loans", params=crippled)

    assert decision.decision == "kept"
    assert decision.gain is not None and decision.gain < 0
    assert "worse by" in decision.reason and "production stays at loans@1" in decision.reason
    assert ws.model("loans@production").version == 1
    assert ws.model("loans@latest").version == 2  # registered, not promoted
    assert [e.to_version for e in history(ws, "loans", alias="production")] == [1]
    run = ws.run(decision.run or "")
    assert (run.params["decision"], run.params["challenger"]) == ("kept", "loans@2")
    assert run.params["hyperparameter_overrides"] == crippled
    assert run.metrics["gain"] == pytest.approx(decision.gain)


def test_a_better_challenger_short_of_the_margin_is_refused(fresh_data: Workspace) -> None:
    decision = fresh_data.retrain("loans", min_delta=0.5)  # no AUC gain can be that large

    assert decision.decision == "kept"
    assert decision.gain is not None and 0 < decision.gain < 0.5
    assert "less than the required 0.5" in decision.reason
    assert fresh_data.model("loans@production").version == 1


def test_without_new_data_a_retrain_is_skipped_unless_data_is_named(champion: Workspace) -> None:
    skipped = champion.retrain("loans")
    assert skipped.decision == "skipped" and "nothing new" in skipped.reason
    assert "--data loans@1" in skipped.reason
    assert champion.model("loans@latest").version == 1
    assert champion.run(skipped.run or "").params["decision"] == "skipped"

    named = champion.retrain("loans", data="loans@1", dry_run=True)
    assert named.decision == "would retrain" and named.data == "loans@1"


def test_drift_trigger_skips_stable_traffic_and_retrains_on_drifted_traffic(
    fresh_data: Workspace,
) -> None:
    ws = fresh_data
    nothing = ws.retrain("loans", on="drift")
    assert (
        nothing.decision == "skipped" and "no predictions of loans@1 are logged" in nothing.reason
    )

    stable = generate_loans(1_000, seed=21, label=False)
    log_traffic(ws, stable, start=NOW - 7_200)  # 2 h to 100 min ago
    calm = ws.retrain("loans", on="drift", window="3h", now=NOW)
    assert calm.decision == "skipped" and calm.challenger is None
    counted = re.search(r"(\d+) of 12 features drifted", calm.reason)
    assert (
        counted is not None and int(counted.group(1)) < 6 and "last 3h: 1,000 rows" in calm.reason
    )
    assert ws.model("loans@latest").version == 1  # nothing was trained

    shifted = generate_loans(1_000, seed=22, shift=True, label=False)
    log_traffic(ws, shifted, start=NOW - 1_800)  # the last half hour
    decision = ws.retrain("loans", on="drift", window="1h", now=NOW)
    assert decision.decision == "promoted", decision.reason
    assert "credit_score" in decision.reason and "last 1h: 1,000 rows" in decision.reason
    assert ws.run(decision.run or "").params["trigger"] == "drift"

    # The drift persists, but the data was tried against this champion already.
    assert ws.retrain("loans", on="drift", window="1h", now=NOW).decision == "skipped"


def test_a_persisting_drift_does_not_retrain_the_same_challenger_twice(
    fresh_data: Workspace,
) -> None:
    ws = fresh_data
    log_traffic(ws, generate_loans(1_000, seed=22, shift=True, label=False), start=NOW - 1_800)
    first = ws.retrain("loans", on="drift", params={"num_boost_round": 1, "num_leaves": 2})
    assert first.decision == "kept"

    again = ws.retrain("loans", on="drift")
    assert again.decision == "skipped"
    assert f"retrain run {(first.run or '')[:8]} already tried loans@2" in again.reason
    assert ws.model("loans@latest").version == 2  # no second challenger


def test_schedule_trigger_fires_once_the_interval_has_passed(fresh_data: Workspace) -> None:
    ws = fresh_data
    registered = ws.model("loans@1").created_at.timestamp()

    soon = ws.retrain("loans", on="schedule", interval="7d", now=registered + 3_600)
    assert soon.decision == "skipped" and "less than the interval of 7d" in soon.reason

    due = ws.retrain("loans", on="schedule", interval="7d", now=registered + 8 * 86_400)
    assert due.decision == "promoted"
    assert "no retrain yet; loans@1 was registered 8.0d ago" in due.reason

    # Now the last retrain is the reference point, and loans@2 is the champion's own data.
    later = ws.retrain("loans", on="schedule", interval="1d", now=registered + 3 * 86_400)
    assert later.decision == "skipped" and "last retrain" in later.reason
    assert "nothing new" in later.reason


def test_incremental_retrain_continues_the_champion(fresh_data: Workspace) -> None:
    ws = fresh_data
    decision = ws.retrain("loans", incremental=True)

    assert decision.challenger == "loans@2" and decision.incremental
    assert decision.decision in ("promoted", "kept")
    trees = {v: ws.predictor(f"loans@{v}").model.booster_.num_trees() for v in (1, 2)}
    assert trees[2] == trees[1] + FEW_ROUNDS["num_boost_round"]
    assert ws.run(decision.train_run or "").params["init_from"] == "loans@1"


def test_canary_moves_the_canary_alias_and_says_how_to_route_it(fresh_data: Workspace) -> None:
    ws = fresh_data
    decision = ws.retrain("loans", canary=10)

    assert (decision.decision, decision.canary) == ("canary", 10)
    assert ws.model("loans@production").version == 1
    assert ws.model("loans@canary").version == 2
    move = history(ws, "loans", alias="canary")[-1]
    assert (move.to_version, move.actor) == (2, ACTOR)
    # The server option the decision names is one the server accepts.
    option = decision.reason.split("mlscale serve --canary ")[1].split(";")[0]
    rule = parse_rules([option], [])["loans@production"]
    assert (rule.canary, rule.percent) == ("loans@canary", 10)
    assert "mlscale models promote loans 2 --alias production" in decision.reason


def test_dry_run_trains_and_records_nothing(fresh_data: Workspace) -> None:
    decision = fresh_data.retrain("loans", dry_run=True)

    assert decision.decision == "would retrain" and decision.run is None
    assert "would train a new model like loans@1 on loans@2" in decision.reason
    assert fresh_data.model("loans@latest").version == 1
    assert fresh_data.runs(kind="retrain") == []


def test_a_challenger_that_cannot_be_compared_is_a_recorded_failure(
    champion: Workspace, tmp_path: Path
) -> None:
    ws = champion
    table = generate_loans(1_000, seed=5).drop_columns(["credit_score"])
    path = tmp_path / "thin.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    ws.ingest(path, name="thin")

    decision = ws.retrain("loans", data="thin@1")
    assert decision.decision == "failed"
    assert "'credit_score'" in decision.reason and decision.challenger == "loans@2"
    assert ws.model("loans@production").version == 1
    run = ws.run(decision.run or "")
    assert (run.status, run.params["decision"]) == ("failed", "failed")
    assert "'credit_score'" in (run.error or "")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"on": "hourly"},
            "unknown trigger 'hourly': expected one of manual, drift, alert, schedule",
        ),
        ({"canary": 0}, "canary percentage must be above 0 and at most 100, got 0"),
        ({"min_delta": -1}, "min delta must be 0 or more, got -1"),
        ({"drift_share": 2}, "drift share must be above 0 and at most 1, got 2"),
        ({"interval": "soon"}, "invalid duration 'soon'"),
        ({"metric": "f1"}, "unknown metric 'f1' for binary models"),
        ({"alias": "staging"}, "loans@staging points at no version"),
        ({"params": {"num_leaves": -3}}, "num_leaves"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(
    unchanged: Workspace, options: dict, message: str
) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        unchanged.retrain("loans", **options)
    assert unchanged.runs(kind="retrain") == []


def test_unknown_models_and_models_that_cannot_continue_are_refused(unchanged: Workspace) -> None:
    with pytest.raises(NotFoundError, match="'lones'"):
        unchanged.retrain("lones")
    with pytest.raises(UserError, match="lin@1 is a linear model, which cannot continue"):
        retrain(unchanged, "lin", incremental=True)
    assert unchanged.runs(kind="retrain") == []


DRIFT_RULE = """\
rules:
  - name: features-drifted
    metric: drift.share_drifted
    above: 0.3
    window: 1h
    models: [loans]
"""


def test_alert_trigger_fires_on_an_alert_raised_while_the_champion_served(
    fresh_data: Workspace,
) -> None:
    ws = fresh_data
    (ws.root / "monitor.yaml").write_text(DRIFT_RULE)
    # The real clock here: the alert's start is compared with when loans@2 takes over.
    last_hour = time.time() // 3_600 * 3_600 - 3_600  # the last complete window of the rule
    shifted = generate_loans(1_000, seed=22, shift=True, label=False)
    log_traffic(ws, shifted, start=last_hour + 600)
    quiet = ws.retrain("loans", on="alert")
    assert quiet.decision == "skipped" and quiet.reason == "no alert is firing on loans"

    assert [r.rule for r in evaluate_alerts(ws).firing] == ["features-drifted"]
    decision = ws.retrain("loans", on="alert")
    assert decision.decision == "promoted"
    assert decision.reason.startswith("alert(s) firing on loans: 'features-drifted' since ")

    # Still firing (loans@2 has served nothing yet), but the alert judged loans@1.
    stale = ws.retrain("loans", on="alert", data="loans@2")
    assert stale.decision == "skipped"
    assert "began before loans@2 became production" in stale.reason


def test_a_watch_tick_evaluates_alerts_and_retrains_drifted_models(
    fresh_data: Workspace, tmp_path: Path
) -> None:
    ws = fresh_data
    (ws.root / "monitor.yaml").write_text(DRIFT_RULE)
    ws.ingest(write_loans_csv(tmp_path / "calm.csv", 400, seed=3), name="calm")
    ws.train("calm@1", target="default", exclude=["loan_id"], params=FEW_ROUNDS)
    ws.promote("calm", 1)
    log_traffic(ws, generate_loans(1_000, seed=22, shift=True, label=False), start=NOW - 1_800)

    result = tick(ws, now=NOW, window="1h")

    assert result.new_rows == 1_000
    assert result.alerts is not None
    assert [e.rule for e in result.alerts.events] == ["features-drifted"]
    by_model = {d.model: d for d in result.decisions}
    assert by_model["loans"].decision == "promoted" and by_model["loans"].trigger == "drift"
    calm = by_model["calm"]
    assert (calm.decision, calm.trigger) == ("skipped", "drift, alert, schedule")
    assert "drift: no drift verdict" in calm.reason and "alert: no alert is firing" in calm.reason
    assert "schedule: no retrain yet; calm@1 was registered" in calm.reason
    assert "1 alert firing; 2 models checked, 1 retrained" in result.describe()
    # Skips are reported by the tick, not recorded: only the real decision is a run.
    assert [r.params["model"] for r in ws.runs(kind="retrain")] == ["loans"]


def label_ids(rows: int, request_rows: int = 50) -> list[str]:
    """The ids the label store gives rows logged by ``log_traffic`` (``req-<first row>:<row>``)."""
    return [f"req-{i - i % request_rows}:{i % request_rows}" for i in range(rows)]


def test_labelled_traffic_trains_the_challenger_and_judges_both_on_the_newest_rows(
    champion: Workspace,
) -> None:
    ws = champion
    served = generate_loans(1_000, seed=31, shift=True)
    log_traffic(ws, served.drop_columns(["default"]), start=NOW - 3_600)
    ids, labels = label_ids(1_000), served.column("default")
    ingest_labels(ws, "loans", pa.table({"id": ids[:150], "default": labels.slice(0, 150)}))

    few = ws.retrain("loans", dry_run=True)  # 150 labelled rows: too few to judge on
    assert few.decision == "skipped" and "nothing new" in few.reason

    ingest_labels(ws, "loans", pa.table({"id": ids, "default": labels}))
    joined = labelled_traffic(ws, ws.model("loans@1"))
    assert joined.column("default").to_pylist() == labels.to_pylist()
    assert joined.column("credit_score").to_pylist() == served.column("credit_score").to_pylist()

    decision = ws.retrain("loans")

    assert (decision.base, decision.data, decision.traffic_rows) == (
        "loans@1",
        "loans-retrain@1",
        500,
    )
    assert ws.dataset("loans-retrain@1").num_rows == 400 + 500
    assert (decision.evaluated_on or "").startswith(
        "the newest 500 labelled rows of the logged traffic of loans ("
    )
    # The same figures from the served rows themselves, scored by the registry.
    newest = served.slice(500)
    rows = Holdout("served", "generated", "default", newest)
    for ref, value in ((decision.challenger, decision.challenger_value),
                       (decision.champion, decision.champion_value)):  # fmt: skip
        assert score(ws, ws.model(ref or ""), rows)["auc"] == pytest.approx(value)
    run = ws.run(decision.run or "")
    assert (run.params["base"], run.params["traffic_rows"]) == ("loans@1", 500)

    # Nothing new since: the champion's (or the last attempt's) data holds all of it.
    again = ws.retrain("loans")
    assert again.decision == "skipped" and "nothing new" in again.reason
