"""``POST /v1/models/{name}/labels``: delayed labels for served predictions, sent as JSON.

The body is ``{"labels": [{"id": "<request id>[:<row>]", "label": ..., "ts": ...}, ...]}``
(``ts``, the time of the outcome, is optional). The answer counts what was stored, replaced,
joined to a logged prediction, unknown (kept: joined once logged) and invalid, with the reasons
(:func:`mlscale.monitor.labels.ingest_labels`). Like ``/predict`` it needs the ``predict`` or
``admin`` role when the server requires tokens. Labels are written off the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mlscale.errors import SchemaError, UserError
from mlscale.refs import Ref

if TYPE_CHECKING:
    from mlscale.workspace import Workspace

MAX_LABELS = 100_000  # per request: more goes in several requests, or a file through the CLI
MAX_BODY_BYTES = 16 << 20
_SHAPE = 'expected {"labels": [{"id": "<request id>", "label": <value>}, ...]}'


class TooLarge(UserError):
    http_status = 413


def labels_route(ws: Workspace) -> Route:
    """The route that stores labels in ``ws``'s label store."""

    async def post_labels(request: Request) -> JSONResponse:
        from mlscale.monitor.labels import ingest_labels

        ref = request.path_params["ref"]
        Ref.parse(ref)  # a 400 naming the problem before the body is read
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise TooLarge(f"request body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise TooLarge(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UserError(f"request body is not valid JSON: {exc}") from None
        labels = payload.get("labels") if isinstance(payload, dict) else None
        if not isinstance(labels, list):
            raise SchemaError(_SHAPE)
        if not labels:
            raise SchemaError(f"no labels to store; {_SHAPE}")
        if len(labels) > MAX_LABELS:
            raise TooLarge(f"{len(labels):,} labels in one request; the limit is {MAX_LABELS:,}")
        result = await run_in_threadpool(
            ingest_labels, ws, ref, labels, id_column="id", label_column="label",
            timestamp_column="ts",
        )  # fmt: skip
        if not result.stored:
            raise SchemaError(
                f"every label was refused ({result.invalid:,}): " + "; ".join(result.problems[:5])
            )
        return JSONResponse(result.to_dict())

    return Route("/v1/models/{ref}/labels", post_labels, methods=["POST"])
