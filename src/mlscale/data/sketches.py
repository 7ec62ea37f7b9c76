"""DataSketches adapters: a fast CPC distinct counter, and value counts fed to a KLL sketch.

DataSketches' distinct-count sketches only take one value per call from Python (about 0.1 s per
million values per column). A CPC sketch's state depends only on the set of "coupons" (a row and a
column derived from each value's MurmurHash3), so :class:`DistinctCounter` computes the coupons in
numpy with the same hash (MurmurHash3_x64_128, DataSketches' seed) and hands the sketch only one
value per distinct coupon (about 20,000 per million values). The result is the sketch that feeding
every value would give (a ``cpc_union`` result, with its order-independent ICON estimator); a test
checks that byte for byte.

The profile (:mod:`mlscale.data.profile`) keeps one of these per column; nothing here knows about
columns or profiles.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import cpc_sketch, cpc_union, kll_doubles_sketch

CPC_LG_K = 11
_COUPONS = 1 << (CPC_LG_K + 6)  # 2**lg_k rows x 64 columns

# --- MurmurHash3_x64_128 with DataSketches' seed, vectorised, to find each value's CPC coupon ---

_SEED = 9001
_C1, _C2 = np.uint64(0x87C37B91114253D5), np.uint64(0x4CF5AD432745937F)
_F1, _F2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_BYTE_MASKS = np.array([(1 << (8 * t)) - 1 for t in range(8)] + [2**64 - 1], dtype=np.uint64)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _fmix(k: np.ndarray) -> np.ndarray:
    k ^= k >> np.uint64(33)
    k *= _F1
    k ^= k >> np.uint64(33)
    k *= _F2
    k ^= k >> np.uint64(33)
    return k


def _mix_k1(k1: np.ndarray) -> np.ndarray:
    k1 *= _C1
    k1 = _rotl(k1, 31)
    k1 *= _C2
    return k1


def _mix_k2(k2: np.ndarray) -> np.ndarray:
    k2 *= _C2
    k2 = _rotl(k2, 33)
    k2 *= _C1
    return k2


def _murmur_finish(
    h1: np.ndarray, h2: np.ndarray, length: np.ndarray | np.uint64
) -> tuple[np.ndarray, np.ndarray]:
    h1 ^= length
    h2 ^= length
    h1 += h2
    h2 += h1
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 += h2
    h2 += h1
    return h1, h2


def _murmur_doubles(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both 64-bit halves of the hash DataSketches gives ``update(float)`` (8 bytes, no blocks)."""
    k1 = _mix_k1((x + 0.0).view(np.uint64))  # + 0.0 turns -0.0 into 0.0, as DataSketches does
    h1 = k1 ^ np.uint64(_SEED)
    h2 = np.full(len(x), _SEED, dtype=np.uint64)
    return _murmur_finish(h1, h2, np.uint64(8))


def _murmur_strings(arr: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """Both 64-bit halves of the hash DataSketches gives ``update(str)`` (the UTF-8 bytes)."""
    n = len(arr)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32, n + 1, arr.offset * 4).astype(np.int64)
    raw = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    data = np.zeros(len(raw) + 16, dtype=np.uint8)  # zero padding: tail reads may run past the end
    data[: len(raw)] = raw
    # Unaligned little-endian 64-bit loads at any byte offset, as one gather each.
    words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    starts, lengths = offsets[:-1], np.diff(offsets)
    h1 = np.full(n, _SEED, dtype=np.uint64)
    h2 = np.full(n, _SEED, dtype=np.uint64)
    blocks = lengths // 16
    for b in range(int(blocks.max(initial=0))):
        rows = np.flatnonzero(blocks > b)
        pos = starts[rows] + 16 * b
        k1, k2 = _mix_k1(words[pos]), _mix_k2(words[pos + 8])
        a = _rotl(h1[rows] ^ k1, 27) + h2[rows]
        a = a * np.uint64(5) + np.uint64(0x52DCE729)
        c = _rotl(h2[rows] ^ k2, 31) + a
        c = c * np.uint64(5) + np.uint64(0x38495AB5)
        h1[rows], h2[rows] = a, c
    tail = lengths % 16
    pos = starts + 16 * blocks
    k1 = _mix_k1(words[pos] & _BYTE_MASKS[np.minimum(tail, 8)])
    h1 ^= np.where(tail > 0, k1, np.uint64(0))
    if tail.max(initial=0) > 8:
        k2 = _mix_k2(words[pos + 8] & _BYTE_MASKS[np.clip(tail - 8, 0, 8)])
        h2 ^= np.where(tail > 8, k2, np.uint64(0))
    return _murmur_finish(h1, h2, lengths.astype(np.uint64))


