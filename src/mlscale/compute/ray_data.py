"""Batch scoring on Ray Data: a CSV or Parquet file in, one Parquet file out, in input order.

The output is the one :func:`mlscale.models.batch.predict_file` writes (same columns, types and
values), because the same steps run, only spread over Ray actors:

- the driver opens the file as ``predict_file`` does, through a :class:`Pipeline`, which reads a
  sample and drafts the contract (the model's features keep their trained types), then compiles
  that contract's validating query for a single batch;
- Ray Data reads the file (CSV as text, as DuckDB reads it for the pipeline; Parquet as stored);
- each actor loads the model version once, verified by hash through the workspace, runs the
  query over each batch in an in-memory DuckDB, and appends the predictions
  (:func:`mlscale.models.batch.prediction_columns`, the server's values);
- the driver writes the batches, in input order, to a temporary file renamed into place.

A row whose feature values cannot be read fails the whole run, as locally; the message names
the column and the value, but not the row number, which a batch on an actor does not know.
"""

from __future__ import annotations

import gc
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlscale.compute.ray_errors import mlscale_cause
from mlscale.data.writer import repeated_value_columns
from mlscale.errors import DataError, MlscaleError, UserError
from mlscale.models.batch import DEFAULT_COMPRESSION, check_compression

if TYPE_CHECKING:
    from mlscale.config import Config
    from mlscale.data.sources.duck import FileSource
    from mlscale.store.records import ModelVersion
    from mlscale.workspace import Workspace

#: Rows in one batch handed to an actor.
BATCH_ROWS = 65_536


def predict_file_ray(
    ws: Workspace,
    version: ModelVersion,
    source_path: Path,
    output: Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
    compression: str = DEFAULT_COMPRESSION,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score ``source_path`` with ``version`` on Ray into ``output`` (Parquet).

    ``workers`` scoring actors of one CPU each (default: the cluster's CPUs but one, which
    is left to the readers). Returns what ``predict_file`` returns: rows, output and model.
    """
    from mlscale.compute.ray import connect
    from mlscale.data.sources.duck import open_file

    check_compression(compression)
    source = open_file(source_path)
    if source.format not in ("csv", "parquet"):
        raise UserError(
            f"{source_path}: --backend ray scores CSV or Parquet files, not {source.format}"
        )
    query, present = _validating_query(version, source)
    ray = connect(address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = workers or max(1, cpus - 1)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        failure: MlscaleError | None = None
        try:
            with _data_context(ray):
                for table in _scored(ray, ws, version, source, present, query, actors, batch_rows):
                    if table.num_rows == 0:
                        continue
                    if writer is None:
                        writer = pq.ParquetWriter(
                            tmp,
                            table.schema,
                            compression=compression,
                            use_dictionary=repeated_value_columns(table),
                        )
                    writer.write_table(table)
                    rows += table.num_rows
                    if on_progress:
                        on_progress(rows)
        except Exception as exc:
            failure = mlscale_cause(exc)  # an actor's DataError, say, inside Ray's wrappers
            if failure is None or failure is exc:
                raise
        if failure is not None:
            _raise_alone(failure)
        if writer is None:
            raise DataError(f"{source_path}: no rows to score")
        writer.close()
        writer = None
        os.replace(tmp, output)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return {"rows": rows, "output": str(output), "model": version.ref}


@dataclass(frozen=True)
class _Query:
    """The contract's validating query over one batch (``_batch``), and its typed output."""

    sql: str
    columns: list[str]
    schema: pa.Schema


def _validating_query(
    version: ModelVersion, source: FileSource
) -> tuple[_Query | None, list[str] | None]:
    """The query ``predict_file``'s pipeline would run, compiled for a batch, and the file's
    columns; (None, None) for Parquet that ``predict_file`` also takes as it is."""
    from mlscale.data.pipeline import Pipeline
    from mlscale.data.validate import compile_contract
    from mlscale.models.batch import reads_as_is
    from mlscale.models.signature import Signature

    features = {f.name: f.type for f in Signature.from_dict(version.signature).features}
    if reads_as_is(source, features):
        return None, None
    with Pipeline(source, types=features) as pipeline:
        present = list(pipeline.sample.column_names)
        plan = compile_contract(
            pipeline.contract, source="_batch", present=set(present), fills=pipeline.report.fills
        )
        schema = pipeline.contract.schema().to_arrow()
    return _Query(plan.sql, plan.columns, schema), present


def _scored(
    ray: Any,
    ws: Workspace,
    version: ModelVersion,
    source: FileSource,
    present: list[str] | None,
    query: _Query | None,
    actors: int,
    batch_rows: int,
) -> Iterator[pa.Table]:
    """The scored batches, in input order, as Ray Data produces them."""
    dataset = _read(ray, source, present).map_batches(
        _Scorer,
        fn_constructor_kwargs={
            "config": ws.config,
            "version": version,
            "query": query,
            "uri": source.uri,
        },
        batch_format="pyarrow",
        batch_size=batch_rows,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
    )
    yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")


def _read(ray: Any, source: FileSource, columns: list[str] | None) -> Any:
    paths = [str(f) for f in source.files]
    if source.format == "parquet":
        return ray.data.read_parquet(paths)
    import pyarrow.csv as pacsv

    delimiter, quote = _dialect(source)
    # Every column as text with empty fields as nulls: what DuckDB's all_varchar reader gives
    # the pipeline, so type conversion happens in the same query, with the same results.
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in columns},
        strings_can_be_null=True,
        null_values=[""],
    )
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char=quote)
    return ray.data.read_csv(paths, convert_options=convert, parse_options=parse)


