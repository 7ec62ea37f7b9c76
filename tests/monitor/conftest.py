"""A trained loans model and a helper that logs traffic as the server does."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mlscale import Workspace
from mlscale.monitor.windows import log_folder
from mlscale.serve.predlog import PredictionLog

NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15), so windows do not depend on the clock


def log_traffic(
    ws: Workspace,
    table: pa.Table,
    *,
    start: float,
    seconds_per_row: float = 1.0,
    ref: str = "loans@1",
    version: int | None = None,
    request_rows: int = 50,
    drop: tuple[str, ...] = (),
) -> None:
    """Predict ``table`` with ``ref`` and append it to the prediction log as requests of
    ``request_rows`` rows, row i stamped ``start + i * seconds_per_row``. ``version`` overrides
    the logged version; ``drop`` leaves features out of the log (as an older client would)."""
    predictor = ws.predictor(ref)
    names = predictor.signature.feature_names
    result = predictor.predict_table(table)
    with PredictionLog(log_folder(ws)) as plog:
        for i in range(0, table.num_rows, request_rows):
            part = table.slice(i, request_rows)
            outputs = {"prediction": result.predictions[i : i + request_rows]}
            for j, label in enumerate(result.classes):
                outputs[f"proba.{label}"] = result.probabilities[i : i + request_rows, j].tolist()
            plog.append(
                predictor.version.name,
                version or predictor.version.version,
                f"req-{i}",
                {n: part.column(n).to_pylist() for n in names if n not in drop},
                outputs,
                1.0,
                ts=start + i * seconds_per_row,
            )


@pytest.fixture(scope="session")
def model_ws(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Workspace:
    """loans@1 trained on 3,000 loans and promoted to production (no traffic yet)."""
    ws = Workspace.init(tmp_path_factory.mktemp("monitor") / "ws")
    ws.ingest(loans_csv, name="loans")
    ws.train("loans@latest", target="default", exclude=["loan_id"])
    ws.promote("loans", 1, alias="production")
    return ws


@pytest.fixture
def fresh_ws(model_ws: Workspace) -> Workspace:
    """``model_ws`` with an empty prediction log and no summaries (cleared after each test)."""
    import shutil

    for folder in (log_folder(model_ws), model_ws.root / ".mlscale" / "monitor"):
        shutil.rmtree(folder, ignore_errors=True)
    return model_ws
