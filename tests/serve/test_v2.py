"""The V2 (Open Inference Protocol) API: in process, and over HTTP with the stock Triton client."""

from __future__ import annotations

import gzip
import importlib.metadata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as tc
from starlette.testclient import TestClient

from mlscale import Workspace
from mlscale.quickstart.loans import generate_loans
from mlscale.quickstart.walkthrough import background_server, free_port
from mlscale.serve.app import create_app
from mlscale.serve.models import ServedModels
from mlscale.serve.v2_binary import encode

STRINGS = ["home_ownership", "purpose", "state"]
INFER = "/v2/models/loans/infer"


@pytest.fixture(scope="module")
def served_ws(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Workspace:
    """loans@1 (LightGBM, production); numeric@1 (numbers only, staging); rates@1 (regression)."""
    ws = Workspace.init(tmp_path_factory.mktemp("v2") / "ws")
    ws.ingest(loans_csv, name="loans")
    ws.promote("loans", ws.train("loans@1", target="default", exclude=["loan_id"]).model.version)
    ws.train(
        "loans@1", target="default", name="numeric", model="logistic", exclude=["loan_id", *STRINGS]
    )
    ws.promote("numeric", 1, alias="staging")
    ws.train(
        "loans@1",
        target="interest_rate",
        name="rates",
        model="linear",
        exclude=["loan_id", "default"],
    )
    ws.promote("rates", 1)
    return ws


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> TestClient:
    return TestClient(create_app(ServedModels(served_ws)))


def features(ws: Workspace, ref: str = "loans@1") -> list[dict[str, Any]]:
    return ws.model(ref).signature["features"]


def columns(ws: Workspace, n: int, ref: str = "loans@1") -> dict[str, list[Any]]:
    table = generate_loans(n, seed=8, label=False)
    return {f["name"]: table[f["name"]].to_pylist() for f in features(ws, ref)}


def v2_inputs(
    ws: Workspace, cols: dict[str, list[Any]], ref: str = "loans@1"
) -> list[dict[str, Any]]:
    kinds = {"int64": "INT64", "float64": "FP64", "bool": "BOOL", "string": "BYTES"}
    return [
        {"name": f["name"], "datatype": kinds[f["type"]], "shape": [len(v)], "data": v}
        for f in features(ws, ref)
        for v in [cols[f["name"]]]
    ]


def v1_predict(client: TestClient, ref: str, cols: dict[str, list[Any]]) -> dict[str, Any]:
    r = client.post(f"/v1/models/{ref}/predict", json={"columns": cols})
    assert r.status_code == 200, r.text
    return r.json()


def test_health_and_server_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json() == {
        "name": "mlscale",
        "version": importlib.metadata.version("mlscale"),
        "extensions": ["binary_tensor_data"],
    }


def test_model_metadata(client: TestClient, served_ws: Workspace) -> None:
    meta = client.get("/v2/models/loans").json()
    assert meta["name"] == "loans" and meta["versions"] == ["1"]
    assert meta["platform"] == "mlscale-lightgbm"
    by_name = {t["name"]: t for t in meta["inputs"]}
    assert list(by_name) == [f["name"] for f in features(served_ws)]
    assert by_name["age"] == {"name": "age", "datatype": "INT64", "shape": [-1, 1]}
    assert by_name["annual_income"]["datatype"] == "FP64"
    assert by_name["state"]["datatype"] == "BYTES"
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert client.get("/v2/models/loans/versions/1").json() == meta
    rates = client.get("/v2/models/rates").json()
    assert rates["platform"] == "mlscale-linear"
    assert rates["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]


def test_readiness_and_unknown_models(client: TestClient) -> None:
    assert client.get("/v2/models/loans/ready").json() == {"name": "loans", "ready": True}
    assert client.get("/v2/models/loans/versions/1/ready").status_code == 200
    for path, message in [
        ("/v2/models/ghost/ready", "model 'ghost' is not served here (served: loans, numeric"),
        ("/v2/models/loans/versions/9/ready", "no version 9"),
        ("/v2/models/loans/versions/0/ready", "no version '0'"),
        ("/v2/models/loans/versions/abc", "no version 'abc'"),
        ("/v2/models/ghost", "model 'ghost' is not served here"),
    ]:
        r = client.get(path)
        assert r.status_code == 404 and message in r.json()["error"], (path, r.text)
    r = client.post("/v2/models/ghost/versions/1/infer", json={"inputs": []})
    assert r.status_code == 404


def test_json_infer_matches_v1(client: TestClient, served_ws: Workspace) -> None:
    cols = columns(served_ws, 40)  # nulls in employment_years: JSON null
    assert None in cols["employment_years"]
    inputs = v2_inputs(served_ws, cols)
    inputs[0] |= {"shape": [40, 1], "data": [[v] for v in inputs[0]["data"]]}  # nested is fine
    r = client.post(INFER, json={"id": "req-7", "inputs": inputs})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    v1 = v1_predict(client, "loans@production", cols)
    assert body["model_name"] == "loans" and body["model_version"] == "1" and body["id"] == "req-7"
    predict, probabilities = body["outputs"]
    assert predict == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [40],
        "data": v1["predictions"],
    }
    assert probabilities["shape"] == [40, 2] and probabilities["datatype"] == "FP64"
    assert np.array(probabilities["data"]).reshape(40, 2).tolist() == v1["probabilities"]


def test_requested_outputs_and_regression(client: TestClient, served_ws: Workspace) -> None:
    cols = columns(served_ws, 3)
    request = {"inputs": v2_inputs(served_ws, cols), "outputs": [{"name": "probabilities"}]}
    outputs = client.post(INFER, json=request).json()["outputs"]
    assert [o["name"] for o in outputs] == ["probabilities"]
    cols = columns(served_ws, 3, "rates@1")
    request = {"inputs": v2_inputs(served_ws, cols, "rates@1")} | {"outputs": [{"name": "x"}]}
    r = client.post("/v2/models/rates/infer", json=request)
    assert r.status_code == 400
    assert r.json()["error"] == "unknown output 'x': this model has outputs predict"
    for outputs, message in [
        ("predict", '"outputs" must be a list of objects'),
        ([{"name": ["predict"]}], "unknown output ['predict']"),
        ([{"name": "predict", "parameters": {"classification": 2}}], "classification extension"),
    ]:
        r = client.post("/v2/models/rates/infer", json=request | {"outputs": outputs})
        assert r.status_code == 400 and message in r.json()["error"], r.text
    del request["outputs"]
    predict = client.post("/v2/models/rates/infer", json=request).json()["outputs"]
    assert predict[0]["datatype"] == "FP64" and len(predict) == 1
    assert predict[0]["data"] == v1_predict(client, "rates@1", cols)["predictions"]


def test_matrix_input_when_every_feature_is_numeric(
    client: TestClient, served_ws: Workspace
) -> None:
    cols = columns(served_ws, 5, "numeric@1")
    names = list(cols)
    matrix = [list(row) for row in zip(*cols.values(), strict=True)]  # nulls stay missing
    request = {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [5, len(names)], "data": matrix}]
    }
    r = client.post("/v2/models/numeric/infer", json=request)  # no production alias: latest
    assert r.status_code == 200, r.text
    probabilities = r.json()["outputs"][1]["data"]
    assert (
        np.array(probabilities).reshape(5, 2).tolist()
        == v1_predict(client, "numeric@1", cols)["probabilities"]
    )
    r = client.post(INFER, json=request)
    assert r.status_code == 400
    assert (
        "as a matrix it needs shape [N, 12], one column per feature in order (age,"
        in r.json()["error"]
    )
    request["inputs"][0]["shape"] = [1, 12]
    request["inputs"][0]["data"] = [0.0] * 12
    error = client.post(INFER, json=request).json()["error"]
    assert "a matrix input needs every feature numeric, but 'home_ownership' (string)" in error