def _dialect(source: FileSource) -> tuple[str, str]:
    """The CSV delimiter and quote: given as options, else as DuckDB's sniffer finds them."""
    import duckdb

    from mlscale.data.validate import literal

    delimiter, quote = source.options.get("delimiter"), source.options.get("quote")
    if delimiter and quote:
        return delimiter, quote
    with duckdb.connect() as con:
        query = f"SELECT Delimiter, Quote FROM sniff_csv({literal(source.path)})"
        sniffed_delimiter, sniffed_quote = con.sql(query).fetchall()[0]
    quote = quote or (sniffed_quote if len(sniffed_quote) == 1 else '"')
    return delimiter or sniffed_delimiter, quote


class _Scorer:
    """A Ray Data actor: loads the model once, then validates and scores batch after batch."""

    def __init__(
        self, config: Config, version: ModelVersion, query: _Query | None, uri: str
    ) -> None:
        import duckdb

        from mlscale.models.predictor import Predictor
        from mlscale.workspace import Workspace

        self.predictor = Predictor.load(Workspace(config), version)  # verified by its sha256
        self.query = query
        self.uri = uri
        self.con = duckdb.connect(config={"threads": 1, "preserve_insertion_order": True})

    def __call__(self, batch: pa.Table) -> pa.Table:
        from mlscale.data.pipeline import conform
        from mlscale.models.batch import prediction_columns

        if self.query is None:  # typed Parquet, taken as it is (as predict_file does)
            for name, values in prediction_columns(self.predictor, batch).items():
                batch = batch.append_column(name, values)
            return batch
        self.con.register("_batch", batch)
        try:
            out = self.con.sql(self.query.sql).to_arrow_table()
        finally:
            self.con.unregister("_batch")
        bad = pc.is_valid(out.column("_reason"))
        n_bad = pc.sum(bad).as_py() or 0
        if n_bad:
            first = out.filter(bad).column("_reason")[0].as_py()
            raise DataError(
                f"{self.uri}: {first} ({n_bad} bad row(s) in a batch of {batch.num_rows}); "
                "nothing was written"
            )
        good = out.select(self.query.columns)
        table = pa.Table.from_batches(
            [conform(b, self.query.schema) for b in good.to_batches()], schema=self.query.schema
        )
        for name, values in prediction_columns(self.predictor, table).items():
            table = table.append_column(name, values)
        return table


@contextmanager
def _data_context(ray: Any) -> Iterator[None]:
    """Ray Data keeps input order (it may reorder for speed), is quiet and raises the UDF's error.

    The CLI shows its own progress: Ray Data's progress lines and execution logs would
    interleave with it.
    """
    context = ray.data.DataContext.get_current()
    settings = {"preserve_order": True}
    quiet = {
        "enable_progress_bars": False,
        "print_on_execution_start": False,
        # An actor's DataError reaches us as itself, not inside a UserCodeException.
        "raise_original_map_exception": True,
    }
    before = {k: getattr(context.execution_options, k) for k in settings}
    before_quiet = {k: getattr(context, k) for k in quiet}
    logger = logging.getLogger("ray.data")
    level = logger.level
    for k, v in settings.items():
        setattr(context.execution_options, k, v)
    for k, v in quiet.items():
        setattr(context, k, v)
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for k, v in before.items():
            setattr(context.execution_options, k, v)
        for k, v in before_quiet.items():
            setattr(context, k, v)
        logger.setLevel(level)


def _raise_alone(error: MlscaleError) -> NoReturn:
    """Raise a worker's ``error`` without Ray's error as its context, and free the failed run.

    Called after the ``except`` block that caught Ray's error: that error's traceback holds
    the failed run, whose actors sit in a reference cycle inside Ray Data, keeping their CPUs
    until the garbage collector runs (a long-lived process would wait for them).
    """
    vars(error).pop("__notes__", None)  # Ray Data's advice on retrying I/O, not about this
    gc.collect()
    raise error
