"""Delayed labels: the true outcomes of served predictions, arriving later, joined by row id.

A label names a logged prediction row by its id: the request id (the server's ``x-request-id``)
when the request had one row, else ``<request id>:<row>``, rows numbered from 0 in the order
they were sent (see :mod:`mlscale.monitor.prediction_index`). Labels come from a file
(CSV, JSON Lines or Parquet, read by DuckDB) or from rows posted to the server
(``POST /v1/models/{name}/labels``), and are kept in the workspace's label store:

- the latest label for an id wins (``replaced`` counts the earlier ones it overwrote);
- a label whose id names no logged prediction yet is kept and counted as ``unknown``: the
  prediction may still be in a server's buffer or in a log that is copied later, and it joins
  as soon as the log has it (``mlscale monitor performance`` shows how many are still unknown);
- a label that cannot be the model's target (not one of its classes, not a number) or lacks an
  id is refused and counted as ``invalid`` with the reason.

Labels belong to a model name, and are checked against the version ``model`` resolves to (its
``production`` version, else its latest); every version's predictions with that id join them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from mlscale.errors import DataError, SchemaError, UserError
from mlscale.monitor.label_store import open_label_store
from mlscale.monitor.prediction_index import update_index
from mlscale.monitor.windows import resolve_version

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

BATCH_ROWS = 50_000  # labels read, checked and stored per transaction
MAX_PROBLEMS = 20  # invalid rows described one by one; the rest are only counted
MAX_UNKNOWN_IDS = 10


@dataclass
class LabelResult:
    """What one :func:`ingest_labels` call did. ``stored == joined + unknown``."""

    model: str
    received: int = 0  # rows read
    stored: int = 0  # valid labels written
    replaced: int = 0  # of those, labels that overwrote an earlier one for the same id
    joined: int = 0  # of those, labels whose id names a logged prediction row
    unknown: int = 0  # of those, labels whose id names none (yet): kept, joined when logged
    invalid: int = 0  # rows refused
    reasons: dict[str, int] = field(default_factory=dict)  # invalid rows per kind of problem
    problems: list[str] = field(default_factory=list)  # the first invalid rows, one line each
    unknown_ids: list[str] = field(default_factory=list)  # the first unknown ids
    log_problems: list[str] = field(default_factory=list)  # from indexing the prediction log
    total_labels: int = 0  # labels the model has now, from every ingestion
    total_unknown: int = 0  # of those, labels no logged prediction carries yet

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LabelStatus:
    """The labels a model has and how many of them join a logged prediction."""

    model: str
    labels: int
    joined: int
    unknown: int
    unknown_ids: list[str]


def class_text(value: Any) -> str:
    """How a class is written in the label store: ``true``/``false``, an integer, or the text.

    >>> class_text(1), class_text(1.0), class_text(True), class_text("yes")
    ('1', '1', 'true', 'yes')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class LabelChecker:
    """Turns a raw label into what the store keeps for a target, or says why it cannot.

    >>> check = LabelChecker("binary", [0, 1])
    >>> check("1"), check(0), check("1.0"), check("maybe")
    (('1', None), ('0', None), ('1', None), (None, "expected one of the classes 0, 1; found 'maybe'"))
    >>> LabelChecker("regression", []).check_all(["2.5", True])
    [(2.5, None), (None, 'expected a number, found True')]
    """

    def __init__(self, task: str, classes: Sequence[Any]) -> None:
        self.task = task
        self.known = {class_text(c): class_text(c) for c in classes}
        self._numeric = bool(classes) and all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in classes
        )
        self._boolean = bool(classes) and all(isinstance(c, bool) for c in classes)
        shown = ", ".join(list(self.known)[:10]) + (" ..." if len(self.known) > 10 else "")
        self._expected = f"expected one of the classes {shown}"

    def __call__(self, value: Any) -> tuple[Any, str | None]:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, "missing label"
        if self.task == "regression":
            return _number(value)
        text = self._class_text(value)
        if text in self.known:
            return text, None
        return None, f"{self._expected}; found {value!r}"

    def check_all(self, values: Sequence[Any]) -> list[tuple[Any, str | None]]:
        return [self(v) for v in values]

    def _class_text(self, value: Any) -> str:
        if isinstance(value, str):
            text = value.strip()
            if self._boolean and text.lower() in ("true", "false", "1", "0"):
                return "true" if text.lower() in ("true", "1") else "false"
            if self._numeric:
                try:
                    number = float(text)
                except ValueError:
                    return text
                return class_text(number)
            return text
        if self._boolean and isinstance(value, int) and value in (0, 1):
            return "true" if value else "false"
        if self._numeric and isinstance(value, bool):
            return repr(value)  # True is not the class 1: an error shows it as found
        return class_text(value)


