"""A model version's reference: what its training data and predictions looked like, for drift.

Numeric columns get fixed bin edges: ``edges[0]`` sits just below the reference minimum and
``edges[-1]`` is its maximum, so bin 0 holds values below the training range and the last bin
values above it (out of range), and in between each bin holds ``edges[i-1] < v <= edges[i]``. The
inner edges are the 1/20 .. 19/20 quantiles, or every distinct value when there are at most
``DISCRETE_VALUES`` (a count or a code gets a bin per value). The reference also keeps the
counts on those bins, the missing count, a KLL sketch, mean/std/min/max and a uniform sample of
``REFERENCE_SAMPLE`` values (for exact tests). Categorical columns keep each category's count,
the count of values beyond the kept categories (``unseen``) and the missing count.

Predictions are columns too, named as in the prediction log: ``prediction`` (the label of a
classifier, the value of a regressor) and ``proba.<class>`` (the positive class only for a binary
classifier, every class otherwise).

Live windows are counted on exactly these bins (:mod:`mlscale.monitor.summary`), so comparing a
window with its reference costs O(bins). :func:`build_reference` makes one from the training rows
(the trainer stores its JSON in the artifact store); :func:`load_reference` falls back to deriving
one from the plain training profile of versions trained before references existed.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

from mlscale.data.profile import (
    KLL_K,
    MAX_CATEGORIES,
    Profile,
    category_values,
    numeric_values,
)
from mlscale.data.sketches import feed_counts, kll_from_text
from mlscale.errors import IntegrityError, NotFoundError, SchemaError
from mlscale.models.signature import Signature

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion
    from mlscale.workspace import Workspace

FORMAT = "mlscale.reference/1"
NUMERIC_BINS = 20
DISCRETE_VALUES = 30
REFERENCE_SAMPLE = 5_000
FEATURE_PREFIX = "f."  # feature columns in the prediction log


@dataclass
class NumericReference:
    """Bins, counts and sketches of one numeric column (see the module docstring)."""

    edges: np.ndarray
    counts: np.ndarray  # len(edges) + 1 bins
    missing: int
    mean: float
    std: float
    min: float
    max: float
    kll: kll_doubles_sketch | None
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
            "kll": _b64(self.kll.serialize()) if self.kll is not None else None,
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
            kll=kll_doubles_sketch.deserialize(base64.b64decode(d["kll"])) if d["kll"] else None,
            sample=(
                np.frombuffer(base64.b64decode(d["sample"]), dtype="<f8").copy()
                if d["sample"]
                else None
            ),
        )


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
    kll = kll_doubles_sketch(KLL_K)
    if not len(x):
        return NumericReference(
            np.empty(0), np.zeros(1, np.int64), missing, 0.0, 0.0, 0.0, 0.0, kll, None
        )
    kll.update(x if x.flags.writeable else x.copy())
    lo, hi = float(x.min()), float(x.max())
    head = np.unique(x[:65_536])
    distinct = np.unique(x) if len(head) <= DISCRETE_VALUES else head
    if len(distinct) <= DISCRETE_VALUES:
        inner = distinct
    else:
        inner = np.quantile(x, np.arange(1, NUMERIC_BINS) / NUMERIC_BINS)
    edges = np.unique(np.concatenate([[np.nextafter(lo, -np.inf)], inner, [hi]]))
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    rng = rng if rng is not None else np.random.default_rng(0)
    sample = x if len(x) <= REFERENCE_SAMPLE else rng.choice(x, REFERENCE_SAMPLE, replace=False)
    return NumericReference(
        edges, counts.astype(np.int64), missing, float(x.mean()), float(x.std()), lo, hi, kll,
        np.array(sample, dtype=np.float64),
    )  # fmt: skip


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
    kll: kll_doubles_sketch | None = None
    if "kll" in sketch:
        kll = kll_from_text(sketch["kll"])
        inner = np.array(kll.get_quantiles(list(np.arange(1, NUMERIC_BINS) / NUMERIC_BINS)))
        edges = np.unique(np.concatenate([[np.nextafter(lo, -np.inf)], inner, [hi]]))
        cdf = np.array(kll.get_cdf(list(edges), inclusive=True))
        cum = np.round(cdf * n).astype(np.int64)
        cum[-1] = n
        counts = np.diff(cum, prepend=0)
    elif "values" in sketch:
        values = np.array(sketch["values"], dtype=np.float64)
        weights = np.array(sketch["counts"], dtype=np.int64)
        kll = kll_doubles_sketch(KLL_K)
        feed_counts(kll, values, weights)
        if len(values) <= DISCRETE_VALUES:
            inner = values
        else:  # exact quantiles of the counted values (the sketch's would be randomised)
            cum = np.cumsum(weights)
            ranks = np.arange(1, NUMERIC_BINS) / NUMERIC_BINS * cum[-1]
            inner = values[np.minimum(np.searchsorted(cum, ranks, side="left"), len(values) - 1)]
        edges = np.unique(np.concatenate([[np.nextafter(lo, -np.inf)], inner, [hi]]))
        bins = np.searchsorted(edges, values, side="left")
        counts = np.bincount(bins, weights=weights, minlength=len(edges) + 1).astype(np.int64)
    else:  # a profile written before sketches were stored: its ten histogram bins
        hist = stats["histogram"]
        edges = np.unique(np.concatenate([[np.nextafter(lo, -np.inf)], hist["cuts"], [hi]]))
        counts = np.array([0, *hist["counts"], 0], dtype=np.int64)
        if len(counts) != len(edges) + 1:
            raise SchemaError("the training profile's histogram does not match its range")
    return NumericReference(
        edges,
        counts,
        stats["missing"],
        float(stats["mean"]),
        float(stats["std"]),
        lo,
        hi,
        kll,
        None,
    )


def load_reference(ws: Workspace, version: ModelVersion) -> Reference:
    """The version's stored reference, else one derived from its training profile.

    Raises :class:`NotFoundError` naming the version when it has neither.
    """
    from mlscale.data.datasets import read_profile

    signature = Signature.from_dict(version.signature)
    sha = getattr(version, "reference_sha", None)  # set by trainers that build a full reference
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
