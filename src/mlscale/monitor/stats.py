"""Drift statistics of two distributions, and their null variability at a given window size.

Every function takes what a summary holds (counts on shared bins, KLL sketches, samples), never
raw columns, so a report costs O(bins) whatever the traffic. Functions named ``*_binned`` accept a
2-D array of count vectors (one per row) as well, which is how :func:`null_quantiles` scores a few
hundred resampled windows in one numpy pass.
"""

from __future__ import annotations

import zlib

import numpy as np
from datasketches import kll_doubles_sketch

EPS = 1e-4  # floor on bin shares so that an empty bin does not make PSI infinite
NULL_DRAWS = 200
NULL_QUANTILE = 0.99
_GRID = 200  # points of the quantile functions compared by the sketch statistics


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    return counts / np.maximum(total, 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float | np.ndarray:
    """Population stability index of count vectors over the same bins.

    >>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
    0.0
    >>> psi(np.array([90, 10]), np.array([10, 90])) > 0.2
    True
    """
    e = np.maximum(_shares(expected), EPS)
    a = np.maximum(_shares(actual), EPS)
    out = np.sum((a - e) * np.log(a / e), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def js_distance(expected: np.ndarray, actual: np.ndarray) -> float | np.ndarray:
    """Jensen-Shannon distance (base 2, between 0 and 1) of count vectors.

    >>> js_distance(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    p, q = _shares(expected), _shares(actual)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / np.where(m > 0, m, 1)), 0.0).sum(axis=-1)
        kl_q = np.where(q > 0, q * np.log2(q / np.where(m > 0, m, 1)), 0.0).sum(axis=-1)
    out = np.sqrt(np.maximum((kl_p + kl_q) / 2, 0.0))
    return float(out) if np.ndim(out) == 0 else out


def ks_binned(expected: np.ndarray, actual: np.ndarray) -> float | np.ndarray:
    """Largest gap between the two CDFs at the bin edges (values bins only, no missing bin).

    >>> ks_binned(np.array([10, 10, 0]), np.array([0, 10, 10]))
    0.5
    """
    gap = np.abs(np.cumsum(_shares(expected), axis=-1) - np.cumsum(_shares(actual), axis=-1))
    out = gap.max(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def wasserstein_binned(
    expected: np.ndarray, actual: np.ndarray, edges: np.ndarray, scale: float
) -> float | np.ndarray:
    """Earth mover's distance of counts on ``len(edges) + 1`` bins, divided by ``scale``.

    Mass is taken to sit at the bin edges, so this is exact only up to the bin width; it serves
    to calibrate the sketch statistic, not to replace it.

    >>> round(wasserstein_binned(np.array([0, 10, 0, 0]), np.array([0, 0, 10, 0]),
    ...                          np.array([0.0, 1.0, 2.0]), 1.0), 6)
    1.0
    """
    cdf_gap = np.abs(np.cumsum(_shares(expected), axis=-1) - np.cumsum(_shares(actual), axis=-1))
    widths = np.diff(edges)
    out = (cdf_gap[..., : len(widths)] * widths).sum(axis=-1) / scale
    return float(out) if np.ndim(out) == 0 else out


def chi_square(expected: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square of ``actual`` against the shares of ``expected``, and its p-value.

    >>> stat, p = chi_square(np.array([500, 500]), np.array([50, 50]))
    >>> (stat, p)
    (0.0, 1.0)
    """
    from scipy.stats import chi2

    actual = np.asarray(actual, dtype=np.float64)
    n = actual.sum()
    if n == 0:
        return 0.0, 1.0
    share = np.maximum(_shares(expected), EPS)
    share = share / share.sum()
    stat = float(np.sum((actual - n * share) ** 2 / (n * share)))
    dof = max(int(np.count_nonzero(np.asarray(expected) + actual)) - 1, 1)
    return stat, float(chi2.sf(stat, dof))


# --- from sketches and samples ---


def _quantile_grid(kll: kll_doubles_sketch) -> np.ndarray:
    return np.array(kll.get_quantiles(list((np.arange(_GRID) + 0.5) / _GRID)))


def ks_sketch(reference: kll_doubles_sketch, current: kll_doubles_sketch) -> float:
    """Kolmogorov-Smirnov distance of two KLL sketches (within their rank error, ~1.3% at k=200).

    >>> from datasketches import kll_doubles_sketch
    >>> a, b = kll_doubles_sketch(200), kll_doubles_sketch(200)
    >>> a.update(np.arange(1000.0)); b.update(np.arange(500.0, 1500.0))
    >>> round(ks_sketch(a, b), 1)
    0.5
    """
    if reference.is_empty() or current.is_empty():
        return 0.0
    points = np.unique(np.concatenate([_quantile_grid(reference), _quantile_grid(current)]))
    gap = np.abs(
        np.array(reference.get_cdf(list(points))[:-1])
        - np.array(current.get_cdf(list(points))[:-1])
    )
    return float(gap.max())


def wasserstein_sketch(
    reference: kll_doubles_sketch, current: kll_doubles_sketch, scale: float
) -> float:
    """Wasserstein-1 distance of two KLL sketches (mean gap of their quantile functions) / scale.

    >>> from datasketches import kll_doubles_sketch
    >>> a, b = kll_doubles_sketch(200), kll_doubles_sketch(200)
    >>> a.update(np.arange(1000.0)); b.update(np.arange(1000.0) + 100)
    >>> round(wasserstein_sketch(a, b, 100.0), 1)
    1.0
    """
    if reference.is_empty() or current.is_empty():
        return 0.0
    return float(np.mean(np.abs(_quantile_grid(reference) - _quantile_grid(current))) / scale)


def ks_exact(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value on samples (scipy's ``ks_2samp``).

    >>> ks_exact(np.arange(100.0), np.arange(100.0))
    (0.0, 1.0)
    """
    from scipy.stats import ks_2samp

    if not len(reference) or not len(current):
        return 0.0, 1.0
    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


# --- null variability ---


def null_quantiles(
    reference: np.ndarray,
    window_rows: int,
    *,
    values: int | None = None,
    edges: np.ndarray | None = None,
    scale: float = 1.0,
    seed: str = "",
    draws: int = NULL_DRAWS,
    q: float = NULL_QUANTILE,
) -> dict[str, float]:
    """The ``q`` quantile of each statistic between two samples of the reference's own distribution.

    A reference of ``reference.sum()`` rows and a window of ``window_rows`` rows are both drawn
    (multinomially) from the reference's bin shares, ``draws`` times; the statistics of those
    pairs are what noise alone produces at these sizes. ``values``: how many leading bins hold
    values (the rest: unseen, missing), for the CDF statistics; ``edges`` and ``scale``: for the
    binned Wasserstein distance of numeric features. ``seed`` makes the result repeatable.

    >>> ref = np.array([1000, 3000, 4000, 2000])
    >>> small, large = null_quantiles(ref, 100), null_quantiles(ref, 1_000_000)
    >>> small["psi"] > 10 * large["psi"]
    True
    """
    reference = np.asarray(reference, dtype=np.int64)
    n_ref = int(reference.sum())
    if n_ref == 0 or window_rows <= 0:
        return {"psi": 0.0, "js": 0.0, "ks": 0.0, "wasserstein": 0.0}
    rng = np.random.default_rng(zlib.crc32(f"{seed}:{window_rows}".encode()))
    p = reference / n_ref
    r = rng.multinomial(n_ref, p, size=draws)
    c = rng.multinomial(window_rows, p, size=draws)
    k = len(reference) if values is None else values
    out = {
        "psi": psi(r, c),
        "js": js_distance(r, c),
        "ks": ks_binned(r[:, :k], c[:, :k]),
        "wasserstein": (
            wasserstein_binned(r[:, :k], c[:, :k], edges, scale)
            if edges is not None
            else np.zeros(draws)
        ),
    }
    return {name: float(np.quantile(v, q)) for name, v in out.items()}
