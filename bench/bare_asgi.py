"""The floor of what Python can serve: a bare ASGI app that parses the JSON row and calls the same
LightGBM model (no validation, logging or metrics). Benchmark-only."""

from __future__ import annotations

import json
import os

import lightgbm as lgb
import numpy as np
import orjson

_MODEL = lgb.Booster(model_file=os.environ["BARE_MODEL_FILE"])
_PLAN = json.loads(os.environ["BARE_PLAN"])  # [[name, {category: code} | null], ...]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    row = orjson.loads(body)["rows"][0]
    x = np.array(
        [
            [
                np.nan if row[n] is None else (codes.get(row[n], np.nan) if codes else row[n])
                for n, codes in _PLAN
            ]
        ],
        dtype=np.float64,
    )
    p = float(_MODEL.predict(x, num_threads=1)[0])
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps({"probability": p})})
