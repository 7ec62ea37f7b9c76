"""The Ray backend on a real local Ray instance: training, tuning workers, scoring, connecting."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from mlscale import DataError, UserError, Workspace
from mlscale.compute.ray import connect, run_parallel
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.app import create_app
from mlscale.serve.models import ServedModels

# Ray Train copies Ray Data's context for each run, which touches its deprecated settings.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``mlscale ARGS`` in a fresh process, without the test process's Ray settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLSCALE_", "RAY_"))}
    return subprocess.run(
        [sys.executable, "-m", "mlscale", *args],
        cwd=cwd,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("model", ["lightgbm", "xgboost"])
def test_distributed_gbdt_agrees_with_local_and_serves(
    ray_address: str, ws: Workspace, loans_csv: Path, model: str
) -> None:
    ws.ingest(loans_csv, name="loans")
    options = {"target": "default", "model": model, "exclude": ["loan_id"], "seed": 7}
    local = ws.train("loans@1", name="local", **options)
    steps: list[int] = []
    on_ray = ws.train(
        "loans@1",
        name="on-ray",
        backend="ray",
        workers=2,
        progress=lambda step, _planned, _metrics: steps.append(step),
        **options,
    )
    # Same holdout rows (same seed), half the training rows on each worker.
    assert on_ray.rows_test == local.rows_test and on_ray.rows_train == local.rows_train
    assert abs(on_ray.metrics["auc"] - local.metrics["auc"]) < 0.03
    assert abs(on_ray.metrics["log_loss"] - local.metrics["log_loss"]) < 0.03

    run = ws.metadata.get_run(on_ray.run.id)
    assert run.params["backend"] == "ray" and run.params["workers"] == 2
    assert ws.metadata.get_run(local.run.id).params["backend"] == "local"
    rounds = run.params["hyperparameters"]["num_boost_round"]
    curves = json.loads(ws.artifacts.get_bytes(run.artifacts["curves"]))
    assert len(curves["valid_loss"]) == rounds and steps == list(range(1, rounds + 1))
    assert curves["valid_loss"][-1] < curves["valid_loss"][0]
    assert list(ws.scratch_dir().iterdir()) == []  # Ray Train's folder, removed

    # The version saves, loads and serves like any other.
    assert on_ray.model.flavor == model
    rows = [
        {f["name"]: r[f["name"]] for f in on_ray.model.signature["features"]}
        for r in generate_loans(5, seed=3, label=False).to_pylist()
    ]
    client = TestClient(create_app(ServedModels(ws, [on_ray.model.ref])))
    answer = client.post(f"/v1/models/{on_ray.model.ref}/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    expected = ws.predictor(on_ray.model.ref).predict_records(rows)
    assert answer.json()["probabilities"] == expected.probabilities.tolist()


def test_only_gbdt_models_train_on_ray(ws: Workspace, loans_csv: Path) -> None:
    ws.ingest(loans_csv, name="loans")
    with pytest.raises(
        UserError, match=r"'logistic' does not train on Ray; .*lightgbm and xgboost"
    ):
        ws.train("loans@1", target="default", model="logistic", backend="ray")
    with pytest.raises(UserError, match="--workers must be at least 1, got 0"):
        ws.train("loans@1", target="default", backend="ray", workers=0)
    with pytest.raises(UserError, match="out-of-core training runs locally"):
        ws.train("loans@1", target="default", backend="ray", out_of_core=True)
    assert ws.models() == []


@pytest.mark.timeout(60)  # the point: an error, not ray.init retrying for minutes
def test_an_address_that_does_not_answer_is_a_clear_error(ws: Workspace, loans_csv: Path) -> None:
    port = _unused_port()
    with pytest.raises(UserError, match=f"no Ray cluster answers at 127.0.0.1:{port} "):
        connect(f"127.0.0.1:{port}")
    with socket.create_server(("127.0.0.1", 0)) as server:  # listens, never speaks
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(UserError, match=f"{address} accepts connections but is not a Ray"):
            connect(address)
    with pytest.raises(UserError, match="expected HOST:PORT"):
        connect("127.0.0.1:http")

    ws.ingest(loans_csv, name="loans")
    root = str(ws.root)
    refused = _cli(
        ws.root, "--workspace", root, "train", "loans@1", "-t", "default",
        "--backend", "ray", "--address", f"127.0.0.1:{port}",
    )  # fmt: skip
    assert refused.returncode == 2
    assert f"error: no Ray cluster answers at 127.0.0.1:{port}" in refused.stderr
    not_gbdt = _cli(
        ws.root, "--workspace", root, "train", "loans@1", "-t", "default",
        "--model", "random_forest", "--backend", "ray",
    )  # fmt: skip
    assert not_gbdt.returncode == 2
    assert "error: model 'random_forest' does not train on Ray" in not_gbdt.stderr
    assert ws.models() == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_ray_data_scoring_writes_what_predict_file_writes(
    ray_address: str, trained_ws: Workspace, fresh_csv: Path, tmp_path: Path, fmt: str
) -> None:
    source = fresh_csv
    if fmt == "parquet":
        source = tmp_path / "fresh.parquet"
        pq.write_table(pacsv.read_csv(fresh_csv), source)
    local = trained_ws.predict("loans@production", source, tmp_path / "local.parquet")
    seen: list[int] = []
    on_ray = trained_ws.predict(
        "loans@production",
        source,
        tmp_path / "out" / "ray.parquet",
        backend="ray",
        batch_rows=250,  # several batches, which must come back in input order
        on_progress=seen.append,
    )
    assert on_ray == local | {"output": str(tmp_path / "out" / "ray.parquet")}
    expected = pq.read_table(tmp_path / "local.parquet")
    scored = pq.read_table(tmp_path / "out" / "ray.parquet")
    assert scored.schema.equals(expected.schema)
    assert scored.equals(expected)
    assert seen[-1] == 2_000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ray.parquet"]


def test_ray_data_scoring_refuses_a_bad_value_and_writes_nothing(
    ray_address: str, trained_ws: Workspace, tmp_path: Path
) -> None:
    table = generate_loans(400, seed=5, label=False)
    income = table.column("annual_income").cast(pa.string()).to_pylist()
    income[321] = "lots"
    bad = tmp_path / "bad.csv"
    pacsv.write_csv(table.set_column(table.column_names.index("annual_income"), "annual_income",
                                     pa.array(income)), bad)  # fmt: skip
    with pytest.raises(
        DataError, match=r"column 'annual_income': expected float64, found 'lots' \(1 bad row"
    ):
        trained_ws.predict("loans@production", bad, tmp_path / "out.parquet", backend="ray")
    assert list(tmp_path.glob("*.parquet")) == [] and list(tmp_path.glob(".*")) == []


def test_predict_cli_on_a_running_cluster(
    ray_address: str, trained_ws: Workspace, fresh_csv: Path, tmp_path: Path
) -> None:
    """``mlscale predict`` in a workspace configured for Ray (``[compute]`` in mlscale.toml):
    another driver joins the session's cluster; ``--backend ray --address`` does the same."""
    config = trained_ws.root / "mlscale.toml"
    settings = f'[compute]\nbackend = "ray"\nray_address = "{ray_address}"\n'
    config.write_text(config.read_text().replace("[compute]\n", settings))
    out = tmp_path / "scored.parquet"
    result = _cli(
        tmp_path, "--workspace", str(trained_ws.root), "predict", "loans@production",
        str(fresh_csv), "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "scored 2,000 rows with loans@1" in result.stdout
    trained_ws.predict("loans@production", fresh_csv, tmp_path / "local.parquet")
    assert pq.read_table(out).equals(pq.read_table(tmp_path / "local.parquet"))

    wrong_token = _cli(
        tmp_path, "--workspace", str(trained_ws.root), "predict", "loans@production",
        str(fresh_csv), "-o", str(out), "--backend", "ray", "--address", ray_address,
        env={"RAY_AUTH_TOKEN": "0" * 32},
    )  # fmt: skip
    assert wrong_token.returncode == 2
    assert f"error: the Ray cluster at {ray_address} requires a token" in wrong_token.stderr


def test_run_parallel_on_ray_returns_in_order_and_raises_the_workers_error(
    ray_address: str,
) -> None:
    polls: list[None] = []
    assert run_parallel(partial(pow, 2), 3, poll=lambda: polls.append(None)) == [1, 2, 4]
    assert polls
    with pytest.raises(ZeroDivisionError) as info:
        run_parallel(partial(divmod, 1), 2)  # worker 0 divides by zero
    assert any("in Ray worker 0" in note for note in info.value.__notes__)


def test_tuning_trials_run_as_ray_tasks(ray_address: str, ws: Workspace, loans_csv: Path) -> None:
    ws.ingest(loans_csv, name="loans")
    result = ws.tune(
        "loans@1", target="default", exclude=["loan_id"], trials=4, parallel=2, backend="ray"
    )
    assert result.complete + result.pruned == 4 and result.failed == 0
    assert ws.metadata.get_run(result.run.id).params["backend"] == "ray"
    assert ws.predictor(result.model.ref).model.flavor == "lightgbm"
