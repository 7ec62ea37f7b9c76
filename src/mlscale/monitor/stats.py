"""Drift statistics of two distributions, and their null variability at a given window size.

Every function takes what a summary holds (counts and sums on shared bins, samples), never
raw columns, so a report costs O(bins) whatever the traffic. Functions named ``*_binned`` accept a
2-D array of count vectors (one per row) as well, which is how :func:`null_quantiles` scores a few
hundred resampled windows in one numpy pass.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

EPS = 1e-4  # floor on bin shares so that an empty bin does not make PSI infinite
NULL_DRAWS = 200
NULL_QUANTILE = 0.99


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
    to calibrate :func:`wasserstein_means`, not to replace it.

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
    actual = np.asarray(actual, dtype=np.float64)
    n = actual.sum()
    if n == 0:
        return 0.0, 1.0
    share = np.maximum(_shares(expected), EPS)
    share = share / share.sum()
    stat = float(np.sum((actual - n * share) ** 2 / (n * share)))
    dof = max(int(np.count_nonzero(np.asarray(expected) + actual)) - 1, 1)
    return stat, chi2_sf(stat, dof)


# p-values without scipy.stats, whose import alone (~1 s) would dwarf a report.


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square(dof): the regularized upper incomplete gamma Q(dof/2, x/2).

    >>> round(chi2_sf(3.841, 1), 3), round(chi2_sf(0.0, 4), 3)
    (0.05, 1.0)
    """
    a, z = dof / 2.0, x / 2.0
    if z <= 0:
        return 1.0
    log_prefix = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:  # the series for P converges fast here
        term = total = 1.0 / a
        k = a
        for _ in range(10_000):
            k += 1
            term *= z / k
            total += term
            if term < total * 1e-15:
                break
        return float(min(max(1.0 - total * math.exp(log_prefix), 0.0), 1.0))
    # Lentz's continued fraction for Q.
    tiny = 1e-300
    b = z + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return float(min(max(math.exp(log_prefix) * h, 0.0), 1.0))


def kolmogorov_sf(x: float) -> float:
    """P(K >= x) for Kolmogorov's distribution (the asymptotic KS law).

    >>> round(kolmogorov_sf(1.358), 3), kolmogorov_sf(0.0)
    (0.05, 1.0)
    """
    if x < 0.2:
        return 1.0
    k = np.arange(1, 101)
    return float(min(max(2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * k * k * x * x)), 0.0), 1.0))


# --- from fine bins and samples ---


def wasserstein_means(
    ref_counts: np.ndarray,
    ref_sums: np.ndarray,
    cur_counts: np.ndarray,
    cur_sums: np.ndarray,
    scale: float,
) -> float:
    """Wasserstein-1 distance / ``scale`` of two binned distributions, each bin's mass placed
    at the mean of its values (``sums / counts``): exact up to the spread within a bin.

    >>> wasserstein_means(np.array([2, 0]), np.array([2.0, 0]), np.array([0, 2]),
    ...                   np.array([0, 8.0]), 1.0)
    3.0
    """
    a, b = ref_counts > 0, cur_counts > 0
    if not a.any() or not b.any():
        return 0.0
    points = np.concatenate([ref_sums[a] / ref_counts[a], cur_sums[b] / cur_counts[b]])
    weights = np.concatenate([ref_counts[a] / ref_counts.sum(), -cur_counts[b] / cur_counts.sum()])
    order = np.argsort(points, kind="stable")
    cdf_gap = np.abs(np.cumsum(weights[order]))[:-1]
    return float(np.sum(cdf_gap * np.diff(points[order])) / scale)


def ks_exact(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic of samples and its asymptotic p-value.

    >>> ks_exact(np.arange(100.0), np.arange(100.0))
    (0.0, 1.0)
    >>> d, p = ks_exact(np.arange(100.0), np.arange(50.0, 150.0))
    >>> d, p < 0.001
    (0.5, True)
    """
    if not len(reference) or not len(current):
        return 0.0, 1.0
    a, b = np.sort(reference), np.sort(current)
    points = np.concatenate([a, b])
    gap = np.abs(
        np.searchsorted(a, points, side="right") / len(a)
        - np.searchsorted(b, points, side="right") / len(b)
    )
    d = float(gap.max())
    en = len(a) * len(b) / (len(a) + len(b))
    return d, kolmogorov_sf(math.sqrt(en) * d)


# --- null variability ---


def null_quantiles(
    reference: np.ndarray,
    window_rows: int,
    *,
    coarse_starts: np.ndarray | None = None,
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
    pairs are what noise alone produces at these sizes. ``reference``: the counts on the bins
    the CDF statistics use (the first ``values`` bins hold values; the rest, such as missing,
    do not), then the missing count; ``coarse_starts``: how those bins sum into the coarser
    bins of PSI and Jensen-Shannon (default: the same bins); ``edges`` and ``scale``: for the
    Wasserstein distance. ``seed`` makes the result repeatable.

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
    if coarse_starts is not None:  # the value bins summed into coarse ones; the rest kept
        starts = np.concatenate([coarse_starts, np.arange(k, len(reference))])
        rc, cc = np.add.reduceat(r, starts, axis=1), np.add.reduceat(c, starts, axis=1)
    else:
        rc, cc = r, c
    out = {
        "psi": psi(rc, cc),
        "js": js_distance(rc, cc),
        "ks": ks_binned(r[:, :k], c[:, :k]),
        "wasserstein": (
            wasserstein_binned(r[:, :k], c[:, :k], edges, scale)
            if edges is not None
            else np.zeros(draws)
        ),
    }
    return {name: float(np.quantile(v, q)) for name, v in out.items()}
