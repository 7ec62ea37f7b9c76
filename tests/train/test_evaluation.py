"""Evaluation details on data whose answers are known: perfect models, sklearn, numpy."""

import itertools
import json

import numpy as np
import pytest
from sklearn import metrics

from mlscale.train.evaluation import CURVE_POINTS, SCATTER_POINTS, evaluation_details


def _binary(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that are calibrated by construction: y is drawn from them."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(0, 2, n)))
    return (rng.uniform(size=n) < p).astype(np.int64), p


def test_a_perfect_classifier_has_auc_1_and_a_diagonal_confusion_matrix() -> None:
    y = np.array([0, 1, 2, 1, 0, 2, 2, 1])
    proba = np.eye(3)[y] * 0.8 + 0.2 / 3
    details = evaluation_details("multiclass", y, proba, ["a", "b", "c"])
    matrix = np.array(details["confusion_matrix"]["matrix"])
    assert details["confusion_matrix"]["labels"] == ["a", "b", "c"]
    assert (matrix == np.diag([2, 3, 3])).all()
    assert [c["auc"] for c in details["roc"]] == [1.0, 1.0, 1.0]
    assert [c["average_precision"] for c in details["pr"]] == [1.0, 1.0, 1.0]
    assert [c["class"] for c in details["roc"]] == ["a", "b", "c"]

    y2 = np.array([0, 1, 1, 0])
    binary = evaluation_details("binary", y2, np.c_[1 - y2, y2] * 0.9 + 0.05, [False, True])
    assert binary["confusion_matrix"]["matrix"] == [[2, 0], [0, 2]]
    assert [(c["class"], c["auc"]) for c in binary["roc"]] == [(True, 1.0)]


def test_figures_match_sklearn_and_curves_are_thinned() -> None:
    y, p = _binary()
    details = evaluation_details("binary", y, np.c_[1 - p, p], ["no", "yes"])
    roc, pr = details["roc"][0], details["pr"][0]
    assert roc["auc"] == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-6)
    assert pr["average_precision"] == pytest.approx(metrics.average_precision_score(y, p), abs=1e-6)
    assert pr["prevalence"] == pytest.approx(y.mean(), abs=1e-6)
    assert 50 < len(roc["fpr"]) <= CURVE_POINTS and len(roc["fpr"]) == len(roc["tpr"])
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert len(pr["recall"]) <= CURVE_POINTS and pr["recall"][-1] == 0.0
    expected = metrics.confusion_matrix(y, (p >= 0.5).astype(int))
    assert details["confusion_matrix"]["matrix"] == expected.tolist()
    cal = details["calibration"]
    assert cal["brier"] == pytest.approx(metrics.brier_score_loss(y, p), abs=1e-6)
    assert sum(b["count"] for b in cal["bins"]) == len(y)


def test_calibration_passes_a_calibrated_model_and_flags_a_miscalibrated_one() -> None:
    y, p = _binary()
    good = evaluation_details("binary", y, np.c_[1 - p, p])["calibration"]
    assert good["well_calibrated"] and good["ece"] <= good["threshold"]
    assert good["verdict"].startswith("well calibrated")

    squashed = 0.5 + (p - 0.5) * 0.4  # right order, timid probabilities: AUC unchanged
    bad = evaluation_details("binary", y, np.c_[1 - squashed, squashed])
    auc = metrics.roc_auc_score(y, p)
    assert auc > 0.8 and bad["roc"][0]["auc"] == pytest.approx(auc, abs=1e-6)
    cal = bad["calibration"]
    assert not cal["well_calibrated"] and cal["ece"] > cal["threshold"] >= 0.05
    assert "not well calibrated (under-confident)" in cal["verdict"]

    # The ECE is the row-weighted gap between mean prediction and frequency in each bin.
    gap = sum(b["count"] * abs(b["mean_predicted"] - b["observed"]) for b in cal["bins"])
    assert cal["ece"] == pytest.approx(gap / len(y), abs=1e-5)


