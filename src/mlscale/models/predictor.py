"""A loaded model version with its signature: what the server and batch scoring both call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mlscale.models.base import BaseModel, adapter_class
from mlscale.models.signature import FeatureEncoder, Signature
from mlscale.store.records import ModelVersion

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


@dataclass
class Prediction:
    """Outputs for a batch of rows: labels or values, and class probabilities for classifiers."""

    predictions: list[Any]
    probabilities: np.ndarray | None  # (n, n_classes), columns in ``classes`` order
    classes: list[Any]


class Predictor:
    """Predicts for JSON rows or Arrow tables with the exact encoding used in training."""

    def __init__(self, version: ModelVersion, model: BaseModel, signature: Signature) -> None:
        self.version = version
        self.model = model
        self.signature = signature
        self.encoder = FeatureEncoder(signature)
        # Typed (int64, str or bool), so batch scoring builds Arrow columns without Python objects.
        self.class_values = np.asarray(signature.classes)

    @classmethod
    def load(cls, ws: Workspace, version: ModelVersion) -> Predictor:
        signature = Signature.from_dict(version.signature)
        data = ws.artifacts.get_bytes(version.artifact_sha)  # verified against its sha256
        model = adapter_class(version.flavor).load(
            data, task=signature.task, categorical=signature.categorical_indices
        )
        return cls(version, model, signature)

    def predict_matrix(self, X: np.ndarray) -> Prediction:
        out = self.model.predict(X)
        if self.signature.task == "regression":
            return Prediction([float(v) for v in out], None, [])
        labels = self.class_values[np.argmax(out, axis=1)].tolist()
        return Prediction(labels, out, self.signature.classes)

    def predict_records(self, records: list[dict[str, Any]]) -> Prediction:
        return self.predict_matrix(self.encoder.encode_records(records))

    def predict_columns(self, columns: dict[str, list[Any]]) -> Prediction:
        return self.predict_matrix(
            self.encoder.encode_table(self.encoder.table_from_columns(columns))
        )

    def predict_table(self, table: pa.Table | pa.RecordBatch) -> Prediction:
        return self.predict_matrix(self.encoder.encode_table(table))
