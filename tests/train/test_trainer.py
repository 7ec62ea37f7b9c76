from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mlscale import NotFoundError, SchemaError, UserError, Workspace
from mlscale.train.task import infer_task


def test_train_registers_a_version_with_lineage(ws: Workspace, loans_csv: Path) -> None:
    ws.ingest(loans_csv, name="loans")
    result = ws.train("loans@1", target="default")
    mv = result.model
    assert mv.ref == "loans@1" and mv.flavor == "lightgbm" and mv.dataset == "loans@1"
    assert 0.65 < result.metrics["auc"] < 0.95
    assert set(result.metrics) == {"auc", "log_loss", "accuracy"}
    sig = mv.signature
    assert sig["task"] == "binary" and sig["classes"] == [0, 1]
    assert "loan_id" in sig["excluded"] and "application_date" in sig["excluded"]
    run = ws.metadata.get_run(result.run.id)
    assert run.status == "finished" and run.dataset == "loans@1" and run.duration_s > 0
    assert run.params["hyperparameters"]["num_leaves"] == 31
    assert run.env["packages"]["lightgbm"]
    predictor = ws.predictor("loans@1")
    assert predictor.version == mv


def test_logistic_and_regression(ws: Workspace, loans_csv: Path) -> None:
    ws.ingest(loans_csv, name="loans")
    logistic = ws.train("loans@1", target="default", model="logistic", name="loans-lr")
    assert logistic.model.flavor == "linear" and logistic.metrics["auc"] > 0.65
    reg = ws.train("loans@1", target="interest_rate", name="rate")
    assert reg.model.signature["task"] == "regression" and reg.metrics["r2"] > 0.5
    with pytest.raises(UserError, match="'logistic' is a classifier"):
        ws.train("loans@1", target="interest_rate", model="logistic")


def test_bad_training_requests_leave_the_workspace_unchanged(
    ws: Workspace, loans_csv: Path, tmp_path: Path
) -> None:
    ws.ingest(loans_csv, name="loans")
    one_class = tmp_path / "one.csv"
    pacsv.write_csv(pa.table({"x": [1.0, 2.0, 3.0], "y": ["a", "a", "a"]}), one_class)
    ws.ingest(one_class, name="one")
    with pytest.raises(SchemaError, match="unknown target column 'nope' in loans@1"):
        ws.train("loans@1", target="nope")
    with pytest.raises(
        SchemaError, match="target column 'y' has one class \\('a'\\) in all 3 rows"
    ):
        ws.train("one@latest", target="y")
    with pytest.raises(NotFoundError, match="no dataset named 'lons'"):
        ws.train("lons@1", target="default")
    with pytest.raises(UserError, match="unknown model 'catboost'"):
        ws.train("loans@1", target="default", model="catboost")
    assert ws.models() == [] and ws.metadata.list_runs() == []


@pytest.mark.parametrize(
    ("values", "type_", "task"),
    [
        ([0, 1, 1], "int64", "binary"),
        (["a", "b", "c"], "string", "multiclass"),
        ([True, False], "bool", "binary"),
        ([float(i) / 3 for i in range(50)], "float64", "regression"),
        (list(range(100)), "int64", "regression"),
    ],
)
def test_task_inference(values: list, type_: str, task: str) -> None:
    assert infer_task(pa.chunked_array([values]), "t", type_) == task
