"""The evaluation and comparison pages: the plots they draw and the figures they show."""

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from mlscale.reports import evaluation_page, runs_page, write_page
from mlscale.reports.svg import heatmap, nice_ticks
from mlscale.store.records import Run
from mlscale.train.evaluation import evaluation_details


def _run(run_id: str, metrics: dict[str, float], **params: object) -> Run:
    return Run(
        id=run_id,
        kind="train",
        status="finished",
        params={"model": "lightgbm", "seed": 42} | params,
        metrics=metrics,
        dataset="loans@1",
        env={
            "python": "3.11.7",
            "host": "box",
            "cpus": 8,
            "cpu": "x86_64",
            "gpus": [],
            "git": {"commit": "a" * 40, "dirty": True},
            "peak_rss_mib": 412.3,
            "fit_seconds": 2.5,
            "model_version": "loans@3",
        },
        started_at=datetime(2025, 3, 4, 13, 22),
        ended_at=datetime(2025, 3, 4, 13, 23),
        duration_s=61.0,
        artifacts={"curves": "c" * 64},
    )


def _svgs(page: str) -> dict[str, str]:
    """Each plot of the page by its aria-label."""
    return {
        m.group(1): m.group(0)
        for m in re.finditer(r'<svg [^>]*aria-label="([^"]+)".*?</svg>', page, re.S)
    }


def test_a_classifier_page_draws_its_four_plots_and_the_learning_curve() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.6 + rng.uniform(0, 0.4, 500), 0, 1)
    details = evaluation_details("binary", y, np.c_[1 - p, p], ["repaid", "<b>default</b>"])
    run = _run("0123456789abcdef", {"auc": details["roc"][0]["auc"], "log_loss": 0.41})
    page = evaluation_page(run, details, {"valid_loss": [0.7, 0.6, 0.55, 0.52]})

    plots = _svgs(page)
    assert set(plots) == {
        "confusion matrix",
        "ROC curve",
        "precision-recall curve",
        "reliability diagram",
        "learning curve",
    }
    matrix = details["confusion_matrix"]["matrix"]
    assert plots["confusion matrix"].count("<rect") == 4
    assert f">{matrix[1][1]:,}</text>" in plots["confusion matrix"]
    assert plots["ROC curve"].count("<polyline") == 1
    assert f"AUC {details['roc'][0]['auc']:.3f}" in page
    assert plots["reliability diagram"].count("<circle") == len(details["calibration"]["bins"])
    assert details["calibration"]["verdict"] in page
    assert plots["learning curve"].count("<polyline") == 1
    # The run's facts: the model it produced, environment, params.
    assert "loans@3" in page and "a" * 40 + " (dirty)" in page and "412 MiB" in page
    assert "Run 01234567" in page and "1m 01s" in page
    # Offline and safe: nothing fetched, no script, labels escaped.
    assert "<script" not in page and "http" not in page
    assert "&lt;b&gt;default&lt;/b&gt;" in page and "<b>default" not in page


def test_a_multiclass_page_draws_a_curve_per_class() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    proba = rng.dirichlet(np.ones(3), 600) * 0.5 + np.eye(3)[y] * 0.5
    details = evaluation_details("multiclass", y, proba, ["a", "b", "c"])
    plots = _svgs(evaluation_page(_run("ffff0000", {}), details))
    assert plots["ROC curve"].count("<polyline") == 3
    assert plots["precision-recall curve"].count("<polyline") == 3
    assert plots["confusion matrix"].count("<rect") == 9
    assert "learning curve" not in plots


def test_a_regression_page_draws_the_residuals() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(100, 15, 800)
    details = evaluation_details("regression", y, y + rng.normal(0, 5, 800))
    page = evaluation_page(_run("abcdef012345", {"rmse": 5.0}), details, {"folds": []})
    plots = _svgs(page)
    assert set(plots) == {
        "residuals histogram",
        "predicted vs actual",
        "residuals by predicted value",
    }
    hist = details["histogram"]
    assert plots["residuals histogram"].count('class="bar"') == sum(c > 0 for c in hist["counts"])
    assert plots["predicted vs actual"].count("<circle") == 500  # the sample, not every row
    assert "a sample of 500 of the 800 rows" in page
    assert plots["residuals by predicted value"].count("<polygon") == 1  # the p10..p90 band


def test_a_run_without_an_evaluation_says_so() -> None:
    page = evaluation_page(_run("abc", {"auc": 0.8}), None, None)
    assert "no evaluation recorded" in page and "<svg" not in page


def test_runs_page_highlights_differing_params_and_overlays_curves(tmp_path: Path) -> None:
    a = _run("aaaa1111bbbb", {"auc": 0.81, "log_loss": 0.42}, hyperparameters={"num_leaves": 31})
    b = _run("cccc2222dddd", {"auc": 0.84, "log_loss": 0.45}, hyperparameters={"num_leaves": 63})
    curves = {
        a.id: {"valid_loss": [0.7, 0.6, 0.5]},
        b.id: {"folds": [{"valid_loss": [0.7, 0.55]}, {"valid_loss": [0.68, 0.5]}]},
    }
    page = runs_page([a, b], curves)
    assert '<tr class="diff"><th>hyperparameters.num_leaves</th>' in page
    assert '<td class="num">31</td><td class="num">63</td>' in page
    assert "2 parameters the same in every run" in page  # model and seed, folded away
    assert '<td class="num best">0.84</td>' in page  # higher AUC is better
    assert '<td class="num best">0.42</td>' in page  # lower log loss is better
    plot = _svgs(page)["learning curves"]
    assert plot.count("<polyline") == 3  # one run, plus a line per fold of the other
    assert "aaaa1111" in page and "cccc2222" in page and "<script" not in page

    out = write_page(tmp_path / "compare.html", page)
    assert out.read_text() == page and [p.name for p in tmp_path.iterdir()] == ["compare.html"]


def test_runs_page_without_curves_or_differences() -> None:
    same = [_run("aaaa1111", {"auc": 0.8}), _run("bbbb2222", {"auc": 0.8})]
    page = runs_page(same, {})
    assert "every parameter is the same" in page and "none of these runs recorded curves" in page


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [(0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]), (-3.2, 27, [0, 5, 10, 15, 20, 25]), (0.41, 0.43, None)],
)
def test_ticks_are_round_and_inside_the_range(lo: float, hi: float, ticks: list | None) -> None:
    found = nice_ticks(lo, hi)
    if ticks is not None:
        assert found == ticks
    assert all(lo <= t <= hi for t in found) and 3 <= len(found) <= 11


def test_heatmap_shades_rows_by_their_own_share() -> None:
    svg = heatmap([[90, 10], [1, 1]], ["big", "small"], label="m")
    fills = re.findall(r'fill="(#[0-9a-f]{6})"', svg)
    assert len(fills) == 4 and fills[2] == fills[3]  # 50% and 50% in the small row
    assert fills[0] != fills[2] and "90.0%" in svg and "50.0%" in svg


def test_reports_lists_its_public_names() -> None:
    import types

    import mlscale.reports as reports

    public = {
        n
        for n, v in vars(reports).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert public == set(reports.__all__)