def _leading_zeros(x: np.ndarray) -> np.ndarray:
    """Leading zero bits of each uint64, read off the float64 exponent of its top 53 bits."""
    top = (x >> np.uint64(11)).view(np.int64).astype(np.float64).view(np.int64) >> 52
    zeros = 1075 - top
    small = np.flatnonzero(top == 0)  # below 2**11: the top bits say nothing (rare)
    if len(small):
        low = (x[small].view(np.int64).astype(np.float64).view(np.int64) >> 52) - 1086
        zeros[small] = np.where(x[small] > 0, -low, 64)
    return zeros


def _one_per_coupon(h1: np.ndarray, h2: np.ndarray, fed: np.ndarray) -> np.ndarray:
    """Positions of one value per distinct CPC coupon (row, column), in stream order, leaving
    out coupons already ``fed`` to the sketch (a flag per coupon, updated here)."""
    row = (h1 & np.uint64((1 << CPC_LG_K) - 1)).astype(np.int64)
    coupon = (row << 6) | np.minimum(_leading_zeros(h2), 63)
    first = np.full(_COUPONS, -1, dtype=np.int64)
    first[coupon] = np.arange(len(coupon))  # any position per coupon will do
    # A sketch's state is its set of coupons: feeding one again changes nothing. Past the first
    # batches nearly every coupon of a column has been seen, and feeding was the slow part.
    first[fed] = -1
    fed |= first >= 0
    # Stream order, not coupon order: the sketch's hash table degrades on sorted coupons.
    return np.sort(first[first >= 0])


class DistinctCounter:
    """Approximate distinct count: a DataSketches CPC sketch, always held as a union result."""

    def __init__(self, sketch: cpc_sketch | None = None) -> None:
        self.sketch = sketch if sketch is not None else cpc_sketch(CPC_LG_K)
        # Coupons this counter has fed its sketch (not those merged in from other sketches).
        self._fed = np.zeros(_COUPONS, dtype=bool)

    def update_floats(self, x: np.ndarray) -> None:
        if len(x):
            self._add(x[_one_per_coupon(*_murmur_doubles(x), self._fed)].tolist())

    def update_strings(self, values: pa.Array | pa.ChunkedArray) -> None:
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        items: list[str] = []
        for chunk in chunks:
            if not len(chunk):
                continue
            h1, h2 = _murmur_strings(chunk)
            # DataSketches ignores empty strings: one must not stand for a coupon.
            filled = np.flatnonzero(np.asarray(pc.binary_length(chunk)))
            if len(filled) < len(chunk):
                h1, h2, rows = h1[filled], h2[filled], filled
            else:
                rows = None
            picks = _one_per_coupon(h1, h2, self._fed)
            items += chunk.take(picks if rows is None else rows[picks]).to_pylist()
        self._add(items)

    def _add(self, items: list[Any]) -> None:
        if not items:
            return
        batch = cpc_sketch(CPC_LG_K)
        for item in items:
            batch.update(item)
        self.merge(DistinctCounter(batch))

    def merge(self, other: DistinctCounter) -> None:
        union = cpc_union(CPC_LG_K)
        union.update(self.sketch)
        union.update(other.sketch)
        self.sketch = union.get_result()

    @classmethod
    def of_floats(cls, x: np.ndarray) -> DistinctCounter:
        distinct = cls()
        distinct.update_floats(x)
        return distinct

    def estimate(self) -> float:
        return float(self.sketch.get_estimate())

    def to_text(self) -> str:
        return _b64(self.sketch.serialize())

    @classmethod
    def from_text(cls, text: str) -> DistinctCounter:
        return cls(cpc_sketch.deserialize(base64.b64decode(text)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- KLL quantile sketches ---


def kll_to_text(kll: kll_doubles_sketch) -> str:
    """The sketch as base64 text, for the profile's JSON."""
    return _b64(kll.serialize())


def kll_from_text(text: str) -> kll_doubles_sketch:
    return kll_doubles_sketch.deserialize(base64.b64decode(text))


def feed_counts(kll: kll_doubles_sketch, values: np.ndarray, counts: np.ndarray) -> None:
    """Feed value counts to a KLL sketch (it takes no weights), about a million values at a time."""
    chunk = 1 << 20
    bounds = np.flatnonzero(np.diff(np.cumsum(counts) // chunk)) + 1
    for v, c in zip(np.split(values, bounds), np.split(counts, bounds), strict=True):
        if c.sum() <= 2 * chunk:
            kll.update(np.repeat(v, c))
            continue
        for value, count in zip(v.tolist(), c.tolist(), strict=True):
            for start in range(0, count, chunk):
                kll.update(np.full(min(chunk, count - start), value))
