"""Per-feature drift of new data against a model version's training profile.

Numeric features are binned on the reference's own cut points (deciles of the training data) and
compared with PSI; categorical features by Jensen-Shannon distance over the reference categories,
plus one bin for unseen values. Missing values are a bin of their own in both, so a rise in missing
values is drift too. Thresholds (documented, commonly used defaults):

- PSI: < 0.1 stable, 0.1-0.2 warning, >= 0.2 drift;
- Jensen-Shannon distance (base 2, 0..1): < 0.05 stable, 0.05-0.1 warning, >= 0.1 drift.

Unlike p-value tests, both are effect sizes: they do not flag every column of a million-row window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.datasets import read_profile
from mlscale.data.pipeline import Pipeline
from mlscale.data.profile import Profile, bin_index, category_values, numeric_values
from mlscale.data.sources.duck import open_file
from mlscale.errors import DataError
from mlscale.models.signature import Signature
from mlscale.store.records import ModelVersion

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

PSI_WARN, PSI_DRIFT = 0.1, 0.2
JS_WARN, JS_DRIFT = 0.05, 0.1
_EPS = 1e-4  # floor on bin shares so that an empty bin does not make PSI infinite


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    method: str  # the statistic the verdict is based on
    score: float
    psi: float
    js: float
    verdict: str  # "stable" | "warning" | "drift"
    reference_missing: float
    current_missing: float


@dataclass(frozen=True)
class DriftReport:
    model: str
    rows: int
    rows_unreadable: int
    features: list[FeatureDrift]

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.verdict == "drift"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rows": self.rows,
            "rows_unreadable": self.rows_unreadable,
            "drifted": self.drifted,
            "share_drifted": len(self.drifted) / len(self.features) if self.features else 0.0,
            "features": [asdict(f) for f in self.features],
        }


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins.

    >>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
    0.0
    >>> psi(np.array([90, 10]), np.array([10, 90])) > 0.2
    True
    """
    e = np.maximum(expected / max(expected.sum(), 1), _EPS)
    a = np.maximum(actual / max(actual.sum(), 1), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, between 0 and 1) of two count vectors.

    >>> js_distance(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    p = expected / max(expected.sum(), 1)
    q = actual / max(actual.sum(), 1)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


class _Counter:
    """Counts of one feature on the reference's bins: value bins, then unseen (categorical), missing."""

    def __init__(self, stats: dict[str, Any]) -> None:
        self.kind = stats["kind"]
        if self.kind == "categorical":
            self.categories = list(stats["categories"])
            self.value_set = pa.array(self.categories, pa.string())
            self.reference = np.array(
                [*stats["categories"].values(), stats.get("other", 0), stats["missing"]], float
            )
        else:
            self.cuts = stats.get("histogram", {}).get("cuts", [])
            counts = stats.get("histogram", {}).get("counts", [0])
            self.reference = np.array([*counts, stats["missing"]], dtype=float)
        self.current = np.zeros_like(self.reference)

    def update(self, values: pa.Array | pa.ChunkedArray) -> None:
        missing = values.null_count
        if self.kind == "categorical":
            codes = pc.index_in(pc.drop_null(category_values(values)), value_set=self.value_set)
            codes = np.asarray(pc.fill_null(codes, len(self.categories)), dtype=np.int64)
        else:
            codes = bin_index(numeric_values(values), self.cuts)
        self.current[:-1] += np.bincount(codes, minlength=len(self.current) - 1)
        self.current[-1] += missing


def compare(reference: Profile, counters: dict[str, _Counter]) -> list[FeatureDrift]:
    results = []
    for name, counter in counters.items():
        ref, cur = counter.reference, counter.current
        p, j = psi(ref, cur), js_distance(ref, cur)
        if counter.kind == "categorical":
            method, score, warn, drift = "jensen_shannon", j, JS_WARN, JS_DRIFT
        else:
            method, score, warn, drift = "psi", p, PSI_WARN, PSI_DRIFT
        verdict = "drift" if score >= drift else "warning" if score >= warn else "stable"
        results.append(
            FeatureDrift(
                feature=name,
                kind=counter.kind,
                method=method,
                score=score,
                psi=p,
                js=j,
                verdict=verdict,
                reference_missing=float(ref[-1] / max(ref.sum(), 1)),
                current_missing=float(cur[-1] / max(cur.sum(), 1)),
            )
        )
    return results


def drift_for_file(ws: Workspace, version: ModelVersion, path: Path) -> DriftReport:
    """Stream ``path`` once, counting each feature on the reference bins, then compare."""
    signature = Signature.from_dict(version.signature)
    reference = read_profile(ws, version.profile_sha)
    counters = {n: _Counter(reference.columns[n]) for n in signature.feature_names}
    features = {f.name: f.type for f in signature.features}
    rows = unreadable = 0
    with Pipeline(open_file(path), types=features) as pipeline:
        for batch in pipeline.batches():
            rows += batch.good.num_rows
            unreadable += batch.rejected.num_rows if batch.rejected is not None else 0
            for name, counter in counters.items():
                counter.update(batch.good.column(name))
    if rows == 0:
        raise DataError(f"{path}: no readable rows to compare")
    return DriftReport(version.ref, rows, unreadable, compare(reference, counters))
