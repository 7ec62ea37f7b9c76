"""A mergeable uniform sample: each value gets a random key and the ``size`` smallest keys stay.

A bottom-k sample of a stream is a uniform sample without replacement, and the bottom-k of two
such samples is the bottom-k of the two streams together, so per-minute samples merge into the
sample of any window in O(size), whatever the traffic. Exact tests (Kolmogorov-Smirnov) run on it.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

WINDOW_SAMPLE = 500


class Sample:
    """Up to ``size`` values drawn uniformly from everything offered, mergeable.

    >>> rng = np.random.default_rng(0)
    >>> a, b = Sample(size=3), Sample(size=3)
    >>> a.offer(np.arange(10.0), rng); b.offer(np.arange(100.0, 110.0), rng)
    >>> len(a.merge(b).values), a.seen
    (3, 20)
    """

    def __init__(self, size: int = WINDOW_SAMPLE) -> None:
        self.size = size
        self.seen = 0
        self.keys = np.empty(0, dtype=np.uint32)
        self.values = np.empty(0, dtype=np.float64)

    def offer(self, values: np.ndarray, rng: np.random.Generator) -> None:
        """Consider every value of ``values`` (already free of missing values)."""
        keys = rng.integers(0, 2**32, len(values), dtype=np.uint32)
        self._keep(keys, np.asarray(values, dtype=np.float64), len(values))

    def merge(self, other: Sample) -> Sample:
        self._keep(other.keys, other.values, other.seen)
        return self

    def _keep(self, keys: np.ndarray, values: np.ndarray, seen: int) -> None:
        self.seen += seen
        keys = np.concatenate([self.keys, keys])
        values = np.concatenate([self.values, values])
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "seen": self.seen,
            "keys": base64.b64encode(self.keys.astype("<u4").tobytes()).decode("ascii"),
            "values": base64.b64encode(self.values.astype("<f8").tobytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        sample = cls(data["size"])
        sample.seen = data["seen"]
        sample.keys = np.frombuffer(base64.b64decode(data["keys"]), dtype="<u4").astype(np.uint32)
        sample.values = np.frombuffer(base64.b64decode(data["values"]), dtype="<f8").copy()
        return sample
