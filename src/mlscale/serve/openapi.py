"""The server's OpenAPI document, written from the served models' signatures.

Each served ``name@alias`` gets its own predict path with the exact row schema (feature names,
JSON types, category values), so clients can generate code and fuzzers can aim at the contract.
"""

from __future__ import annotations

from typing import Any

from mlscale.models.predictor import Predictor

_JSON_TYPES = {"int64": "number", "float64": "number", "string": "string", "bool": "boolean"}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}


def _row_schema(predictor: Predictor) -> dict[str, Any]:
    properties = {}
    for feature in predictor.signature.features:
        schema: dict[str, Any] = {"type": [_JSON_TYPES[feature.type], "null"]}
        if feature.kind == "categorical" and feature.type == "string":
            schema["examples"] = feature.categories[:5]
        properties[feature.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _predict_operation(ref: str, predictor: Predictor) -> dict[str, Any]:
    row = _row_schema(predictor)
    errors = {
        code: {"description": text, "content": {"application/json": {"schema": ERROR}}}
        for code, text in (
            ("400", "not JSON, or a bad request"),
            ("404", "unknown model, version or alias"),
            ("413", "body too large"),
            ("422", "rows that do not match the model's signature"),
            ("503", "the model's queue is full; retry after the Retry-After header"),
        )
    }
    answer = {
        "type": "object",
        "required": ["model", "version", "request_id", "predictions"],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "integer"},
            "request_id": {"type": "string"},
            "predictions": {"type": "array"},
            "classes": {"type": "array"},
            "probabilities": {"type": "array", "items": {"type": "array"}},
        },
    }
    return {
        "post": {
            "summary": f"Predict with {ref}",
            "operationId": f"predict_{ref.replace('@', '_at_')}",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["rows"],
                            "properties": {"rows": {"type": "array", "minItems": 1, "items": row}},
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "predictions",
                    "content": {"application/json": {"schema": answer}},
                },
                **errors,
            },
        }
    }


def _labels_operation(name: str) -> dict[str, Any]:
    label = {
        "type": "object",
        "required": ["id", "label"],
        "properties": {
            "id": {"type": "string", "description": "request id, or request_id:row"},
            "label": {"description": "the outcome, of the model's target type"},
            "ts": {"type": ["string", "number"], "description": "when the outcome happened"},
        },
    }
    errors = {
        code: {"description": text, "content": {"application/json": {"schema": ERROR}}}
        for code, text in (
            ("400", "not JSON, or a bad request"),
            ("404", "unknown model"),
            ("413", "body too large"),
            ("422", "not a list of labels, or every label refused"),
        )
    }
    return {
        "post": {
            "summary": f"Delayed labels (outcomes) for predictions of {name}",
            "operationId": f"labels_{name}".replace("-", "_").replace(".", "_"),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["labels"],
                            "properties": {"labels": {"type": "array", "items": label}},
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "what was stored, joined, unknown and invalid",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **errors,
            },
        }
    }


def openapi_document(refs: dict[str, Predictor], version: str) -> dict[str, Any]:
    """OpenAPI 3.1 for ``/healthz``, ``/v1/models``, one predict path per served reference and one
    labels path per served model."""
    paths: dict[str, Any] = {
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/v1/models": {
            "get": {"summary": "Served models", "responses": {"200": {"description": "names"}}}
        },
    }
    for ref, predictor in sorted(refs.items()):
        paths[f"/v1/models/{ref}/predict"] = _predict_operation(ref, predictor)
    for name in sorted({predictor.version.name for predictor in refs.values()}):
        paths[f"/v1/models/{name}/labels"] = _labels_operation(name)
    return {
        "openapi": "3.1.0",
        "info": {"title": "mlscale model server", "version": version},
        "paths": paths,
    }
