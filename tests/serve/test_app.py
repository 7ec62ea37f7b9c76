"""The HTTP API in process (Starlette's test client over the real app)."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from mlscale import NotFoundError, SchemaError, Workspace
from mlscale.quickstart.loans import generate_loans
from mlscale.serve import models as served_module
from mlscale.serve.app import create_app
from mlscale.serve.models import ServedModels


@pytest.fixture
def client(trained_ws: Workspace) -> TestClient:
    return TestClient(create_app(ServedModels(trained_ws)))


def feature_rows(ws: Workspace, n: int) -> list[dict]:
    names = ws.model("loans@production").signature["features"]
    table = generate_loans(n, seed=8, label=False)
    return [{f["name"]: r[f["name"]] for f in names} for r in table.to_pylist()]


def test_predict_rows_and_columns(client: TestClient, trained_ws: Workspace) -> None:
    rows = feature_rows(trained_ws, 3)
    r = client.post("/v1/models/loans@production/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "loans" and body["version"] == 1
    assert len(body["predictions"]) == 3 and body["classes"] == [0, 1]
    assert all(abs(sum(p) - 1) < 1e-9 for p in body["probabilities"])
    assert r.headers["x-request-id"] == body["request_id"]
    columns = {k: [row[k] for row in rows] for k in rows[0]}
    r2 = client.post("/v1/models/loans@1/predict", json={"columns": columns})
    assert r2.json()["probabilities"] == body["probabilities"]
    assert client.get("/healthz").json()["models"] == ["loans"]


def test_server_and_batch_scoring_agree(
    client: TestClient, trained_ws: Workspace, tmp_path: Path
) -> None:
    import pyarrow.csv as pacsv

    table = generate_loans(300, seed=8, label=False)
    pacsv.write_csv(table, tmp_path / "in.csv")
    trained_ws.predict("loans@production", tmp_path / "in.csv", tmp_path / "out.parquet")
    batch = pq.read_table(tmp_path / "out.parquet")
    r = client.post(
        "/v1/models/loans@production/predict", json={"rows": feature_rows(trained_ws, 300)}
    )
    assert r.json()["probabilities"] == [
        list(p)
        for p in zip(batch["proba_0"].to_pylist(), batch["proba_1"].to_pylist(), strict=True)
    ]
    assert r.json()["predictions"] == batch["prediction"].to_pylist()
    assert batch.column_names[: len(table.column_names)] == table.column_names


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "request body is not valid JSON"),
        (b'{"rows": [{"age": 30}]}', 422, "missing feature(s) 'annual_income'"),
        (b'{"rows": []}', 422, "no rows to predict"),
        (b'{"data": []}', 422, 'expected {"rows"'),
        (b'{"rows": "x"}', 422, '"rows" must be a list'),
    ],
)
def test_bad_requests_get_a_json_error(
    client: TestClient, body: bytes, status: int, message: str
) -> None:
    r = client.post("/v1/models/loans@production/predict", content=body)
    assert r.status_code == status
    assert message in r.json()["error"]
    assert client.get("/healthz").status_code == 200  # still serving


def test_wrong_type_names_row_and_feature(client: TestClient, trained_ws: Workspace) -> None:
    row = feature_rows(trained_ws, 1)[0] | {"credit_score": "high"}
    r = client.post("/v1/models/loans@production/predict", json={"rows": [row]})
    assert r.status_code == 422
    assert r.json()["error"] == "row 0, feature 'credit_score': expected a number, found 'high'"


def test_unknown_models_and_routes(client: TestClient) -> None:
    r = client.post("/v1/models/nope@1/predict", json={"rows": [{}]})
    assert r.status_code == 404 and "model 'nope' is not served here" in r.json()["error"]
    r = client.post("/v1/models/loans@staging/predict", json={"rows": [{}]})
    assert r.status_code == 404 and "no alias 'staging'" in r.json()["error"]
    r = client.post("/v1/models/loans@9/predict", json={"rows": [{}]})
    assert r.status_code == 404 and "no version 9" in r.json()["error"]
    assert client.get("/nowhere").json() == {"error": "Not Found"}


def test_alias_moves_are_served_after_warm_up_and_bad_versions_are_not(
    trained_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(served_module, "ALIAS_POLL_S", 0.05)
    models = ServedModels(trained_ws)
    client = TestClient(create_app(models, log_predictions=False))
    rows = feature_rows(trained_ws, 1)
    url = "/v1/models/loans@production/predict"

    def served_version(expected: int) -> int:
        deadline = time.monotonic() + 5
        while True:
            version = client.post(url, json=rows).json()["version"]
            if version == expected or time.monotonic() > deadline:
                return version
            time.sleep(0.05)

    assert served_version(1) == 1
    trained_ws.train("loans@1", target="default", model="logistic")
    trained_ws.promote("loans", 2, alias="production")
    assert served_version(2) == 2
    # A version whose artifact is damaged: the server keeps serving version 2 and says why.
    v3 = trained_ws.train("loans@1", target="default", params={"num_leaves": 7}).model
    blob = next((trained_ws.root / ".mlscale" / "artifacts").rglob(v3.artifact_sha[2:]))
    blob.write_bytes(b"damaged")
    trained_ws.promote("loans", 3, alias="production")
    time.sleep(0.5)
    assert client.post(url, json=rows).json()["version"] == 2
    health = client.get("/healthz").json()
    assert "version 3 failed to load" in health["errors"]["loans@production"]
    trained_ws.promote("loans", 1, alias="production")  # rollback is moving the alias back
    assert served_version(1) == 1
    models.close()


def test_serving_nothing_is_an_error(ws: Workspace) -> None:
    with pytest.raises(NotFoundError):
        ServedModels(ws, ["loans@1"])
    assert ServedModels(ws).names == []


def test_metrics_access_log_and_prediction_log(
    trained_ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    from mlscale.serve.predlog_reader import read_log

    rows = feature_rows(trained_ws, 3)
    with TestClient(create_app(ServedModels(trained_ws))) as client, caplog.at_level("INFO"):
        r = client.post("/v1/models/loans@production/predict", json={"rows": rows})
        assert r.status_code == 200
        client.post("/v1/models/loans@production/predict", content=b"{oops")
        text = client.get("/metrics").text
    # the app closed: its prediction log is flushed
    assert 'mlscale_requests_total{code="200",model="loans",version="1"} 1.0' in text
    assert 'mlscale_requests_total{code="400",model="loans",version="1"} 1.0' in text
    assert "mlscale_request_latency_seconds_bucket" in text
    lines = [json.loads(m) for m in caplog.messages if m.startswith("{")]
    assert any(line["status"] == 200 and line["rows"] == 3 for line in lines)
    logged = read_log(trained_ws.root / ".mlscale" / "predictions", model="loans")
    assert logged.num_rows == 3
    assert logged.column("request_id").to_pylist() == [r.json()["request_id"]] * 3
    assert logged.column("proba.1").to_pylist() == [p[1] for p in r.json()["probabilities"]]


def test_unseen_categories_infinite_numbers_and_huge_bodies(trained_ws: Workspace) -> None:
    row = feature_rows(trained_ws, 1)[0] | {"state": "ZZ"}
    url = "/v1/models/loans@production/predict"
    lenient = TestClient(create_app(ServedModels(trained_ws), log_predictions=False))
    assert lenient.post(url, json={"rows": [row]}).status_code == 200
    strict = TestClient(
        create_app(ServedModels(trained_ws), log_predictions=False, unseen="reject")
    )
    r = strict.post(url, json={"rows": [row]})
    assert r.status_code == 422
    assert r.json()["error"].startswith(
        "row 0, feature 'state': 'ZZ' was not seen in training (known: CA"
    )
    columns = {k: [v] for k, v in row.items()}
    assert strict.post(url, json={"columns": columns}).status_code == 422
    # JSON cannot carry an infinite number: 1e400 is refused as a number out of range.
    huge = json.dumps({"rows": [feature_rows(trained_ws, 1)[0]]}).replace(
        '"age": ', '"age": 1e400, "x": '
    )
    r = lenient.post(url, content=huge)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    X = np.array([[np.inf] + [0.0] * (len(row) - 1)])
    from mlscale.serve.app import _check_values

    with pytest.raises(SchemaError, match="expected a finite number, found inf"):
        _check_values(trained_ws.predictor("loans@1"), [row], False, X, "unknown")
    r = lenient.post(url, content=b"x", headers={"content-length": str(64 << 20)})
    assert r.status_code == 413 and "the limit is" in r.json()["error"]


def test_answer_cache_serves_repeated_requests(trained_ws: Workspace) -> None:
    models = ServedModels(trained_ws)
    client = TestClient(create_app(models, log_predictions=False, cache_size=2))
    predictor = models.get("loans@production")
    calls: list[int] = []
    original = predictor.predict_matrix

    def counting(X: np.ndarray):  # type: ignore[no-untyped-def]
        calls.append(len(X))
        return original(X)

    predictor.predict_matrix = counting  # type: ignore[method-assign]
    rows = feature_rows(trained_ws, 3)
    url = "/v1/models/loans@production/predict"
    first = client.post(url, json={"rows": rows[:1]}).json()
    again = client.post(url, json={"rows": rows[:1]}).json()
    assert first["probabilities"] == again["probabilities"]
    assert first["request_id"] != again["request_id"]
    assert len(calls) == 1
    client.post(url, json={"rows": rows[1:2]})
    client.post(url, json={"rows": rows[2:3]})
    client.post(url, json={"rows": rows[:1]})  # evicted by the two newer ones: predicted again
    assert len(calls) == 4
