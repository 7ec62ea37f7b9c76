"""What the server hands the prediction log per request: its rows and its answer, kept as they
are and read as columns. The log gathers the columns of many requests at once when it flushes,
which costs far less than building them per request on the hot path."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any


class RecordColumns(Mapping[str, Sequence[Any]]):
    """JSON rows (objects with exactly ``names``) read as columns, without copying them now.

    The server logs a request's rows as they came; the columns are gathered for every buffered
    request at once when the log is flushed, which costs far less than per request.
    """

    __slots__ = ("names", "records")

    def __init__(self, records: list[dict[str, Any]], names: Sequence[str]) -> None:
        self.records = records
        self.names = names

    def __getitem__(self, name: str) -> list[Any]:
        return [r[name] for r in self.records]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class PredictionColumns(Mapping[str, Sequence[Any]]):
    """A model's answer as log columns: ``prediction`` and one ``proba.<class>`` per class.

    Keeps the probability matrix as it is; flushing turns many of them into columns at once.
    """

    __slots__ = ("names", "predictions", "probabilities")

    def __init__(self, predictions: list[Any], probabilities: Any, classes: Sequence[Any]) -> None:
        self.predictions = predictions
        self.probabilities = probabilities  # rows x classes, or None (regression)
        self.names = (
            ("prediction", *(f"proba.{c}" for c in classes)) if classes else ("prediction",)
        )

    def __getitem__(self, name: str) -> list[Any]:
        if name == "prediction":
            return list(self.predictions)
        j = self.names.index(name) - 1
        if j < 0:
            raise KeyError(name)
        return self.probabilities[:, j].tolist()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)
