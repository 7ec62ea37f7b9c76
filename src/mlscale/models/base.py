"""The model adapter contract: one small module per library behind one interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from mlscale.errors import UserError

# Adapter name -> "module:Class", imported only when used.
ADAPTERS: dict[str, str] = {
    "lightgbm": "mlscale.models.lightgbm:LightGBMModel",
    "logistic": "mlscale.models.linear:LinearModel",
    "linear": "mlscale.models.linear:LinearModel",
}


class BaseModel(ABC):
    """Fit on a float64 matrix (categoricals as integer codes, missing as NaN), predict, save.

    ``predict`` returns class probabilities of shape (n, n_classes) for classifiers and values of
    shape (n,) for regressors. ``save`` returns bytes in the library's own format.
    """

    flavor: ClassVar[str]

    def __init__(self, *, task: str, categorical: list[int], params: dict[str, Any] | None = None):
        self.task = task
        self.categorical = categorical
        self.params = dict(params or {})

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int) -> BaseModel: ...

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def save(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> BaseModel: ...

    def effective_params(self) -> dict[str, Any]:
        """The hyperparameters actually used, defaults included (recorded on the run)."""
        return dict(self.params)


def adapter_class(flavor: str) -> type[BaseModel]:
    """The adapter class registered under ``flavor``."""
    import importlib

    try:
        module, _, cls = ADAPTERS[flavor].partition(":")
    except KeyError:
        raise UserError(
            f"unknown model {flavor!r}; available: {', '.join(sorted(ADAPTERS))}"
        ) from None
    return getattr(importlib.import_module(module), cls)
