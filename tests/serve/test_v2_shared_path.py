"""V2 requests take the server's shared path: logged, counted and batched like /v1; fuzzed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans
from mlscale.serve.app import create_app
from mlscale.serve.models import ServedModels
from mlscale.serve.predlog_reader import read_log
from mlscale.serve.v2_binary import encode

KINDS = {"int64": "INT64", "float64": "FP64", "bool": "BOOL", "string": "BYTES"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Workspace:
    ws = Workspace.init(tmp_path_factory.mktemp("v2path") / "ws")
    ws.ingest(loans_csv, name="loans")
    ws.train("loans@1", target="default", exclude=["loan_id"], params={"num_boost_round": 20})
    ws.promote("loans", 1)
    return ws


def inputs(ws: Workspace, n: int) -> list[dict[str, Any]]:
    table = generate_loans(n, seed=3, label=False)
    return [
        {"name": f["name"], "datatype": KINDS[f["type"]], "shape": [n], "data": values}
        for f in ws.model("loans@1").signature["features"]
        for values in [table[f["name"]].to_pylist()]
    ]


def test_v2_requests_are_logged_and_counted_like_v1(ws: Workspace) -> None:
    with TestClient(create_app(ServedModels(ws))) as client:
        r = client.post("/v2/models/loans/infer", json={"id": "v2-req", "inputs": inputs(ws, 4)})
        assert r.status_code == 200, r.text
        text = client.get("/metrics").text
    assert 'mlscale_requests_total{code="200",model="loans",version="1"} 1.0' in text
    logged = read_log(ws.root / ".mlscale" / "predictions", model="loans")
    assert logged.column("request_id").to_pylist() == ["v2-req"] * 4
    probabilities = next(o["data"] for o in r.json()["outputs"] if o["name"] == "probabilities")
    assert logged.column("proba.1").to_pylist() == probabilities[1::2]


def test_v2_refuses_infinite_numbers_like_v1(ws: Workspace) -> None:
    body = inputs(ws, 2)
    blobs, header = [], []
    for tensor in body:  # binary tensors can carry an infinity, which JSON cannot
        data = tensor["data"]
        if tensor["name"] == "annual_income":
            data = [float("inf"), 1.0]
        if tensor["datatype"] == "INT64" and None in data:
            tensor["datatype"], data = "FP64", [float("nan") if v is None else v for v in data]
        blobs.append(encode(tensor["datatype"], data))
        spec = {k: v for k, v in tensor.items() if k != "data"}
        header.append(spec | {"parameters": {"binary_data_size": len(blobs[-1])}})
    head = orjson.dumps({"inputs": header})
    client = TestClient(create_app(ServedModels(ws), log_predictions=False))
    r = client.post(
        "/v2/models/loans/infer",
        content=head + b"".join(blobs),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert (
        r.status_code == 400 and "feature 'annual_income': expected a finite" in r.json()["error"]
    )


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # unlike orjson, takes integers past 64 bits


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_no_v2_body_makes_the_server_fail(ws: Workspace) -> None:
    """Junk, near-valid tensors and valid ones: always a JSON answer, never a 5xx."""
    client = TestClient(create_app(ServedModels(ws), log_predictions=False))
    names = [f["name"] for f in ws.model("loans@1").signature["features"]]
    tensor = st.fixed_dictionaries(
        {
            "name": st.sampled_from([*names, "x"]),
            "datatype": st.sampled_from(["INT64", "FP64", "FP32", "BOOL", "BYTES", "INT8", "?"]),
            "shape": st.lists(st.integers(-1, 3), max_size=3),
            "data": JSON,
        }
    )
    body = st.one_of(
        JSON.map(dumps),
        st.fixed_dictionaries({"inputs": st.lists(tensor, max_size=14)}).map(dumps),
        st.binary(max_size=64),
    )

    @given(
        content=body,
        path=st.sampled_from(["/v2/models/loans/infer", "/v2/models/loans/versions/1/infer"]),
    )
    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    def check(content: bytes, path: str) -> None:
        r = client.post(path, content=content, headers={"content-type": "application/json"})
        assert r.status_code < 500, r.text
        assert r.headers["content-type"].startswith("application/json")
        if r.status_code >= 400:
            assert isinstance(r.json()["error"], str)

    check()