def binary_request(
    inputs: list[dict[str, Any]], *, as_json: tuple[str, ...] = (), **extra: Any
) -> tuple[bytes, dict[str, str]]:
    """A request sending inputs' data as binary data (as tritonclient does), but ``as_json``."""
    blobs, header_inputs = [], []
    for spec in inputs:
        if spec["name"] in as_json:
            header_inputs.append(spec)
            continue
        blobs.append(encode(spec["datatype"], spec["data"]))
        header = {k: v for k, v in spec.items() if k != "data"}
        header_inputs.append(header | {"parameters": {"binary_data_size": len(blobs[-1])}})
    header = orjson.dumps({"inputs": header_inputs, **extra})
    return header + b"".join(blobs), {"Inference-Header-Content-Length": str(len(header))}


def test_binary_tensors_in_and_out(client: TestClient, served_ws: Workspace) -> None:
    cols = columns(served_ws, 30)
    cols = {k: [np.nan if v is None else v for v in vs] for k, vs in cols.items()}
    inputs = v2_inputs(served_ws, cols)
    for spec in inputs:
        if spec["name"] == "credit_score":  # an int feature with missing values goes as FP64
            spec["datatype"] = "FP64"
    body, headers = binary_request(inputs, parameters={"binary_data_output": True})
    r = client.post(INFER, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    size = int(r.headers["inference-header-content-length"])
    header = orjson.loads(r.content[:size])
    predict, probabilities = header["outputs"]
    assert "data" not in predict and predict["parameters"] == {"binary_data_size": 30 * 8}
    data = r.content[size:]
    labels = np.frombuffer(data[: 30 * 8], "<i8")
    proba = np.frombuffer(data[30 * 8 :], "<f8").reshape(30, 2)
    v1 = v1_predict(
        client, "loans@1", {k: [None if v != v else v for v in vs] for k, vs in cols.items()}
    )
    assert labels.tolist() == v1["predictions"] and proba.tolist() == v1["probabilities"]
    # One output binary, one JSON; the request's input data mixes binary and JSON too.
    body, headers = binary_request(
        inputs,
        as_json=("age",),
        outputs=[
            {"name": "predict"},
            {"name": "probabilities", "parameters": {"binary_data": True}},
        ],
    )
    r = client.post(INFER, content=body, headers=headers)
    assert r.status_code == 200, r.text
    size = int(r.headers["inference-header-content-length"])
    predict, probabilities = orjson.loads(r.content[:size])["outputs"]
    assert predict["data"] == v1["predictions"] and "data" not in probabilities
    assert np.frombuffer(r.content[size:], "<f8").reshape(30, 2).tolist() == v1["probabilities"]


def test_gzip_request_body(client: TestClient, served_ws: Workspace) -> None:
    body = orjson.dumps({"inputs": v2_inputs(served_ws, columns(served_ws, 2))})
    r = client.post(INFER, content=gzip.compress(body), headers={"content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    r = client.post(INFER, content=body, headers={"content-encoding": "br"})
    assert r.status_code == 400 and "Content-Encoding 'br' is not supported" in r.json()["error"]


Mutation = Callable[[list[dict[str, Any]]], Any]


def _set(i: int, **fields: Any) -> Mutation:
    return lambda inputs: inputs[i].update(fields)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda inputs: inputs.pop(5), "missing feature(s) 'credit_score'"),
        (
            lambda inputs: inputs.append(
                {"name": "nope", "datatype": "FP64", "shape": [2], "data": [1, 2]}
            ),
            "unknown field(s) 'nope'",
        ),
        (
            _set(0, datatype="BYTES", data=["1", "2"]),
            "input 'age': datatype BYTES does not fit the feature's type int64; send INT64",
        ),
        (
            _set(7, datatype="FP64", data=[1.0, 2.0]),
            "input 'home_ownership': datatype FP64 does not fit the feature's type string; send BYTES",
        ),
        (_set(0, data=[30, 40, 50]), "input 'age': shape [2] holds 2 elements but 3 were sent"),
        (
            _set(0, datatype="FLOAT"),
            "input 'age': datatype 'FLOAT' is not one of BOOL, BYTES, FP16",
        ),
        (_set(0, shape=[1, 2]), "input 'age': expected shape [N] or [N, 1], found [1, 2]"),
        (_set(0, shape=["2"]), "input 'age': shape must be a list of non-negative integers"),
        (
            _set(0, shape=[1], data=[30]),
            "inputs must have the same number of rows; found 'age' 1, 'annual_income' 2",
        ),
        (
            _set(5, data=["high", 700]),
            "row 0, feature 'credit_score': expected a number, found 'high'",
        ),
        (_set(0, data=None), "input 'age': expected 'data' (a list) or binary data"),
        (lambda inputs: inputs.append(inputs[0]), "input 'age' is sent twice"),
        (lambda inputs: [s.update(shape=[0], data=[]) for s in inputs], "no rows to infer"),
        (lambda inputs: inputs.clear(), '"inputs" must be a non-empty list of tensors'),
        (_set(0, parameters=[1]), "input 'age': 'parameters' must be an object"),
        (_set(0, datatype=["FP64"]), "input 'age': datatype ['FP64'] is not one of"),
        (lambda inputs: inputs.insert(0, 7), "inputs[0] must be an object with a string 'name'"),
    ],
)
def test_bad_tensors_get_a_400_naming_them(
    client: TestClient, served_ws: Workspace, mutate: Mutation, message: str
) -> None:
    inputs = v2_inputs(served_ws, columns(served_ws, 2))
    mutate(inputs)
    r = client.post(INFER, json={"inputs": inputs})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def _age(**fields: Any) -> bytes:
    spec = {"name": "age", "datatype": "INT64", "shape": [1]} | fields
    return orjson.dumps({"inputs": [spec]})


