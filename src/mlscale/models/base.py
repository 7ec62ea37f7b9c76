"""The model adapter contract: one small module per library behind one interface.

An adapter follows scikit-learn's manners: the constructor only stores its arguments, ``fit``
does the work and returns ``self``, learned state ends in ``_``. Hyperparameters are declared as
data (:mod:`mlscale.models.params`), so they are validated before any work starts and tuning
gets a default search space from the same place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mlscale.errors import UserError
from mlscale.models.params import Param, check_params, defaults

# Model name -> "module:Class", imported only when used. ``logistic`` and ``linear`` name one
# adapter: a classifier for classes, a regressor for values.
ADAPTERS: dict[str, str] = {
    "lightgbm": "mlscale.models.lightgbm:LightGBMModel",
    "logistic": "mlscale.models.linear:LinearModel",
    "linear": "mlscale.models.linear:LinearModel",
    "xgboost": "mlscale.models.xgboost:XGBoostModel",
    "random_forest": "mlscale.models.forest:RandomForestModel",
    "torch_mlp": "mlscale.models.torch_mlp:TorchMLPModel",
}

#: Called after each training iteration with the iteration number (from 1) and the metrics of
#: that iteration (``valid_loss`` on the validation rows, when there are some). Returning True
#: stops training early: tuning uses it to prune a trial.
IterationCallback = Callable[[int, dict[str, float]], bool]


@dataclass(frozen=True)
class TrainSet:
    """Rows to fit many models on, as :meth:`BaseModel.trainset` made them.

    ``native`` is what the library trains on, built once (LightGBM's binned Datasets, XGBoost's
    DMatrix), or None where the adapter fits on the arrays themselves.
    """

    X: np.ndarray
    y: np.ndarray
    valid: tuple[np.ndarray, np.ndarray] | None = None
    native: Any = None


class BaseModel(ABC):
    """Fit on a float64 matrix (categoricals as integer codes, missing as NaN), predict, save.

    ``predict`` returns class probabilities of shape (n, n_classes) for classifiers and values of
    shape (n,) for regressors. ``save`` returns bytes in the library's own format; ``load`` reads
    them back (the artifact store has verified their hash before).

    After ``fit``, ``curves_`` holds per-iteration metric curves (``{"valid_loss": [...]}``) for
    iterative models, and is empty for the others.
    """

    flavor: ClassVar[str]
    params_spec: ClassVar[dict[str, Param]] = {}
    #: Whether ``fit(init_from=...)`` continues training from an earlier model.
    warm_start: ClassVar[bool] = False
    #: The hyperparameter that counts training iterations, if any (tuning prunes along it).
    iterations_param: ClassVar[str | None] = None
    #: Hyperparameters that change what :meth:`trainset` builds (LightGBM's ``max_bin``): a
    #: train set is shared only by models with the same values of these (see ``trainset_key``).
    trainset_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, task: str, categorical: list[int], params: dict[str, Any] | None = None):
        self.task = task
        self.categorical = categorical
        self.params = dict(params or {})
        self.curves_: dict[str, list[float]] = {}

    @classmethod
    def check_params(cls, params: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
        """``params`` validated against ``params_spec`` (UserError naming the allowed range)."""
        return check_params(name or cls.flavor, cls.params_spec, params)

    @abstractmethod
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        num_classes: int,
        seed: int,
        valid: tuple[np.ndarray, np.ndarray] | None = None,
        on_iteration: IterationCallback | None = None,
        init_from: BaseModel | None = None,
    ) -> BaseModel: ...

    def trainset(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        seed: int,
        valid: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> TrainSet:
        """The rows in the form this library trains on, to ``fit_trainset`` many models on.

        Tuning builds it once per study and process, so that each trial skips the work a fit
        would repeat (LightGBM bins the rows anew in every ``fit``). The default keeps the
        arrays as they are.
        """
        return TrainSet(X, y, valid)

    def trainset_key(self, seed: int) -> tuple[Any, ...]:
        """What this model's :meth:`trainset` depends on: models with equal keys can share one.

        >>> from mlscale.models.lightgbm import LightGBMModel
        >>> LightGBMModel(task="binary", categorical=[2]).trainset_key(7)
        ('lightgbm', 'binary', (2,), 7, (('max_bin', 255),))
        """
        params = self.effective_params()
        depends = tuple((name, params[name]) for name in self.trainset_params)
        return (self.flavor, self.task, tuple(self.categorical), seed, depends)

    def fit_trainset(
        self,
        data: TrainSet,
        *,
        num_classes: int,
        seed: int,
        on_iteration: IterationCallback | None = None,
    ) -> BaseModel:
        """``fit`` on a :class:`TrainSet` from ``trainset``: the same model as ``fit`` on its
        arrays with the same hyperparameters and seed, and the train set stays reusable."""
        if data.native is not None:
            return self.fit_native(
                data.native, num_classes=num_classes, seed=seed, on_iteration=on_iteration
            )
        return self.fit(
            data.X,
            data.y,
            num_classes=num_classes,
            seed=seed,
            valid=data.valid,
            on_iteration=on_iteration,
        )

    def fit_native(
        self,
        native: Any,
        *,
        num_classes: int,
        seed: int,
        on_iteration: IterationCallback | None = None,
    ) -> BaseModel:
        """Fit on the library's own form of a train set (``TrainSet.native``, which this
        adapter's ``trainset`` built); adapters that build one implement this."""
        raise NotImplementedError(f"{self.flavor} builds no native train set")

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray: ...

    #: True when :meth:`predict_one_thread` may run in several threads at once and each call
    #: uses one core: batch scoring then predicts batches side by side instead of one at a time.
    concurrent_predict: ClassVar[bool] = False

    def predict_one_thread(self, X: np.ndarray) -> np.ndarray:
        """:meth:`predict` on one thread (the default: whatever ``predict`` does)."""
        return self.predict(X)

    @abstractmethod
    def save(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> BaseModel: ...

    def effective_params(self) -> dict[str, Any]:
        """The hyperparameters actually used, defaults included (recorded on the run)."""
        return defaults(self.params_spec) | self.params

    def _check_init_from(self, init_from: BaseModel | None) -> None:
        if init_from is None:
            return
        if not self.warm_start:
            raise UserError(f"model {self.flavor!r} cannot continue training from another model")
        if type(init_from) is not type(self) or init_from.task != self.task:
            raise UserError(
                f"cannot continue a {self.flavor} {self.task} model from a "
                f"{init_from.flavor} {init_from.task} model"
            )


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
