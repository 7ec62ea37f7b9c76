"""Linear models (scikit-learn): logistic regression for classes, ridge for values.

Missing numbers are imputed with the median and scaled; categories are one-hot encoded (unseen
ones ignored). Saved with skops, never pickle, and loaded only with scikit-learn/numpy types.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlscale.errors import IntegrityError
from mlscale.models.base import BaseModel

DEFAULTS: dict[str, Any] = {"C": 1.0, "max_iter": 2000}
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")


class LinearModel(BaseModel):
    flavor = "linear"

    def effective_params(self) -> dict[str, Any]:
        return DEFAULTS | self.params

    def fit(self, X: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int) -> LinearModel:
        params = self.effective_params()
        numeric = [i for i in range(X.shape[1]) if i not in self.categorical]
        prep = ColumnTransformer(
            [
                (
                    "numeric",
                    make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                    numeric,
                ),
                (
                    "categorical",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value=-1.0),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    self.categorical,
                ),
            ]
        )
        if self.task == "regression":
            estimator: Any = Ridge(alpha=1.0 / params["C"])
        else:
            estimator = LogisticRegression(
                C=params["C"], max_iter=params["max_iter"], random_state=seed
            )
        self.pipeline_ = Pipeline([("prep", prep), ("model", estimator)]).fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return self.pipeline_.predict(X)
        return self.pipeline_.predict_proba(X)

    def save(self) -> bytes:
        return sio.dumps(self.pipeline_)

    @classmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> LinearModel:
        untrusted = sio.get_untrusted_types(data=data)
        unexpected = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
        if unexpected:
            raise IntegrityError(f"refusing to load a linear model that contains {unexpected}")
        model = cls(task=task, categorical=categorical)
        model.pipeline_ = sio.loads(data, trusted=untrusted)
        return model
