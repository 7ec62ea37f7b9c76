"""A model version's reference: what its training data and predictions looked like, for drift.

Numeric columns get fixed bin edges: ``edges[0]`` sits just below the reference minimum and
``edges[-1]`` is its maximum, so bin 0 holds values below the training range and the last bin
values above it (out of range), and in between each bin holds ``edges[i-1] < v <= edges[i]``. The
inner edges are the 1/20 .. 19/20 quantiles, or every distinct value when there are at most
``DISCRETE_VALUES`` (a count or a code gets a bin per value); PSI and Jensen-Shannon use these
bins. Finer bins (the same edges plus the 1/200 .. 199/200 quantiles) carry counts and sums:
Kolmogorov-Smirnov is read off their cumulative counts, Wasserstein off their masses placed at
each bin's mean. The reference also keeps the missing count, mean/std/min/max and a uniform
sample of ``REFERENCE_SAMPLE`` values (for an exact KS test). Categorical columns keep each
category's count, the count of values beyond the kept categories (``unseen``) and the missing
count.

Predictions are columns too, named as in the prediction log: ``prediction`` (the label of a
classifier, the value of a regressor) and ``proba.<class>`` (the positive class only for a binary
classifier, every class otherwise).

Live windows are counted on exactly these bins (:mod:`mlscale.monitor.summary`), so comparing a
window with its reference costs O(bins). :func:`build_reference` makes one from the training rows
(the trainer stores its JSON in the artifact store); :func:`load_reference` falls back to deriving
one from the plain training profile of versions trained before references existed (from its
exact value counts, else its KLL sketch).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.data.profile import MAX_CATEGORIES, Profile, category_values, numeric_values
from mlscale.data.sketches import kll_from_text
from mlscale.errors import IntegrityError, NotFoundError, SchemaError
from mlscale.models.signature import Signature

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion
    from mlscale.workspace import Workspace

FORMAT = "mlscale.reference/1"
NUMERIC_BINS = 20
FINE_BINS = 200
DISCRETE_VALUES = 30
REFERENCE_SAMPLE = 5_000
FEATURE_PREFIX = "f."  # feature columns in the prediction log


@dataclass
class NumericReference:
    """Bins, counts and a sample of one numeric column (see the module docstring)."""

    edges: np.ndarray  # coarse bins, for PSI and Jensen-Shannon
    counts: np.ndarray  # len(edges) + 1
    missing: int
    mean: float
    std: float
    min: float
    max: float
    fine_edges: np.ndarray  # the coarse edges and the 1/200 .. 199/200 quantiles, for KS and W
    fine_counts: np.ndarray  # len(fine_edges) + 1
    fine_sums: np.ndarray  # the sum of the values in each fine bin (their means place the mass)
    sample: np.ndarray | None
    kind: str = "numeric"

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    @property
    def scale(self) -> float:
        """What Wasserstein distances are divided by: the std (the range, or 1, if it is 0)."""
        if self.std > 0:
            return self.std
        return float(self.max - self.min) if self.max > self.min else 1.0

    @property
    def coarse_starts(self) -> np.ndarray:
        """For ``np.add.reduceat``: the first fine bin of each coarse bin."""
        return np.concatenate([[0], np.searchsorted(self.fine_edges, self.edges) + 1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "fine_edges": self.fine_edges.tolist(),
            "fine_counts": self.fine_counts.tolist(),
            "fine_sums": self.fine_sums.tolist(),
            "sample": _b64(self.sample.astype("<f8").tobytes())
            if self.sample is not None
            else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericReference:
        return cls(
            edges=np.array(d["edges"], dtype=np.float64),
            counts=np.array(d["counts"], dtype=np.int64),
            missing=d["missing"],
            mean=d["mean"],
            std=d["std"],
            min=d["min"],
            max=d["max"],
            fine_edges=np.array(d["fine_edges"], dtype=np.float64),
            fine_counts=np.array(d["fine_counts"], dtype=np.int64),
            fine_sums=np.array(d["fine_sums"], dtype=np.float64),
            sample=(
                np.frombuffer(base64.b64decode(d["sample"]), dtype="<f8").copy()
                if d["sample"]
                else None
            ),
        )


def fine_histogram(xs: np.ndarray, fine_edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts and sums of the *sorted* values ``xs`` on the bins of ``fine_edges``.

    >>> fine_histogram(np.array([1.0, 2.0, 2.0, 9.0]), np.array([0.5, 2.0, 5.0]))
    (array([0, 3, 0, 1]), array([0., 5., 0., 9.]))
    """
    ends = np.concatenate([[0], np.searchsorted(xs, fine_edges, side="right"), [len(xs)]])
    sums = np.concatenate([[0.0], np.cumsum(xs)])[ends]
    return np.diff(ends), np.diff(sums)


