"""Rows leave the pipeline in input order, so row numbers and scored outputs line up."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.data.pipeline import Pipeline
from mlscale.data.sources.duck import open_file

STATES = ["CA", "FL", "GA", "IL", "NC", "NY", "OH", "PA", "TX", "WA", "OR", "NV"]


def test_allowed_values_checks_keep_the_input_order(tmp_path: Path) -> None:
    # Many row groups and a long list of allowed values: DuckDB would plan the check as a hash
    # join and, on several threads, give the rows back shuffled.
    n = 20_000
    table = pa.table({"i": list(range(n)), "state": [STATES[i % len(STATES)] for i in range(n)]})
    pq.write_table(table, tmp_path / "f.parquet", row_group_size=300)
    with Pipeline(open_file(tmp_path / "f.parquet"), threads=2) as pipeline:
        assert pipeline.contract.columns[1].allowed  # the draft contract lists the 12 states
        rows = [v for batch in pipeline.batches(4_096) for v in batch.good.column("i").to_pylist()]
    assert rows == list(range(n))
