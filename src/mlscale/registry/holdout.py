"""A model version's holdout rows, and any model version's metrics on them.

The training run of a version records ``artifacts["holdout"]``: a Parquet file with one int64
column ``row``, the positions of the holdout rows in its dataset version (in the stored order of
the parts, as :func:`mlscale.data.datasets.read_table` reads them), and ``params["target"]``.
Scoring two versions on the same rows is what makes their figures comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlscale.data.schema import Schema
from mlscale.errors import IntegrityError, SchemaError, UserError
from mlscale.models.predictor import Predictor
from mlscale.refs import Ref
from mlscale.store.records import DatasetVersion, ModelVersion
from mlscale.train.metrics import evaluate

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


@dataclass(frozen=True)
class Holdout:
    """The rows a model version was evaluated on when it was trained (labelled rows only)."""

    owner: str  # "loans@3": the model version whose training run set these rows aside
    dataset: str  # "loans@2"
    target: str
    table: pa.Table

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def describe(self) -> str:
        return f"the holdout of {self.owner} ({self.rows:,} rows of {self.dataset})"


def load_holdout(
    ws: Workspace, version: ModelVersion, *, columns: list[str] | None = None
) -> Holdout:
    """The holdout rows recorded by ``version``'s training run; UserError if it has none.

    Only ``columns`` (those the dataset has, and always the target) are read, one part at a
    time, so memory holds the holdout rows rather than the whole dataset.
    """
    without = "promote it without a metric to compare on, or retrain it"
    if version.run_id is None:
        raise UserError(f"{version.ref} has no training run, so no holdout rows; {without}")
    run = ws.metadata.get_run(version.run_id)
    sha = run.artifacts.get("holdout")
    if sha is None or run.dataset is None:
        raise UserError(
            f"{version.ref}: its training run {run.id} recorded no holdout rows (artifacts: "
            f"{', '.join(sorted(run.artifacts)) or 'none'}); {without}"
        )
    dataset = ws.metadata.get_dataset_version(Ref.parse(run.dataset))
    rows = pq.read_table(pa.BufferReader(ws.artifacts.get_bytes(sha)), columns=["row"])
    positions = np.asarray(rows.column("row"), dtype=np.int64)
    if len(positions) and (positions.min() < 0 or positions.max() >= dataset.num_rows):
        raise IntegrityError(
            f"the holdout of {version.ref} (run {run.id}) names rows "
            f"{positions.min()}..{positions.max()}, but {dataset.ref} has {dataset.num_rows} rows"
        )
    target = run.params.get("target", version.signature["target"])
    names = Schema.from_dict(dataset.schema).names
    wanted = None if columns is None else [c for c in names if c in {*columns, target}]
    table = _take(ws, dataset, np.sort(positions), wanted)
    # Rows without a label cannot be scored; training skipped them too.
    table = table.filter(pc.is_valid(table.column(target)))
    if table.num_rows == 0:
        raise UserError(f"the holdout of {version.ref} has no labelled rows; {without}")
    return Holdout(version.ref, dataset.ref, target, table)


def score(ws: Workspace, version: ModelVersion, holdout: Holdout) -> dict[str, float]:
    """The metrics of ``version`` on ``holdout``, each model with its own encoding and classes."""
    signature = version.signature
    if signature["target"] != holdout.target:
        raise UserError(
            f"{version.ref} predicts {signature['target']!r} but {holdout.describe()} is "
            f"labelled by {holdout.target!r}: models of different targets cannot be compared"
        )
    names = [f["name"] for f in signature["features"]]
    missing = [n for n in names if n not in holdout.table.column_names]
    if missing:
        raise SchemaError(
            f"model {version.ref} needs feature(s) {', '.join(map(repr, missing))} that "
            f"dataset {holdout.dataset} lacks, so it cannot be scored on {holdout.describe()}"
        )
    prediction = Predictor.load(ws, version).predict_table(holdout.table)
    labels = holdout.table.column(holdout.target)
    if signature["task"] == "regression":
        y = np.asarray(pc.cast(labels, pa.float64()), dtype=np.float64)
        return evaluate("regression", y, np.asarray(prediction.predictions, dtype=np.float64))
    classes = signature["classes"]
    codes = pc.index_in(labels, value_set=pa.array(classes))
    if codes.null_count:
        unseen = pc.unique(pc.filter(labels, pc.is_null(codes))).to_pylist()
        raise UserError(
            f"{holdout.describe()} has label(s) {unseen[:5]} that {version.ref} never saw "
            f"(its classes: {classes}): it cannot be scored on these rows"
        )
    assert prediction.probabilities is not None  # a classifier always gives them
    return evaluate(signature["task"], np.asarray(codes, dtype=np.int64), prediction.probabilities)


def _take(
    ws: Workspace, dataset: DatasetVersion, positions: np.ndarray, columns: list[str] | None
) -> pa.Table:
    """The rows at sorted ``positions`` of the dataset version, reading one part at a time."""
    schema = Schema.from_dict(dataset.schema).to_arrow()
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    pieces = []
    start = 0
    for sha in dataset.parts:
        with ws.artifacts.open_verified(sha) as path:
            part = pq.ParquetFile(path)
            n = part.metadata.num_rows
            lo, hi = np.searchsorted(positions, [start, start + n])
            if hi > lo:
                rows = pa.array(positions[lo:hi] - start)
                pieces.append(part.read(columns=columns).take(rows))
            start += n
    return pa.concat_tables(pieces) if pieces else schema.empty_table()
