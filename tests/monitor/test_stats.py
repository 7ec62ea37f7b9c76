"""Calibrated thresholds: noise does not flag at any window size, a real shift does."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import chi2, kstwo

from mlscale.models.signature import Feature, Signature
from mlscale.monitor import Summarizer, build_reference, compare
from mlscale.monitor.stats import chi2_sf, kolmogorov_sf, null_quantiles, psi

SIG = Signature(
    "regression",
    "y",
    [Feature("x", "float64", "numeric"), Feature("c", "string", "categorical", ["a", "b", "c"])],
)
CATS = np.array(["a", "b", "c"])


def rows(
    n: int, seed: int, shift: float = 0.0, mix: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(shift, 1.0, n), "c": CATS[rng.choice(3, n, p=mix)]})


@pytest.fixture(scope="module")
def reference():  # type: ignore[no-untyped-def]
    return build_reference(rows(20_000, seed=0), SIG)


def verdicts(reference, table: pa.Table, **methods: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    summary = Summarizer(reference, feature_prefix="", outputs=False).summarize(table)[0]
    return {f.feature: f.verdict for f in compare(reference, summary, **methods).features}


def test_a_million_rows_of_the_same_distribution_do_not_flag(reference) -> None:  # type: ignore[no-untyped-def]
    same = rows(1_000_000, seed=1)
    for method in ("psi", "wasserstein", "ks", "jensen_shannon"):
        assert verdicts(reference, same, numeric_method=method) == {"x": "stable", "c": "stable"}
    summary = Summarizer(reference, feature_prefix="", outputs=False).summarize(same)[0]
    report = compare(reference, summary)
    # Raw p-values at this size flag tiny differences; the verdicts above do not rest on them.
    assert report.features[0].ks_exact is not None and report.features[1].chi_square is not None


def test_a_real_shift_flags_at_a_million_rows_and_at_two_hundred(reference) -> None:  # type: ignore[no-untyped-def]
    for n in (1_000_000, 200):
        shifted = rows(n, seed=2, shift=1.0, mix=(0.2, 0.3, 0.5))
        for method in ("psi", "wasserstein", "ks"):
            assert verdicts(reference, shifted, numeric_method=method) == {
                "x": "drift",
                "c": "drift",
            }, (n, method)


def test_small_windows_do_not_flag_noise_that_fixed_thresholds_would(reference) -> None:  # type: ignore[no-untyped-def]
    fixed = calibrated = 0
    for seed in range(40):
        summary = Summarizer(reference, feature_prefix="", outputs=False).summarize(
            rows(25, seed=100 + seed)
        )[0]
        for f in compare(reference, summary).features:
            fixed += f.score >= {"numeric": 0.2, "categorical": 0.1}[f.kind]
            calibrated += f.verdict == "drift"
            assert f.null_level > 0
    assert fixed >= 40  # 25 rows on ~20 bins: PSI alone flags most windows
    assert calibrated <= 2  # about 1% per column at the 99th-percentile null level


def test_null_levels_shrink_with_the_window() -> None:
    ref = np.array([100, 2_000, 5_000, 2_000, 900])
    levels = [null_quantiles(ref, n, edges=np.arange(4.0), values=5)["psi"] for n in (50, 5_000)]
    assert levels[0] > 10 * levels[1]
    # The statistic itself between the two reference-shaped halves is within the null level.
    assert psi(ref, ref) == 0.0


@pytest.mark.parametrize(("x", "dof"), [(0.3, 1), (3.84, 1), (12.0, 5), (90.0, 60), (400.0, 300)])
def test_chi2_survival_matches_scipy(x: float, dof: int) -> None:
    assert chi2_sf(x, dof) == pytest.approx(chi2.sf(x, dof), rel=1e-9, abs=1e-12)


def test_kolmogorov_survival_matches_scipy() -> None:
    n = 100_000  # the finite-n law converges to Kolmogorov's
    for x in (0.5, 1.0, 1.36, 2.0):
        assert kolmogorov_sf(x) == pytest.approx(kstwo.sf(x / np.sqrt(n), n), abs=2e-3)
