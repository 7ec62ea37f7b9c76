"""``mlscale runs list|show|compare`` on real training runs, in subprocesses as a user runs them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlscale import Workspace
from tests.e2e.conftest import run_cli


@dataclass
class Project:
    root: Path
    holdout: str  # run ids
    kfold: str
    study: str


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Project:
    """Two trainings of loans@1 (holdout, 3-fold), an evaluation on the first, and a small study."""
    ws = Workspace.init(tmp_path_factory.mktemp("runs"))
    ws.ingest(loans_csv, name="loans")
    first = ws.train(
        "loans@1", target="default", exclude=["loan_id"], params={"num_boost_round": 25}
    )
    second = ws.train(
        "loans@1",
        target="default",
        exclude=["loan_id"],
        split="kfold",
        folds=3,
        params={"num_boost_round": 15, "num_leaves": 15},
    )
    # A tuning study and its trials, as the store records them.
    study = ws.metadata.create_run("tune", params={"model": "lightgbm"}, dataset="loans@1")
    for leaves in (7, 31):
        trial = ws.metadata.create_run(
            "trial", params={"num_leaves": leaves}, dataset="loans@1", parent_id=study.id
        )
        ws.metadata.finish_run(trial.id, status="finished", metrics={"auc": 0.7}, env={})
    ws.metadata.finish_run(study.id, status="finished", metrics={"auc": 0.7}, env={})
    ws.metadata.close()
    return Project(ws.root, first.run.id, second.run.id, study.id)


def test_runs_list_shows_studies_not_their_trials(project: Project) -> None:
    listed = run_cli(project.root, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[2:]}
    assert list(lines) == [project.study[:8], project.kfold[:8], project.holdout[:8]]
    assert "(2 trials)" in lines[project.study[:8]]
    assert "auc 0." in lines[project.holdout[:8]] and "loans@1" in lines[project.holdout[:8]]

    as_json = json.loads(run_cli(project.root, "runs", "list", "--json", "-n", "2").stdout)
    assert [r["id"] for r in as_json] == [project.study, project.kfold]
    assert as_json[0]["trials"] == 2 and as_json[1]["params"]["folds"] == 3
    trials = json.loads(run_cli(project.root, "runs", "list", "--kind", "trial", "--json").stdout)
    assert {r["parent_id"] for r in trials} == {project.study} and len(trials) == 2


def test_runs_show_prints_the_run_and_writes_its_page(project: Project, tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    shown = run_cli(project.root, "runs", "show", project.holdout[:6], "--html", str(page))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"run {project.holdout}" in out
    for expected in ("loans@1", "seed:", "model version: loans@1", "peak memory", "wall time"):
        assert expected in out
    assert "hyperparameters.num_boost_round" in out and "evaluation" in out
    html = page.read_text()
    assert 'aria-label="confusion matrix"' in html and 'aria-label="ROC curve"' in html
    assert 'aria-label="learning curve"' in html and "<script" not in html

    kfold = run_cli(project.root, "runs", "show", project.kfold, "--json", "--html", str(page))
    record = json.loads(kfold.stdout)
    assert record["id"] == project.kfold and record["env"]["model_version"] == "loans@2"
    assert set(record["artifacts"]) == {"curves", "evaluation", "reference"}
    html = page.read_text()
    assert 'aria-label="confusion matrix"' in html  # of the out-of-fold predictions
    assert html.count("<polyline") >= 3  # a learning curve per fold, and the ROC/PR curves

    study = run_cli(project.root, "runs", "show", project.study)
    assert study.returncode == 0 and "trials (2)" in study.stdout


def test_runs_compare_lines_runs_up(project: Project, tmp_path: Path) -> None:
    page = tmp_path / "compare.html"
    compared = run_cli(
        project.root, "runs", "compare", project.holdout[:8], project.kfold[:8], "--html", str(page)
    )
    assert compared.returncode == 0, compared.stderr
    rows = {line.split()[0]: line.split()[1:] for line in compared.stdout.splitlines()[2:] if line}
    assert rows["split"][1::2] == ["holdout", "kfold"]
    assert rows["hyperparameters.num_leaves"][1::2] == ["31", "15"]
    assert "seed" not in rows  # the same in both: not repeated
    assert "params differ" in compared.stdout
    html = page.read_text()
    assert html.count('<tr class="diff">') >= 4  # split, test size, folds, rounds, leaves
    assert html.count("<polyline") == 4  # the holdout run's curve and three folds


def test_runs_errors_are_clear(project: Project) -> None:
    unknown = run_cli(project.root, "runs", "show", "nothere")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: no run id starts with 'nothere' (newest runs: ")
    one = run_cli(project.root, "runs", "compare", project.holdout)
    assert one.returncode == 2 and "at least two runs" in one.stderr
