"""The Open Inference Protocol (KServe V2) REST API, with Triton's binary tensor data extension.

Stock V2 clients (``tritonclient.http``, KServe's) work unchanged. Which version answers:

* ``/v2/models/{name}/...`` serves the version behind alias ``production`` when there is one, else
  the latest version (``name@production``, else ``name@latest``);
* ``/v2/models/{name}/versions/{n}/...`` serves version ``n`` (``name@n``); V2 versions are numbers.

A request sends one tensor per feature, named after it, of shape ``[N]`` or ``[N, 1]`` (numeric
features take any numeric datatype, ``bool`` ones ``BOOL``, ``string`` ones ``BYTES``; a JSON
``null`` is a missing value, as in ``/v1``); or, when every feature is numeric, a single tensor of
any other name with shape ``[N, n_features]``, columns in signature order. Columns then go through
:meth:`Predictor.predict_columns`, the same validation as ``/v1``. The outputs are ``predict`` and,
for classifiers, ``probabilities`` (``[N, n_classes]``, columns in the signature's class order).
Errors are ``{"error": ...}``: 404 for an unknown model or version, 400 for any other bad request.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlscale.data.schema import BOOL, FLOAT, INT, STRING
from mlscale.errors import NotFoundError, UserError
from mlscale.models.predictor import Prediction, Predictor
from mlscale.models.signature import Signature
from mlscale.serve import v2_binary
from mlscale.serve.models import ServedModels
from mlscale.serve.v2_binary import Tensor

log = logging.getLogger("mlscale.serve")
MAX_BODY_BYTES = 16 << 20  # as /v1, after any Content-Encoding is undone
THREADPOOL_ROWS = 1_000  # bigger requests predict off the event loop
HEADER_LENGTH = "Inference-Header-Content-Length"
_INPUT_TYPES = {INT: "INT64", FLOAT: "FP64", BOOL: "BOOL", STRING: "BYTES"}
_ACCEPTS = {INT: v2_binary.NUMERIC, FLOAT: v2_binary.NUMERIC, BOOL: {"BOOL"}, STRING: {"BYTES"}}
_WBITS = {"gzip": 31, "deflate": 15}

Handler = Callable[[Request], Awaitable[Response]]
#: Predicts columns with the server's shared path (validation, micro-batching, timeouts).
PredictColumns = Callable[[Predictor, dict[str, list[Any]]], Awaitable[Prediction]]
#: Appends an answered request to the prediction log: (predictor, request id, columns, result,
#: start time from ``time.perf_counter``).
Record = Callable[[Predictor, str, dict[str, list[Any]], Prediction, float], None]


async def _predict_directly(predictor: Predictor, columns: dict[str, list[Any]]) -> Prediction:
    if len(next(iter(columns.values()), ())) > THREADPOOL_ROWS:
        return await run_in_threadpool(predictor.predict_columns, columns)
    return predictor.predict_columns(columns)


def v2_routes(
    models: ServedModels,
    *,
    predict: PredictColumns = _predict_directly,
    record: Record | None = None,
) -> list[Route]:
    """The V2 endpoints for ``models``, for :func:`mlscale.serve.app.create_app`.

    ``predict`` and ``record`` are the server's own, so V2 requests are batched, validated,
    counted and logged exactly like ``/v1`` ones (monitoring reads them from the same log).
    """
    server = {
        "name": "mlscale",
        "version": importlib.metadata.version("mlscale"),
        "extensions": ["binary_tensor_data"],
    }

    async def live(request: Request) -> Response:
        return _json({"live": True})

    async def ready(request: Request) -> Response:
        return _json({"ready": True})  # models are loaded before the server listens

    async def server_metadata(request: Request) -> Response:
        return _json(server)

    async def model_metadata(request: Request) -> Response:
        predictor = _predictor(models, request)
        name = predictor.version.name
        if "version" in request.path_params:
            versions = [str(predictor.version.version)]
        else:
            versions = [str(v.version) for v in models.ws.metadata.list_model_versions(name)]
        return _json(_metadata(predictor) | {"versions": versions})

    async def model_ready(request: Request) -> Response:
        return _json({"name": _predictor(models, request).version.name, "ready": True})

    async def infer(request: Request) -> Response:
        started = time.perf_counter()
        predictor = _predictor(models, request)
        header, binary = v2_binary.split_body(
            await _body(request), request.headers.get(HEADER_LENGTH)
        )
        try:
            payload = orjson.loads(header)
        except orjson.JSONDecodeError as exc:
            raise UserError(f"inference request is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise UserError('expected an inference request object: {"inputs": [...]}')
        columns, size = _columns(predictor.signature, v2_binary.read_inputs(payload, binary))
        state = request.state
        state.model, state.version = predictor.version.name, predictor.version.version
        result = await predict(predictor, columns)
        state.rows = size
        request_id = str(payload.get("id") or uuid.uuid4().hex)
        if record is not None:
            record(predictor, request_id, columns, result, started)
        response = _response(predictor, result, payload, request_id)
        log.info(
            "infer %s rows=%d ms=%.2f id=%s",
            predictor.version.ref,
            size,
            (time.perf_counter() - started) * 1e3,
            request_id,
        )
        return response

    def route(path: str, handler: Handler, method: str = "GET") -> list[Route]:
        wrapped = _v2_errors(handler)
        return [
            Route(f"/v2/models/{{name}}{path}", wrapped, methods=[method]),
            Route(f"/v2/models/{{name}}/versions/{{version}}{path}", wrapped, methods=[method]),
        ]

    return [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        *route("", model_metadata),
        *route("/ready", model_ready),
        *route("/infer", infer, "POST"),
    ]


def _json(content: Any, status: int = 200) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json")


def _v2_errors(handler: Handler) -> Handler:
    # V2 answers 400 to every bad request, where /v1 says 422 to a schema error.
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except UserError as exc:
            return _json({"error": str(exc)}, 404 if isinstance(exc, NotFoundError) else 400)

    return wrapped


def _predictor(models: ServedModels, request: Request) -> Predictor:
    name = request.path_params["name"]
    if name not in models.names:
        served = ", ".join(models.names) or "none"
        raise NotFoundError(f"model {name!r} is not served here (served: {served})")
    version = request.path_params.get("version")
    if version is not None:
        if not version.isdigit() or int(version) < 1:
            raise NotFoundError(f"model {name!r} has no version {version!r}: versions are 1, 2, …")
        return models.get(f"{name}@{int(version)}")
    try:
        return models.get(f"{name}@production")
    except NotFoundError:
        return models.get(f"{name}@latest")


def _metadata(predictor: Predictor) -> dict[str, Any]:
    sig = predictor.signature
    outputs = [{"name": "predict", "datatype": _label_type(sig), "shape": [-1]}]
    if sig.task != "regression":
        outputs.append(
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(sig.classes)]}
        )
    return {
        "name": predictor.version.name,
        "platform": f"mlscale-{predictor.version.flavor}",
        "inputs": [
            {"name": f.name, "datatype": _INPUT_TYPES.get(f.type, "BYTES"), "shape": [-1, 1]}
            for f in sig.features
        ],
        "outputs": outputs,
    }


def _label_type(sig: Signature) -> str:
    if sig.task == "regression" or not sig.classes:
        return "FP64"
    first = sig.classes[0]
    if isinstance(first, bool):
        return "BOOL"
    return "INT64" if isinstance(first, int) else "BYTES" if isinstance(first, str) else "FP64"


async def _body(request: Request) -> bytes:
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding in _WBITS:
        try:
            inflater = zlib.decompressobj(_WBITS[encoding])
            body = inflater.decompress(body, MAX_BODY_BYTES + 1)
        except zlib.error as exc:
            raise UserError(f"request body is not valid {encoding} data: {exc}") from None
    elif encoding != "identity":
        raise UserError(f"Content-Encoding {encoding!r} is not supported: use gzip or deflate")
    if len(body) > MAX_BODY_BYTES:
        raise UserError(f"request body is over the limit of {MAX_BODY_BYTES} bytes")
    return body


def _columns(sig: Signature, tensors: list[Tensor]) -> tuple[dict[str, list[Any]], int]:
    """Feature name -> values, and the number of rows."""
    names = sig.feature_names
    only = tensors[0]
    if len(tensors) == 1 and only.name not in names and len(only.shape) == 2:
        return _matrix_columns(sig, only), only.shape[0]
    columns: dict[str, list[Any]] = {}
    rows: dict[str, int] = {}
    by_name = {f.name: f for f in sig.features}
    for t in tensors:
        if t.name in columns:
            raise UserError(f"input {t.name!r} is sent twice")
        if len(t.shape) not in (1, 2) or t.shape[1:] not in ([], [1]):
            raise UserError(f"input {t.name!r}: expected shape [N] or [N, 1], found {t.shape}")
        feature = by_name.get(t.name)
        if feature is not None and t.datatype not in _ACCEPTS.get(feature.type, {"BYTES"}):
            raise UserError(
                f"input {t.name!r}: datatype {t.datatype} does not fit the feature's type "
                f"{feature.type}; send {_INPUT_TYPES.get(feature.type, 'BYTES')}"
            )
        columns[t.name], rows[t.name] = t.data, t.shape[0]
    if len(set(rows.values())) > 1:
        sizes = ", ".join(f"{n!r} {r}" for n, r in rows.items())
        raise UserError(f"inputs must have the same number of rows; found {sizes}")
    size = next(iter(rows.values()))
    if size == 0:
        raise UserError("no rows to infer: the inputs' first dimension is 0")
    return columns, size


def _matrix_columns(sig: Signature, t: Tensor) -> dict[str, list[Any]]:
    n_rows, width = t.shape
    names = sig.feature_names
    if width != len(names):
        raise UserError(
            f"input {t.name!r} is not a feature; as a matrix it needs shape [N, {len(names)}], "
            f"one column per feature in order ({', '.join(names)}), but has shape {t.shape}"
        )
    not_numeric = [f"{f.name!r} ({f.type})" for f in sig.features if f.type not in (INT, FLOAT)]
    if not_numeric:
        raise UserError(
            f"input {t.name!r}: a matrix input needs every feature numeric, but "
            f"{', '.join(not_numeric)} are not; send one tensor per feature instead"
        )
    if t.datatype not in v2_binary.NUMERIC:
        raise UserError(f"input {t.name!r}: a matrix input must be numeric, not {t.datatype}")
    if n_rows == 0:
        raise UserError("no rows to infer: the inputs' first dimension is 0")
    return {name: t.data[j::width] for j, name in enumerate(names)}


def _response(
    predictor: Predictor, result: Prediction, payload: dict[str, Any], request_id: str
) -> Response:
    """JSON, or a JSON header plus binary tensors when any output asks for binary data."""
    n = len(result.predictions)
    available: dict[str, tuple[str, list[int], Any]] = {
        "predict": (_label_type(predictor.signature), [n], result.predictions)
    }
    if result.probabilities is not None:
        probabilities = result.probabilities
        available["probabilities"] = ("FP64", list(probabilities.shape), probabilities.ravel())
    binary_default = v2_binary.parameters(payload, "request").get("binary_data_output") is True
    wanted = payload.get("outputs")
    if wanted is None:
        wanted = [{"name": name} for name in available]
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise UserError('"outputs" must be a list of objects like {"name": "predict"}')
    outputs, blobs = [], []
    for spec in wanted:
        name = spec.get("name")
        out_params = v2_binary.parameters(spec, f"output {name!r}")
        if not isinstance(name, str) or name not in available:
            raise UserError(
                f"unknown output {name!r}: this model has outputs {', '.join(available)}"
            )
        if "classification" in out_params:
            raise UserError("the classification extension is not supported; ask for outputs")
        datatype, shape, data = available[name]
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if out_params.get("binary_data", binary_default) is True:
            blobs.append(v2_binary.encode(datatype, data))
            tensor["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            tensor["data"] = data
        outputs.append(tensor)
    body = {
        "model_name": predictor.version.name,
        "model_version": str(predictor.version.version),
        "id": request_id,
        "outputs": outputs,
    }
    if not blobs:
        return _json(body)
    header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(
        header + b"".join(blobs),
        headers={HEADER_LENGTH: str(len(header))},
        media_type="application/octet-stream",
    )