def _number(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return None, f"expected a number, found {value!r}"
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None, f"expected a number, found {value!r}"
    if not math.isfinite(number):
        return None, f"expected a finite number, found {value!r}"
    return number, None


def _row_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    text = str(value).strip()
    return text or None


def _timestamp(value: Any) -> tuple[float | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp(), None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text), None
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp(), None
    return None, f"expected a timestamp (ISO 8601 or seconds since 1970), found {value!r}"


# -- reading sources --------------------------------------------------------------------------
_Row = tuple[str, Any, Any, Any, str | None]  # (where, id, label, timestamp, problem)


def _file_rows(
    path: str | PathLike[str], id_column: str, label_column: str, ts_column: str | None
) -> Iterator[list[_Row]]:
    import duckdb

    from mlscale.data.sources.duck import open_file

    source = open_file(path)
    con = duckdb.connect()
    try:
        relation = con.sql(f"SELECT * FROM {source.relation_sql(con)}")
        names = relation.columns
        for column, what, flag in (
            (id_column, "id", "--id-column"),
            (label_column, "label", "--label-column"),
            (ts_column, "timestamp", "--timestamp-column"),
        ):
            if column is not None and column not in names:
                raise SchemaError(
                    f"{path}: no {what} column {column!r} (choose one with {flag}); "
                    f"the file has: {', '.join(names)}"
                )
        wanted = [id_column, label_column] + ([ts_column] if ts_column else [])
        reader = relation.select(*[duckdb.ColumnExpression(c) for c in wanted]).to_arrow_reader(
            BATCH_ROWS
        )
        offset = 0
        for batch in reader:
            ids = batch.column(0).to_pylist()
            labels = batch.column(1).to_pylist()
            stamps = batch.column(2).to_pylist() if ts_column else [None] * batch.num_rows
            yield [
                (f"row {offset + i + 1}", ids[i], labels[i], stamps[i], None)
                for i in range(batch.num_rows)
            ]
            offset += batch.num_rows
        rejected = [
            (f"line {line}", None, None, None, f"unreadable: {reason}")
            for line, reason, _ in source.rejects(con)
        ]
        if rejected:
            yield rejected
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot read the labels: {exc}") from None
    finally:
        con.close()


def _posted_rows(
    rows: Sequence[Any], id_column: str, label_column: str, ts_column: str | None
) -> Iterator[list[_Row]]:
    for start in range(0, len(rows), BATCH_ROWS):
        out: list[_Row] = []
        for i, row in enumerate(rows[start : start + BATCH_ROWS], start):
            if not isinstance(row, Mapping):
                out.append((f"labels[{i}]", None, None, None, f"expected an object, found {row!r}"))
                continue
            stamp = row.get(ts_column) if ts_column else None
            out.append((f"labels[{i}]", row.get(id_column), row.get(label_column), stamp, None))
        yield out


def _table_rows(
    table: pa.Table, id_column: str, label_column: str, ts_column: str | None
) -> Iterator[list[_Row]]:
    for column in (id_column, label_column, ts_column):
        if column is not None and column not in table.column_names:
            raise SchemaError(
                f"no column {column!r} in the labels; found: {', '.join(table.column_names)}"
            )
    offset = 0
    for batch in table.to_batches(BATCH_ROWS):
        ids = batch.column(id_column).to_pylist()
        labels = batch.column(label_column).to_pylist()
        stamps = batch.column(ts_column).to_pylist() if ts_column else [None] * batch.num_rows
        yield [
            (f"row {offset + i + 1}", ids[i], labels[i], stamps[i], None) for i in range(len(ids))
        ]
        offset += batch.num_rows


# -- ingestion --------------------------------------------------------------------------------
def ingest_labels(
    ws: Workspace,
    model: str,
    source: str | PathLike[str] | Sequence[Mapping[str, Any]] | pa.Table,
    *,
    id_column: str = "id",
    label_column: str | None = None,
    timestamp_column: str | None = None,
    update: bool = True,
    now: float | None = None,
) -> LabelResult:
    """Store the labels in ``source`` for ``model`` and join them to the logged predictions.

    ``source``: a file path (CSV, JSON Lines, Parquet), rows (mappings, as posted over HTTP) or
    an Arrow table. ``label_column`` defaults to the model's target. ``update`` first indexes
    what the prediction log gained, so the joined/unknown counts are current. Raises a
    :class:`UserError` when the source holds no rows at all; invalid rows are counted.
    """
    version = resolve_version(ws, model)
    signature = version.signature
    checker = LabelChecker(signature["task"], signature.get("classes") or [])
    label_column = label_column or signature["target"]
    result = LabelResult(version.name)
    if update:
        for indexed in update_index(ws, version.name):
            result.log_problems += indexed.problems
    if isinstance(source, str | PathLike):
        chunks = _file_rows(source, id_column, label_column, timestamp_column)
        what = str(source)
    elif isinstance(source, pa.Table):
        chunks = _table_rows(source, id_column, label_column, timestamp_column)
        what = "the table"
    else:
        chunks = _posted_rows(source, id_column, label_column, timestamp_column)
        what = "the request"
    received = time.time() if now is None else now
    with open_label_store(ws) as store:
        for chunk in chunks:
            good: dict[str, tuple[Any, float | None]] = {}
            accepted: list[str] = []
            for where, raw_id, raw_label, raw_ts, unreadable in chunk:
                result.received += 1
                problem, kind = unreadable, "unreadable"
                key = None if problem else _row_id(raw_id)
                if problem is None and key is None:
                    problem, kind = f"missing or invalid id {raw_id!r}", "missing id"
                label, reason = (None, None) if problem else checker(raw_label)
                if problem is None and reason is not None:
                    problem = reason
                    kind = "missing label" if reason == "missing label" else "wrong type"
                stamp, bad_ts = (None, None) if problem else _timestamp(raw_ts)
                if problem is None and bad_ts is not None:
                    problem, kind = bad_ts, "bad timestamp"
                if problem is not None:
                    result.invalid += 1
                    result.reasons[kind] = result.reasons.get(kind, 0) + 1
                    if len(result.problems) < MAX_PROBLEMS:
                        shown = f" (id {raw_id!r})" if raw_id is not None else ""
                        result.problems.append(f"{where}{shown}: {problem}")
                    continue
                assert key is not None
                if key in good:  # the same id twice in a chunk: the later one wins
                    result.replaced += 1
                    del good[key]
                good[key] = (label, stamp)
                accepted.append(key)
            result.stored += len(accepted)
            if not good:
                continue
            with store.transaction():
                result.replaced += store.put_labels(
                    version.name, [(k, lab, ts) for k, (lab, ts) in good.items()], received=received
                )
                known = store.indexed_keys(version.name, good)
            for key in accepted:
                if key in known:
                    result.joined += 1
                else:
                    result.unknown += 1
                    if len(result.unknown_ids) < MAX_UNKNOWN_IDS and key not in result.unknown_ids:
                        result.unknown_ids.append(key)
        result.total_labels, joined = store.label_counts(version.name)
        result.total_unknown = result.total_labels - joined
    if not result.received:
        raise UserError(f"no labels in {what}: expected rows with an id and a label")
    return result


def label_status(ws: Workspace, model: str, *, update: bool = True) -> LabelStatus:
    """How many labels ``model`` (a name or reference) has and how many join a prediction."""
    name = resolve_version(ws, model).name
    if update:
        update_index(ws, name)
    with open_label_store(ws) as store:
        total, joined = store.label_counts(name)
        unknown = store.unknown_keys(name, MAX_UNKNOWN_IDS)
    return LabelStatus(name, total, joined, total - joined, unknown)