@pytest.mark.parametrize(
    ("header", "binary", "message"),
    [
        (b"{not json", None, "inference request is not valid JSON"),
        (b"[]", None, "expected an inference request object"),
        (
            _age(parameters={"binary_data_size": 8}),
            b"1234",
            "binary_data_size 8 does not fit the 4",
        ),
        (_age(data=[1]), b"1234", "4 bytes of binary data follow the JSON header but the inputs'"),
        (
            _age(parameters={"binary_data_size": 4}),
            b"1234",
            "4 bytes of binary data is not a whole",
        ),
        (
            _age(datatype="BYTES", parameters={"binary_data_size": 4}),
            b"\x09\x00\x00\x00",
            "input 'age': BYTES element 0 claims 9 bytes but only 0 remain",
        ),
        (
            _age(datatype="BYTES", parameters={"binary_data_size": 5}),
            b"\x01\x00\x00\x00\xff",
            "input 'age': BYTES element 0 is not UTF-8",
        ),
    ],
)
def test_bad_bodies_get_a_400(
    client: TestClient, header: bytes, binary: bytes | None, message: str
) -> None:
    headers = {} if binary is None else {"Inference-Header-Content-Length": str(len(header))}
    r = client.post(INFER, content=header + (binary or b""), headers=headers)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    r = client.post(INFER, content=b"{}", headers={"Inference-Header-Content-Length": "99"})
    assert r.status_code == 400 and "at most the body's 2 bytes" in r.json()["error"]