@dataclass
class CategoricalReference:
    """Category counts of one column; ``counts`` has one more entry than ``categories``: unseen."""

    categories: list[str]
    counts: np.ndarray
    missing: int
    labels: list[Any] | None = None  # typed values to match (class labels), else the strings
    kind: str = "categorical"

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "categories": self.categories,
            "counts": self.counts.tolist(),
            "missing": self.missing,
            "labels": self.labels,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalReference:
        return cls(d["categories"], np.array(d["counts"], np.int64), d["missing"], d["labels"])


ColumnReference = NumericReference | CategoricalReference


@dataclass
class Reference:
    """The reference of every feature and output of one model version; JSON round-trips.

    >>> from mlscale.models.signature import Feature
    >>> sig = Signature(task="regression", target="y", features=[
    ...     Feature("x", "float64", "numeric"), Feature("c", "string", "categorical", ["a", "b"])])
    >>> table = pa.table({"x": np.arange(1000.0), "c": ["a", "b"] * 500})
    >>> ref = build_reference(table, sig, np.arange(1000.0) / 10)
    >>> ref.rows, len(ref.features["x"].edges), ref.features["c"].counts.tolist()
    (1000, 21, [500, 500, 0])
    >>> Reference.from_json(ref.to_json()).outputs["prediction"].max
    99.9
    """

    task: str
    rows: int
    features: dict[str, ColumnReference]
    outputs: dict[str, ColumnReference]
    source: str = "training"  # "training" (built from rows) or "profile" (derived from one)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "task": self.task,
                "rows": self.rows,
                "source": self.source,
                "features": {k: v.to_dict() for k, v in self.features.items()},
                "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Reference:
        obj = json.loads(data)
        if obj.get("format") != FORMAT:
            raise SchemaError(
                f"not a drift reference: format {obj.get('format')!r}, expected {FORMAT!r}"
            )
        return cls(
            task=obj["task"],
            rows=obj["rows"],
            source=obj["source"],
            features={k: _column_from_dict(v) for k, v in obj["features"].items()},
            outputs={k: _column_from_dict(v) for k, v in obj["outputs"].items()},
        )


def _column_from_dict(d: dict[str, Any]) -> ColumnReference:
    if d["kind"] == "numeric":
        return NumericReference.from_dict(d)
    return CategoricalReference.from_dict(d)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- building ---


def build_reference(
    table: pa.Table,
    signature: Signature,
    predictions: np.ndarray | None = None,
    *,
    seed: int = 0,
) -> Reference:
    """The reference of the training rows ``table`` (typed feature columns) and, optionally, of the
    model's raw outputs on them: class probabilities ``(rows, classes)``, or values for regression.
    """
    rng = np.random.default_rng(seed)
    features: dict[str, ColumnReference] = {}
    for f in signature.features:
        if f.name not in table.column_names:
            raise SchemaError(f"reference: feature {f.name!r} is not a column of the table")
        column = table.column(f.name)
        if f.kind == "categorical":
            features[f.name] = categorical_reference(column, known=f.categories)
        else:
            features[f.name] = numeric_reference(numeric_values(column), column.null_count, rng=rng)
    outputs = {} if predictions is None else _output_references(signature, predictions, rng)
    return Reference(signature.task, table.num_rows, features, outputs)


def output_columns(signature: Signature) -> list[str]:
    """The prediction-log columns of a model's outputs that the reference describes."""
    if signature.task == "regression":
        return ["prediction"]
    classes = signature.classes[-1:] if len(signature.classes) == 2 else signature.classes
    return ["prediction", *(f"proba.{c}" for c in classes)]


def _output_references(
    signature: Signature, predictions: np.ndarray, rng: np.random.Generator
) -> dict[str, ColumnReference]:
    out = np.asarray(predictions, dtype=np.float64)
    if signature.task == "regression":
        return {"prediction": numeric_reference(out.reshape(-1), 0, rng=rng)}
    if out.ndim != 2 or out.shape[1] != len(signature.classes):
        raise SchemaError(
            f"reference: expected class probabilities of shape (rows, {len(signature.classes)}), "
            f"found {out.shape}"
        )
    labels = np.bincount(np.argmax(out, axis=1), minlength=len(signature.classes))
    refs: dict[str, ColumnReference] = {
        "prediction": CategoricalReference(
            [str(c) for c in signature.classes],
            np.append(labels, 0).astype(np.int64),
            0,
            labels=list(signature.classes),
        )
    }
    for name in output_columns(signature)[1:]:
        j = [f"proba.{c}" for c in signature.classes].index(name)
        refs[name] = numeric_reference(out[:, j], 0, rng=rng)
    return refs