def test_a_small_holdout_is_not_flagged_for_sampling_noise() -> None:
    y, p = _binary(n=120, seed=3)
    cal = evaluation_details("binary", y, np.c_[1 - p, p])["calibration"]
    assert cal["noise_ece"] > 0.03 and cal["threshold"] > 0.05
    assert cal["well_calibrated"]


def test_multiclass_calibration_checks_the_confidence_of_the_predicted_class() -> None:
    rng = np.random.default_rng(1)
    n, k = 4_000, 3
    proba = rng.dirichlet(np.ones(k) * 0.7, n)
    y = np.array([rng.choice(k, p=row) for row in proba])
    cal = evaluation_details("multiclass", y, proba)["calibration"]
    assert cal["scored"] == "predicted class confidence" and cal["well_calibrated"]
    onehot = np.eye(k)[y]
    assert cal["brier"] == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)), abs=1e-6)
    sharpened = proba**4 / (proba**4).sum(axis=1, keepdims=True)
    worse = evaluation_details("multiclass", y, sharpened)["calibration"]
    assert not worse["well_calibrated"] and "over-confident" in worse["verdict"]


def test_a_class_missing_from_the_rows_gets_no_curve() -> None:
    y = np.array([0, 0, 1, 1, 0])
    proba = np.array([[0.7, 0.2, 0.1]] * 5)
    details = evaluation_details("multiclass", y, proba, ["a", "b", "c"])
    assert [c["class"] for c in details["roc"]] == ["a", "b"]
    assert details["confusion_matrix"]["matrix"][2] == [0, 0, 0]


def test_regression_residuals_match_numpy() -> None:
    rng = np.random.default_rng(2)
    n = 2_000
    y = rng.normal(50, 10, n)
    predicted = y + rng.standard_t(3, n) * 2 + 0.5
    details = evaluation_details("regression", y, predicted)
    residual = y - predicted
    res = details["residuals"]
    assert res["mean"] == pytest.approx(residual.mean(), abs=1e-6)
    assert res["std"] == pytest.approx(residual.std(), abs=1e-6)
    assert res["rmse"] == pytest.approx(np.sqrt(np.mean(residual**2)), abs=1e-6)
    assert res["p50"] == pytest.approx(np.median(residual), abs=1e-6)
    assert (res["min"], res["max"]) == pytest.approx((residual.min(), residual.max()), abs=1e-6)
    hist = details["histogram"]
    assert sum(hist["counts"]) + hist["below"] + hist["above"] == n
    assert hist["below"] > 0 and hist["above"] > 0  # heavy tails beyond p01..p99
    expected, _ = np.histogram(
        residual, bins=len(hist["counts"]), range=np.quantile(residual, [0.01, 0.99])
    )
    assert hist["counts"] == expected.tolist()
    scatter = details["scatter"]
    assert len(scatter["predicted"]) == len(scatter["actual"]) == SCATTER_POINTS
    assert scatter["sampled"]
    bins = details["by_predicted"]
    assert sum(b["count"] for b in bins) == n and len(bins) == 10
    assert all(a["upper"] == b["lower"] for a, b in itertools.pairwise(bins))
    assert np.mean([b["mean"] for b in bins]) == pytest.approx(residual.mean(), abs=0.05)


def test_details_are_deterministic_and_plain_json() -> None:
    y, p = _binary(n=800)
    a = json.dumps(evaluation_details("binary", y, np.c_[1 - p, p], ["no", "yes"]))
    b = json.dumps(evaluation_details("binary", y, np.c_[1 - p, p], ["no", "yes"]))
    assert a == b
    yr = np.linspace(0, 1, 900)
    r1 = json.dumps(evaluation_details("regression", yr, yr**2))
    assert r1 == json.dumps(evaluation_details("regression", yr, yr**2))


def test_inputs_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="3 targets but 2 predictions"):
        evaluation_details("regression", np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="2 class labels but 3 probability columns"):
        evaluation_details("multiclass", np.zeros(2), np.ones((2, 3)) / 3, ["a", "b"])
    with pytest.raises(ValueError, match="no rows"):
        evaluation_details("binary", np.zeros(0), np.zeros((0, 2)))