# -- the stock Triton client against a real server on loopback -------------------------------


@pytest.fixture(scope="module")
def server(served_ws: Workspace) -> Iterator[str]:
    with background_server(served_ws.root, free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def triton(server: str) -> Any:
    client = tc.InferenceServerClient(url=server.removeprefix("http://"))
    yield client
    client.close()


def triton_inputs(cols: dict[str, list[Any]], *, binary: bool) -> list[Any]:
    inputs = []
    for name, values in cols.items():
        if name in STRINGS:
            array = np.array([[v.encode()] for v in values], dtype=np.object_)
        elif None in values or isinstance(values[0], float):
            array = np.array([[np.nan if v is None else v] for v in values], dtype=np.float64)
        else:
            array = np.array([[v] for v in values], dtype=np.int64)
        inputs.append(tc.InferInput(name, list(array.shape), tc.np_to_triton_dtype(array.dtype)))
        inputs[-1].set_data_from_numpy(array, binary_data=binary)
    return inputs


def test_tritonclient_binary(triton: Any, server: str, served_ws: Workspace) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    assert triton.is_model_ready("loans") and triton.is_model_ready("loans", "1")
    assert not triton.is_model_ready("ghost") and not triton.is_model_ready("loans", "9")
    meta = triton.get_model_metadata("loans")
    assert meta["versions"] == ["1"] and len(meta["inputs"]) == 12
    cols = columns(served_ws, 50)
    v1 = httpx.post(f"{server}/v1/models/loans@production/predict", json={"columns": cols}).json()
    result = triton.infer(
        "loans",
        inputs=triton_inputs(cols, binary=True),
        outputs=[tc.InferRequestedOutput("probabilities", binary_data=True)],
    )
    assert result.get_output("probabilities")["parameters"] == {"binary_data_size": 50 * 2 * 8}
    assert result.as_numpy("probabilities").tolist() == v1["probabilities"]
    assert result.as_numpy("predict") is None
    result = triton.infer("loans", inputs=triton_inputs(cols, binary=True), model_version="1")
    assert result.as_numpy("predict").tolist() == v1["predictions"]  # default: binary outputs
    with pytest.raises(tc.InferenceServerException) as info:
        triton.infer("loans", inputs=triton_inputs(cols, binary=True)[1:])
    assert info.value.status() == "400" and "missing feature(s) 'age'" in info.value.message()


def test_tritonclient_json(triton: Any, server: str, served_ws: Workspace) -> None:
    cols = columns(served_ws, 60)
    complete = [i for i in range(60) if all(vs[i] is not None for vs in cols.values())]
    cols = {k: [vs[i] for i in complete] for k, vs in cols.items()}  # JSON has no NaN
    v1 = httpx.post(f"{server}/v1/models/loans@production/predict", json={"columns": cols}).json()
    result = triton.infer(
        "loans",
        inputs=triton_inputs(cols, binary=False),
        outputs=[
            tc.InferRequestedOutput("predict", binary_data=False),
            tc.InferRequestedOutput("probabilities", binary_data=False),
        ],
        request_id="json-1",
    )
    response = result.get_response()
    assert response["id"] == "json-1" and response["model_version"] == "1"
    assert result.as_numpy("predict").tolist() == v1["predictions"]
    assert result.as_numpy("probabilities").tolist() == v1["probabilities"]