def numeric_reference(
    x: np.ndarray, missing: int, *, rng: np.random.Generator | None = None
) -> NumericReference:
    """The reference of the values ``x`` (NaN counts as missing) and ``missing`` more nulls.

    >>> r = numeric_reference(np.array([36.0, 60, 60, 36, 60]), 1)
    >>> r.edges[1:].tolist(), r.counts.tolist(), r.missing
    ([36.0, 60.0], [0, 2, 3, 0], 1)
    """
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    if nan.any():
        x, missing = x[~nan], missing + int(nan.sum())
    if not len(x):
        empty, one = np.empty(0), np.zeros(1, np.int64)
        return NumericReference(
            empty, one, missing, 0.0, 0.0, 0.0, 0.0, empty, one, one * 0.0, None
        )
    xs = np.sort(x)
    lo, hi = float(xs[0]), float(xs[-1])
    # Sorted, a value is new where it differs from the one before: no second sort to count them.
    new_value = np.concatenate([[True], xs[1:] != xs[:-1]])
    if np.count_nonzero(new_value) <= DISCRETE_VALUES:
        edges = fine = np.unique(np.concatenate([[np.nextafter(lo, -np.inf)], xs[new_value]]))
    else:
        edges = _edges(lo, hi, np.quantile(xs, np.arange(1, NUMERIC_BINS) / NUMERIC_BINS))
        fine = np.union1d(edges, np.quantile(xs, np.arange(1, FINE_BINS) / FINE_BINS))
    counts, _ = fine_histogram(xs, edges)
    fine_counts, fine_sums = fine_histogram(xs, fine)
    rng = rng if rng is not None else np.random.default_rng(0)
    sample = x if len(x) <= REFERENCE_SAMPLE else rng.choice(x, REFERENCE_SAMPLE, replace=False)
    return NumericReference(
        edges, counts, missing, float(x.mean()), float(x.std()), lo, hi, fine, fine_counts,
        fine_sums, np.array(sample, dtype=np.float64),
    )  # fmt: skip


def _edges(lo: float, hi: float, inner: np.ndarray) -> np.ndarray:
    """Just below the minimum, the inner cuts, the maximum: bins 0 and -1 are out of range."""
    return np.unique(np.concatenate([[np.nextafter(lo, -np.inf)], inner, [hi]]))


def categorical_reference(
    values: pa.Array | pa.ChunkedArray, *, known: list[str] | None = None
) -> CategoricalReference:
    """Category counts, most frequent first; ``known`` categories are kept even when absent.

    >>> categorical_reference(pa.array(["b", "a", "b", None]), known=["c"]).counts.tolist()
    [2, 1, 0, 0]
    """
    missing = values.null_count
    vc = pc.value_counts(pc.drop_null(category_values(values)))
    pairs = sorted(
        zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True),
        key=lambda kv: (-kv[1], kv[0]),
    )
    seen = {k for k, _ in pairs}
    pairs += [(k, 0) for k in known or [] if k not in seen]
    kept, rest = pairs[:MAX_CATEGORIES], pairs[MAX_CATEGORIES:]
    counts = np.array([c for _, c in kept] + [sum(c for _, c in rest)], dtype=np.int64)
    return CategoricalReference([k for k, _ in kept], counts, missing)


# --- from a plain training profile ---


def reference_from_profile(profile: Profile, signature: Signature) -> Reference:
    """A reference derived from a training profile (features only: it has no predictions)."""
    features: dict[str, ColumnReference] = {}
    for f in signature.features:
        stats = profile.columns.get(f.name)
        if stats is None:
            raise SchemaError(f"the training profile has no column {f.name!r}")
        if stats["kind"] == "categorical":
            cats = stats["categories"]
            counts = np.array([*cats.values(), stats.get("other", 0)], dtype=np.int64)
            features[f.name] = CategoricalReference(list(cats), counts, stats["missing"])
        else:
            features[f.name] = _numeric_from_stats(stats)
    return Reference(signature.task, profile.num_rows, features, {}, source="profile")


