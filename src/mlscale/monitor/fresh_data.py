"""What a challenger learns from and is judged on: a dataset version and labelled traffic.

:func:`plan` picks the fresh data of one retrain:

- the **base**: the dataset named by the caller, else the latest version of the dataset the
  champion's lineage started from (``loans@3``, even when the champion itself was trained on a
  ``<model>-retrain`` version that added traffic to it);
- **labelled traffic** (:func:`mlscale.monitor.labelled_traffic.labelled_traffic`): with at least
  :data:`MIN_LABELLED` labelled logged rows in the window, the newest half is the **evaluation**
  set, the same rows for challenger and champion; the older half joins the base as training
  rows (only when the caller named no dataset). The two halves never overlap, so the challenger
  is never judged on rows it learnt from.

:func:`training_set` writes base + traffic rows as a version of dataset ``<model>-retrain``
(content-hashed: the same rows give the same version). Nothing new (the same base, fewer than
:data:`MIN_LABELLED` / 2 new traffic rows than the champion or the last attempt had) is a skip,
so a drift that persists does not train the same challenger at every check.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlscale.data.datasets import read_table
from mlscale.errors import UserError
from mlscale.monitor.labelled_traffic import labelled_traffic
from mlscale.monitor.triggers import last_retrain
from mlscale.monitor.windows import parse_duration
from mlscale.refs import Ref
from mlscale.registry import Comparison, Holdout, score

if TYPE_CHECKING:
    from mlscale.store.records import ModelVersion, Run
    from mlscale.workspace import Workspace

#: Labelled logged rows needed before traffic is used: half of them judge the two models.
MIN_LABELLED = 200
_RUNS_SCANNED = 10_000


def derived_name(model: str) -> str:
    """The dataset that holds a model's base data plus its labelled traffic.

    >>> derived_name("loans")
    'loans-retrain'
    """
    return f"{model}-retrain"


@dataclass(frozen=True)
class Fresh:
    """The data of one retrain: a base dataset version, and labelled traffic split in two."""

    base: str  # "loans@3"
    train_traffic: pa.Table | None  # older labelled rows added to the base; None: none
    evaluation: pa.Table | None  # newest labelled rows both models are scored on; None: holdout
    stale: str | None = None  # why there is nothing new to learn from (None: there is)

    @property
    def traffic_rows(self) -> int:
        return 0 if self.train_traffic is None else self.train_traffic.num_rows

    def describe(self) -> str:
        """``loans@3 + 400 labelled logged rows``."""
        if not self.traffic_rows:
            return self.base
        return f"{self.base} + {self.traffic_rows:,} labelled logged rows"


def plan(
    ws: Workspace,
    champion: ModelVersion,
    alias: str,
    data: str | None,
    *,
    window: str | None = None,
    now: float | None = None,
) -> Fresh:
    """The fresh data for a challenger to ``champion`` (see the module's docstring)."""
    since = None
    if window is not None:
        since = (time.time() if now is None else now) - parse_duration(window)
    traffic = labelled_traffic(ws, champion, since=since, until=now)
    evaluation = train_traffic = None
    if traffic.num_rows >= MIN_LABELLED:
        half = traffic.num_rows // 2
        evaluation = traffic.slice(half)
        train_traffic = traffic.slice(0, half) if data is None else None
    if data is not None:
        return Fresh(ws.dataset(data).ref, None, evaluation)
    origin = base_of(ws, champion)
    latest = ws.dataset(f"{ws.dataset(origin).name}@latest").ref
    fresh = Fresh(latest, train_traffic, evaluation)
    return replace(fresh, stale=_stale(ws, champion, alias, origin, fresh))


def base_of(ws: Workspace, champion: ModelVersion) -> str:
    """The dataset version the champion's data started from (before any traffic was added)."""
    if champion.dataset is None:
        raise UserError(f"{champion.ref} records no dataset; name one with --data NAME@VERSION")
    made = _made_by(ws, champion)
    return str(made.params.get("base") or champion.dataset) if made else champion.dataset


def _made_by(ws: Workspace, champion: ModelVersion) -> Run | None:
    """The retrain run that wrote the champion's ``<model>-retrain`` training data, if any."""
    if champion.dataset is None or Ref.parse(champion.dataset).name != derived_name(champion.name):
        return None
    for run in ws.metadata.list_runs(_RUNS_SCANNED, kind="retrain"):
        if run.params.get("data") == champion.dataset and run.params.get("base"):
            return run
    return None


def _stale(
    ws: Workspace, champion: ModelVersion, alias: str, origin: str, fresh: Fresh
) -> str | None:
    """Why ``fresh`` holds nothing the champion (or the last attempt) has not learnt from."""
    enough = MIN_LABELLED // 2
    anyway = f"ingest new rows as a new version, or pass --data {fresh.base} to retrain anyway"
    made = _made_by(ws, champion)
    had = int(made.params.get("traffic_rows") or 0) if made else 0
    if fresh.base == origin and fresh.traffic_rows < had + enough:
        with_traffic = f" (with {had:,} labelled logged rows, as {champion.dataset})" if had else ""
        return (
            f"{fresh.base}, the latest version of {fresh.base.split('@')[0]!r}, is what "
            f"{champion.ref} was trained on{with_traffic}{_traffic_note(fresh, had)}: nothing "
            f"new ({anyway})"
        )
    last = last_retrain(ws, champion.name, alias)
    if last is None or last.params.get("champion") != champion.ref:
        return None
    tried = int(last.params.get("traffic_rows") or 0)
    if last.params.get("base") == fresh.base and fresh.traffic_rows < tried + enough:
        return (
            f"retrain run {last.id[:8]} already tried {fresh.base}"
            + (f" + {tried:,} labelled logged rows" if tried else "")
            + f" against {champion.ref} ({last.params.get('decision')}): nothing new ({anyway})"
        )
    return None


def _traffic_note(fresh: Fresh, had: int) -> str:
    if not fresh.traffic_rows:
        return ""
    new = max(fresh.traffic_rows - had, 0)
    return f", and {new:,} new labelled logged rows are too few to learn from"


def training_set(
    ws: Workspace, champion: ModelVersion, fresh: Fresh, time_column: str | None
) -> str:
    """``fresh.base`` plus the training traffic as a version of ``<model>-retrain``; the base
    itself when there is no traffic to add. Only the champion's features and target (and the
    time column of a time split, the log's timestamps for traffic rows) are kept."""
    if fresh.train_traffic is None or not fresh.traffic_rows:
        return fresh.base
    base = ws.dataset(fresh.base)
    features = [f["name"] for f in champion.signature["features"]]
    target = champion.signature["target"]
    wanted = {*features, target, *([time_column] if time_column else [])}
    names = [c["name"] for c in base.schema["columns"] if c["name"] in wanted]
    table = read_table(ws, base, columns=names)
    # Traffic may miss values the base never missed.
    table = table.cast(pa.schema([f.with_nullable(True) for f in table.schema]))
    traffic = fresh.train_traffic
    if time_column:
        traffic = traffic.append_column(time_column, traffic.column("ts"))
    added = pa.table(
        {
            n: pc.cast(traffic.column(n), table.schema.field(n).type)
            if n in traffic.column_names
            else pa.nulls(traffic.num_rows, table.schema.field(n).type)
            for n in names
        }
    )
    path = ws.scratch_dir() / f"retrain-{uuid.uuid4().hex}.parquet"
    try:
        pq.write_table(pa.concat_tables([table, added]), path)
        return ws.ingest(path, name=derived_name(champion.name)).dataset.ref
    finally:
        path.unlink(missing_ok=True)


def traffic_comparison(
    ws: Workspace,
    challenger: ModelVersion,
    champion: ModelVersion,
    evaluation: pa.Table,
    metric: str,
    alias: str,
    min_delta: float,
) -> Comparison | None:
    """Both models scored on the same labelled traffic rows; None if ``metric`` is undefined
    there (AUC on rows of one class), so the caller falls back to the challenger's holdout."""
    target = champion.signature["target"]
    holdout = Holdout(
        f"the logged traffic of {champion.name}", "the prediction log", target, evaluation
    )
    scores = [score(ws, version, holdout) for version in (challenger, champion)]
    if any(metric not in s for s in scores):
        return None
    ts = evaluation.column("ts")
    first, last = pc.min(ts).as_py(), pc.max(ts).as_py()
    where = (
        f"the newest {evaluation.num_rows:,} labelled rows of the logged traffic of "
        f"{champion.name} ({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)"
    )
    return Comparison(
        metric=metric,
        alias=alias,
        holdout=where,
        challenger=challenger.ref,
        challenger_value=scores[0][metric],
        holder=champion.ref,
        holder_value=scores[1][metric],
        min_delta=min_delta,
    )
