"""Delayed labels: files and HTTP posts, joined by row id to the real prediction log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from uuid import uuid4

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient
from tests.monitor.conftest import NOW

from mlscale import NotFoundError, SchemaError, UserError, Workspace
from mlscale.monitor import ingest_labels, label_status, update_index
from mlscale.monitor.label_store import open_label_store
from mlscale.monitor.windows import log_folder
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.app import create_app
from mlscale.serve.models import ServedModels
from mlscale.serve.predlog import PredictionLog


def log_requests(
    ws: Workspace,
    requests: Sequence[tuple[str, Sequence[float], float]],
    *,
    version: int = 1,
    segment_max_rows: int = 100_000,
) -> None:
    """Log ``(request id, probabilities of class 1, time)`` requests of loans as the server does."""
    with PredictionLog(log_folder(ws), segment_max_rows=segment_max_rows) as plog:
        for request_id, p1, ts in requests:
            p1 = list(p1)
            plog.append(
                "loans",
                version,
                request_id,
                {"age": [40.0] * len(p1)},
                {
                    "prediction": [int(p >= 0.5) for p in p1],
                    "proba.0": [1 - p for p in p1],
                    "proba.1": p1,
                },
                1.0,
                ts=ts,
            )


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_csv_labels_join_by_row_id(fresh_ws: Workspace, tmp_path: Path) -> None:
    ws = fresh_ws
    log_requests(ws, [("one", [0.2], NOW), ("many", [0.1, 0.7, 0.9], NOW + 1)])
    labels = write_csv(
        tmp_path / "labels.csv",
        "request_id,default,note",
        [
            "one,1,x",
            "many:0,0,x",
            "many:2,1,x",
            "many:2,0,x",  # the same id again: the later label wins
            "ghost,1,x",  # no such prediction (yet)
            "many:1,maybe,x",  # not a class of the model
            ",1,x",  # no id
            "many:1,,x",  # no label
        ],
    )
    result = ingest_labels(ws, "loans", labels, id_column="request_id")
    assert (result.received, result.stored, result.replaced, result.invalid) == (8, 5, 1, 3)
    assert (result.joined, result.unknown, result.unknown_ids) == (4, 1, ["ghost"])
    assert result.reasons == {"wrong type": 1, "missing id": 1, "missing label": 1}
    assert result.problems[0] == (
        "row 6 (id 'many:1'): expected one of the classes 0, 1; found 'maybe'"
    )
    assert (result.total_labels, result.total_unknown) == (4, 1)
    with open_label_store(ws) as store:
        rows = store.window_rows("loans", 1, int(NOW * 1e6), int((NOW + 2) * 1e6))
    assert [r.label for r in rows] == ["1", "0", None, "0"]  # one, many:0, many:1, many:2

    # Labelling again is idempotent: the same ids are replaced, nothing is added.
    again = ingest_labels(ws, "loans", labels, id_column="request_id")
    assert (again.stored, again.replaced, again.total_labels) == (5, 5, 4)


def test_unknown_ids_join_when_the_prediction_is_logged_later(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    early = ingest_labels(
        ws, "loans@production", [{"id": "late", "label": 1}], label_column="label"
    )
    assert (early.stored, early.joined, early.unknown) == (1, 0, 1)
    assert label_status(ws, "loans").unknown_ids == ["late"]
    log_requests(ws, [("late", [0.8], NOW)])
    status = label_status(ws, "loans")
    assert (status.labels, status.joined, status.unknown) == (1, 1, 0)


def test_parquet_labels_with_a_label_column_and_timestamps(
    fresh_ws: Workspace, tmp_path: Path
) -> None:
    ws = fresh_ws
    log_requests(ws, [(f"r{i}", [0.3], NOW + i) for i in range(4)])
    path = tmp_path / "labels.parquet"
    pq.write_table(
        pa.table(
            {
                "rid": ["r0", "r1", "r2", "r3"],
                "outcome": [0, 1, 1, 0],
                "at": ["2027-01-16T10:00:00", "2027-01-16 11:00", "1800000000", "yesterday"],
            }
        ),
        path,
    )
    result = ingest_labels(
        ws, "loans", path, id_column="rid", label_column="outcome", timestamp_column="at"
    )
    assert (result.stored, result.joined, result.invalid) == (3, 3, 1)
    assert "row 4 (id 'r3'): expected a timestamp" in result.problems[0]


def test_a_request_cut_across_log_segments_keeps_one_numbering(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    # 52 rows in segments of 30: 'long' spans both, as a log rolling over mid-request does.
    log_requests(
        ws,
        [("a", [0.5], NOW), ("long", [0.5] * 50, NOW + 1), ("z", [0.5], NOW + 2)],
        segment_max_rows=30,
    )
    assert len(list(log_folder(ws).joinpath("loans").glob("seg-*"))) == 2
    ids = ["a", "z"] + [f"long:{i}" for i in range(50)]
    result = ingest_labels(ws, "loans", [{"id": i, "label": 0} for i in ids], label_column="label")
    assert (result.joined, result.unknown) == (52, 0)


def test_a_corrupt_log_segment_is_reported_and_the_rest_is_joined(fresh_ws: Workspace) -> None:
    ws = fresh_ws
    log_requests(ws, [("good", [0.4], NOW)])
    (log_folder(ws) / "loans" / "seg-00000000T000000000000Z-000.arrows").write_bytes(b"garbage")
    result = ingest_labels(ws, "loans", [{"id": "good", "label": 1}], label_column="label")
    assert result.joined == 1
    assert any("corrupt log segment skipped" in p for p in result.log_problems)
    assert update_index(ws, "loans")[0].problems == []  # reported once, then remembered


def test_bad_sources_name_the_problem(fresh_ws: Workspace, tmp_path: Path) -> None:
    ws = fresh_ws
    path = write_csv(tmp_path / "l.csv", "id,default", ["a,1"])
    with pytest.raises(SchemaError, match=r"no id column 'request_id'.*the file has: id, default"):
        ingest_labels(ws, "loans", path, id_column="request_id")
    with pytest.raises(NotFoundError):
        ingest_labels(ws, "nosuchmodel", path)
    with pytest.raises(UserError, match="no labels in"):
        ingest_labels(ws, "loans", write_csv(tmp_path / "e.csv", "id,default", []))


@pytest.fixture
def client(fresh_ws: Workspace) -> TestClient:
    return TestClient(create_app(ServedModels(fresh_ws)))


def feature_rows(ws: Workspace, n: int) -> list[dict]:
    names = [f["name"] for f in ws.model("loans@production").signature["features"]]
    return [{k: r[k] for k in names} for r in generate_loans(n, seed=8, label=False).to_pylist()]


def test_labels_posted_to_the_server_join_its_logged_predictions(
    client: TestClient, fresh_ws: Workspace
) -> None:
    with client:  # the lifespan flushes the prediction log on exit
        rows = feature_rows(fresh_ws, 3)
        r = client.post(
            "/v1/models/loans@production/predict", json={"rows": rows},
            headers={"x-request-id": "batch-7"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        single = client.post("/v1/models/loans/predict", json={"rows": rows[:1]})
        single_id = single.json()["request_id"]
    with client:
        body = {
            "labels": [
                {"id": "batch-7:0", "label": 1},
                {"id": "batch-7:2", "label": "0"},
                {"id": single_id, "label": 0, "ts": "2027-01-16T10:00:00"},
                {"id": "nobody", "label": 1},
                {"id": "batch-7:1", "label": 7},
            ]
        }
        r = client.post("/v1/models/loans/labels", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert (answer["stored"], answer["joined"], answer["unknown"]) == (4, 3, 1)
        assert answer["invalid"] == 1 and "found 7" in answer["problems"][0]

        refused = client.post("/v1/models/loans/labels", json={"labels": [{"id": "x"}]})
        assert refused.status_code == 422
        assert (
            "every label was refused (1): labels[0] (id 'x'): missing label"
            in (refused.json()["error"])
        )
        for payload, status, message in (
            ({"rows": []}, 422, 'expected {"labels"'),
            ({"labels": []}, 422, "no labels to store"),
        ):
            r = client.post("/v1/models/loans/labels", json=payload)
            assert (r.status_code, message in r.json()["error"]) == (status, True), r.text
        r = client.post("/v1/models/loans/labels", content=b"{not json")
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        r = client.post("/v1/models/ghost/labels", json={"labels": [{"id": "a", "label": 1}]})
        assert r.status_code == 404 and "ghost" in r.json()["error"]


def test_posting_labels_needs_a_predict_token_when_tokens_are_required(
    fresh_ws: Workspace,
) -> None:
    from mlscale.serve.auth import required_role

    assert required_role("/v1/models/loans/labels") == "predict"
    secret = fresh_ws.metadata.create_token(f"labeller-{uuid4().hex[:8]}", role="predict")[1]
    with TestClient(create_app(ServedModels(fresh_ws), require_token=True)) as client:
        body = {"labels": [{"id": "a", "label": 1}]}
        assert client.post("/v1/models/loans/labels", json=body).status_code == 401
        r = client.post(
            "/v1/models/loans/labels", json=body, headers={"authorization": f"Bearer {secret}"}
        )
        assert r.status_code == 200 and json.loads(r.text)["unknown"] == 1