def _numeric_from_stats(stats: dict[str, Any]) -> NumericReference:
    n = stats["count"] - stats["missing"]
    if not n:
        return numeric_reference(np.empty(0), stats["missing"])
    lo, hi = float(stats["min"]), float(stats["max"])
    sketch = stats.get("sketch", {})
    if "values" in sketch:  # exact value counts: the reference of exactly those values
        values = np.array(sketch["values"], dtype=np.float64)
        weights = np.array(sketch["counts"], dtype=np.int64)
        if len(values) <= DISCRETE_VALUES:
            edges = fine = _edges(lo, hi, values)
        else:
            cum = np.cumsum(weights)

            def quantiles(k: int) -> np.ndarray:
                ranks = np.arange(1, k) / k * cum[-1]
                return values[np.minimum(np.searchsorted(cum, ranks), len(values) - 1)]

            edges = _edges(lo, hi, quantiles(NUMERIC_BINS))
            fine = np.union1d(edges, quantiles(FINE_BINS))
        bins = np.searchsorted(fine, values, side="left")
        fine_counts = np.bincount(bins, weights=weights, minlength=len(fine) + 1).astype(np.int64)
        fine_sums = np.bincount(bins, weights=weights * values, minlength=len(fine) + 1)
    else:
        if "kll" in sketch:  # quantiles and bin counts from the sketch (within ~1.7% of rank)
            kll = kll_from_text(sketch["kll"])
            edges = _edges(lo, hi, np.array(kll.get_quantiles(list(_probs(NUMERIC_BINS)))))
            fine = np.union1d(edges, kll.get_quantiles(list(_probs(FINE_BINS))))
            cum = np.round(np.array(kll.get_cdf(list(fine), inclusive=True)) * n).astype(np.int64)
            cum[-1] = n
            fine_counts = np.diff(cum, prepend=0)
        else:  # a profile written before sketches were stored: its ten histogram bins
            hist = stats["histogram"]
            edges = fine = _edges(lo, hi, np.array(hist["cuts"], dtype=np.float64))
            fine_counts = np.array([0, *hist["counts"], 0], dtype=np.int64)
            if len(fine_counts) != len(fine) + 1:
                raise SchemaError("the training profile's histogram does not match its range")
        # Without the values, each bin's mass sits at its middle.
        middles = np.concatenate([[lo], (fine[:-1] + fine[1:]) / 2, [hi]])
        fine_sums = fine_counts * middles
    starts = np.concatenate([[0], np.searchsorted(fine, edges) + 1])
    return NumericReference(
        edges, np.add.reduceat(fine_counts, starts), stats["missing"], float(stats["mean"]),
        float(stats["std"]), lo, hi, fine, fine_counts, fine_sums, None,
    )  # fmt: skip


def _probs(k: int) -> np.ndarray:
    return np.arange(1, k) / k


def attach_reference(ws: Workspace, version: ModelVersion, reference: Reference) -> str:
    """Store ``reference`` as the drift reference of ``version`` (one trained before references
    were recorded, or a better one); returns its artifact sha. Summaries counted on the old
    bins must be rebuilt (``mlscale monitor update NAME --rebuild``).
    """
    from mlscale.monitor.store import open_store

    sha = ws.artifacts.put_bytes(reference.to_json())
    with open_store(ws) as store, store.transaction():
        store.attach_reference(version.name, version.version, sha)
    return sha


def load_reference(ws: Workspace, version: ModelVersion) -> Reference:
    """The version's reference: the one recorded at training, else one attached later
    (:func:`attach_reference`), else one derived from its training profile.

    Raises :class:`NotFoundError` naming the version when it has none.
    """
    from mlscale.data.datasets import read_profile
    from mlscale.monitor.store import open_store

    signature = Signature.from_dict(version.signature)
    sha = None
    if version.run_id:  # the trainer stores the full reference as its run's "reference" artifact
        sha = ws.metadata.get_run(version.run_id).artifacts.get("reference")
    if not sha:
        with open_store(ws) as store:
            sha = store.attached_reference(version.name, version.version)
    try:
        if sha:
            return Reference.from_json(ws.artifacts.get_bytes(sha))
        if not version.profile_sha:
            raise NotFoundError(f"{version.ref} has no reference profile")
        return reference_from_profile(read_profile(ws, version.profile_sha), signature)
    except (NotFoundError, IntegrityError, SchemaError, ValueError, KeyError) as exc:
        raise NotFoundError(
            f"{version.ref} has no usable reference profile to compare with ({exc}); "
            f"retrain it to record one"
        ) from exc
