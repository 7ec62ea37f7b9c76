"""LightGBM adapter: native categorical splits, saved as LightGBM's text model format."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

from mlscale.models.base import BaseModel

DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "num_boost_round": 200,
}


class LightGBMModel(BaseModel):
    flavor = "lightgbm"

    def effective_params(self) -> dict[str, Any]:
        return DEFAULTS | self.params

    def fit(self, X: np.ndarray, y: np.ndarray, *, num_classes: int, seed: int) -> LightGBMModel:
        params = self.effective_params()
        rounds = int(params.pop("num_boost_round"))
        objective = {
            "binary": {"objective": "binary"},
            "multiclass": {"objective": "multiclass", "num_class": num_classes},
            "regression": {"objective": "regression"},
        }[self.task]
        params |= objective | {"seed": seed, "deterministic": True, "verbose": -1}
        data = lgb.Dataset(X, label=y, categorical_feature=self.categorical, free_raw_data=True)
        self.booster_ = lgb.train(params, data, num_boost_round=rounds)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        # One thread for small inputs: thread start-up costs more than it saves on a few rows.
        threads = 1 if len(X) < 1_000 else 0
        out = self.booster_.predict(X, num_threads=threads)
        if self.task == "binary":
            return np.column_stack([1.0 - out, out])
        return np.asarray(out)

    def save(self) -> bytes:
        return self.booster_.model_to_string().encode()

    @classmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> LightGBMModel:
        model = cls(task=task, categorical=categorical)
        model.booster_ = lgb.Booster(model_str=data.decode())
        return model
