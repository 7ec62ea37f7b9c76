"""V2 tensors, without I/O: datatypes, request inputs as JSON or binary data, binary outputs.

Binary tensors are little-endian and row-major; ``BOOL`` is one byte per element and ``BYTES`` is a
4-byte little-endian length before each element. A request or response carrying them is a JSON
header of ``Inference-Header-Content-Length`` bytes followed by the tensors' bytes, in order.

>>> raw = encode("BYTES", ["ab", "c"])
>>> raw
b'\\x02\\x00\\x00\\x00ab\\x01\\x00\\x00\\x00c'
>>> decode("x", "BYTES", raw)
['ab', 'c']
>>> decode("y", "FP64", encode("FP64", [1.5, -2.0]))
[1.5, -2.0]
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlscale.errors import UserError

NUMPY_TYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "?",
        "INT8": "i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "UINT8": "u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
        "FP16": "<f2",
        "FP32": "<f4",
        "FP64": "<f8",
    }.items()
}
NUMERIC = frozenset(NUMPY_TYPES) - {"BOOL"}
DATATYPES = frozenset(NUMPY_TYPES) | {"BYTES"}
_LENGTH = struct.Struct("<I")


@dataclass
class Tensor:
    """One input tensor of a request; ``data`` is flat, in row-major order."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


def read_inputs(payload: dict[str, Any], binary: bytes) -> list[Tensor]:
    """The request's input tensors, their data decoded from JSON or from the binary section."""
    specs = payload.get("inputs")
    if not isinstance(specs, list) or not specs:
        raise UserError('"inputs" must be a non-empty list of tensors')
    tensors, at = [], 0
    for i, spec in enumerate(specs):
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str):
            raise UserError(f"inputs[{i}] must be an object with a string 'name'")
        datatype, shape = spec.get("datatype"), spec.get("shape")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            known = ", ".join(sorted(DATATYPES))
            raise UserError(f"input {name!r}: datatype {datatype!r} is not one of {known}")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise UserError(f"input {name!r}: shape must be a list of non-negative integers")
        size = parameters(spec, f"input {name!r}").get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0 or at + size > len(binary):
                raise UserError(
                    f"input {name!r}: binary_data_size {size!r} does not fit the "
                    f"{len(binary) - at} bytes of binary data left"
                )
            data = decode(name, datatype, binary[at : at + size])
            at += size
        elif isinstance(spec.get("data"), list):
            data = _flatten(spec["data"])
        else:
            raise UserError(f"input {name!r}: expected 'data' (a list) or binary data")
        if len(data) != math.prod(shape):
            raise UserError(
                f"input {name!r}: shape {shape} holds {math.prod(shape)} elements but "
                f"{len(data)} were sent"
            )
        tensors.append(Tensor(name, datatype, shape, data))
    if at != len(binary):
        raise UserError(
            f"{len(binary)} bytes of binary data follow the JSON header but the inputs' "
            f"binary_data_size add up to {at}"
        )
    return tensors


def parameters(spec: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``parameters`` object of a request, input or output; empty when absent."""
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise UserError(f"{where}: 'parameters' must be an object")
    return params


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    return [x for v in data for x in (_flatten(v) if isinstance(v, list) else [v])]


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensor data of a request body."""
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise UserError(
            f"Inference-Header-Content-Length is {header_length!r}: expected the byte length of "
            f"the JSON header, at most the body's {len(body)} bytes"
        )
    size = int(header_length)
    return body[:size], body[size:]


def decode(name: str, datatype: str, raw: bytes) -> list[Any]:
    """The elements of tensor ``name`` sent as binary data, as Python values."""
    if datatype == "BYTES":
        return _decode_bytes(name, raw)
    dtype = NUMPY_TYPES[datatype]
    if len(raw) % dtype.itemsize:
        raise UserError(
            f"input {name!r}: {len(raw)} bytes of binary data is not a whole number of "
            f"{datatype} elements ({dtype.itemsize} bytes each)"
        )
    if datatype == "BOOL":  # any non-zero byte is true, not only 1
        return (np.frombuffer(raw, np.uint8) != 0).tolist()
    return np.frombuffer(raw, dtype).tolist()


def encode(datatype: str, values: Any) -> bytes:
    """Binary data for a tensor's elements (a list or an array, row-major)."""
    if datatype == "BYTES":
        parts = []
        for value in values:
            data = value if isinstance(value, bytes) else str(value).encode()
            parts += (_LENGTH.pack(len(data)), data)
        return b"".join(parts)
    return np.ascontiguousarray(values, dtype=NUMPY_TYPES[datatype]).tobytes()


def _decode_bytes(name: str, raw: bytes) -> list[Any]:
    out = []
    at, end = 0, len(raw)
    while at < end:
        if at + 4 > end:
            raise UserError(f"input {name!r}: BYTES data ends inside an element's 4-byte length")
        (size,) = _LENGTH.unpack_from(raw, at)
        at += 4
        if at + size > end:
            raise UserError(
                f"input {name!r}: BYTES element {len(out)} claims {size} bytes but only "
                f"{end - at} remain"
            )
        try:
            out.append(raw[at : at + size].decode())
        except UnicodeDecodeError:
            raise UserError(f"input {name!r}: BYTES element {len(out)} is not UTF-8") from None
        at += size
    return out
