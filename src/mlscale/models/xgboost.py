"""XGBoost adapter: native categorical splits, saved in XGBoost's own UBJSON model format.

Categorical columns are marked ``"c"`` in the DMatrix's feature types (codes 0..k-1, missing or
unseen as NaN), so XGBoost splits on sets of categories rather than on ordered codes. Training
uses the ``hist`` tree method, which is deterministic for a given seed.

Training that does not fit in memory builds its own DMatrix (``xgboost.DataIter`` feeding a
``QuantileDMatrix``) and trains through :meth:`XGBoostModel.fit_dmatrix`, or wraps a Booster it
trained itself with :meth:`XGBoostModel.from_booster`; either way the result saves, loads and
predicts like any other adapter.

xgboost is an optional extra (``pip install "mlscale[xgboost]"``), imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mlscale._lazy import require
from mlscale.errors import UserError
from mlscale.models.base import BaseModel, IterationCallback, TrainSet
from mlscale.models.params import Param

if TYPE_CHECKING:
    import xgboost

_OBJECTIVE = {
    "binary": "binary:logistic",
    "multiclass": "multi:softprob",
    "regression": "reg:squarederror",
}
# The metric reported as ``valid_loss``: log loss for classes; for values XGBoost has RMSE only,
# which is squared so the curve is the mean squared error, as LightGBM's ``l2``.
_METRIC = {"binary": "logloss", "multiclass": "mlogloss", "regression": "rmse"}
# Adapter hyperparameters that are not XGBoost booster parameters.
_OURS = ("num_boost_round", "nthread")


def _xgb() -> Any:
    return require("xgboost", extra="xgboost")


class XGBoostModel(BaseModel):
    """Gradient-boosted trees with XGBoost; the trained booster is ``booster_``.

    To wrap a booster trained elsewhere (out-of-core training), use :meth:`from_booster`.

    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, np.nan]] * 10)
    >>> m = XGBoostModel(task="regression", categorical=[1], params={"num_boost_round": 60})
    >>> m.fit(X, X[:, 0] * 2, num_classes=0, seed=0).booster_.num_boosted_rounds()
    60
    >>> XGBoostModel.load(m.save(), task="regression", categorical=[1]).predict(X[:4]).round(1)
    array([0., 2., 4., 6.])
    """

    flavor = "xgboost"
    warm_start = True
    iterations_param = "num_boost_round"
    params_spec: ClassVar[dict[str, Param]] = {
        "num_boost_round": Param("int", 200, low=1, high=100_000, search=(50, 1000), log=True),
        "eta": Param(
            "float",
            0.1,
            low=0.0,
            high=1.0,
            low_open=True,
            search=(0.01, 0.3),
            log=True,
            help="learning rate",
        ),
        "max_depth": Param(
            "int", 6, low=0, high=1_000, search=(3, 12), help="0: no limit (lossguide only)"
        ),
        "max_leaves": Param("int", 0, low=0, help="0: no limit"),
        "grow_policy": Param("choice", "depthwise", choices=("depthwise", "lossguide")),
        "min_child_weight": Param("float", 1.0, low=0.0, search=(0.1, 50.0), log=True),
        "subsample": Param("float", 1.0, low=0.0, high=1.0, low_open=True, search=(0.5, 1.0)),
        "colsample_bytree": Param(
            "float", 1.0, low=0.0, high=1.0, low_open=True, search=(0.5, 1.0)
        ),
        "colsample_bynode": Param("float", 1.0, low=0.0, high=1.0, low_open=True),
        "lambda": Param("float", 1.0, low=0.0, search=(1e-8, 10.0), log=True, help="L2"),
        "alpha": Param("float", 0.0, low=0.0, search=(1e-8, 10.0), log=True, help="L1"),
        "gamma": Param("float", 0.0, low=0.0, search=(1e-8, 5.0), log=True),
        "max_delta_step": Param("float", 0.0, low=0.0),
        "max_bin": Param("int", 256, low=2, high=65_535),
        "max_cat_to_onehot": Param("int", 4, low=1, help="fewer categories: one-hot splits"),
        "max_cat_threshold": Param("int", 64, low=1, help="most categories on one side"),
        "device": Param("choice", "cpu", choices=("cpu", "cuda")),
        "nthread": Param("int", 0, low=0, help="0: one per core"),
    }

    @classmethod
    def from_booster(
        cls,
        booster: xgboost.Booster,
        *,
        task: str,
        categorical: list[int],
        params: dict[str, Any] | None = None,
    ) -> XGBoostModel:
        """An adapter around a ``booster`` trained elsewhere, e.g. out of core.

        Equivalent to ``m = XGBoostModel(task=..., categorical=...); m.booster_ = booster``.
        The booster must use this adapter's objective for ``task`` (see ``train_params``).
        """
        model = cls(task=task, categorical=categorical, params=params)
        model.booster_ = booster
        return model

    def train_params(self, *, num_classes: int, seed: int) -> tuple[dict[str, Any], int]:
        """XGBoost's parameter dict for this task and the number of boosting rounds."""
        params = self.effective_params()
        rounds = int(params["num_boost_round"])
        booster = {k: v for k, v in params.items() if k not in _OURS}
        booster |= {
            "objective": _OBJECTIVE[self.task],
            "eval_metric": _METRIC[self.task],
            "tree_method": "hist",
            "seed": seed,
            "verbosity": 0,
        }
        if params["nthread"]:
            booster["nthread"] = params["nthread"]
        if self.task == "multiclass":
            booster["num_class"] = num_classes
        return booster, rounds

    def dmatrix(self, X: np.ndarray, y: np.ndarray | None = None) -> xgboost.DMatrix:
        """A DMatrix of ``X`` with the categorical columns marked as such."""
        return _xgb().DMatrix(
            X,
            label=y,
            missing=np.nan,
            feature_types=self._feature_types(X.shape[1]),
            enable_categorical=True,
            nthread=self.effective_params()["nthread"] or None,
        )

    def _feature_types(self, n_features: int) -> list[str]:
        cats = set(self.categorical)
        return ["c" if i in cats else "q" for i in range(n_features)]

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
    ) -> XGBoostModel:
        dvalid = self.dmatrix(*valid) if valid is not None else None
        return self.fit_dmatrix(
            self.dmatrix(X, y),
            num_classes=num_classes,
            seed=seed,
            valid=dvalid,
            on_iteration=on_iteration,
            init_from=init_from,
        )

    def trainset(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        seed: int,
        valid: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> TrainSet:
        """The rows as DMatrix objects (``native``: training and validation), which keep the
        histogram index XGBoost builds on first use, for every model to train on."""
        dvalid = self.dmatrix(*valid) if valid is not None else None
        return TrainSet(X, y, valid, native=(self.dmatrix(X, y), dvalid))

    def fit_native(
        self,
        native: Any,
        *,
        num_classes: int,
        seed: int,
        on_iteration: IterationCallback | None = None,
    ) -> XGBoostModel:
        dtrain, dvalid = native
        return self.fit_dmatrix(
            dtrain, num_classes=num_classes, seed=seed, valid=dvalid, on_iteration=on_iteration
        )

    def fit_dmatrix(
        self,
        dtrain: xgboost.DMatrix,
        *,
        num_classes: int,
        seed: int,
        valid: xgboost.DMatrix | None = None,
        on_iteration: IterationCallback | None = None,
        init_from: BaseModel | None = None,
    ) -> XGBoostModel:
        """``fit`` on a DMatrix built by the caller (a ``QuantileDMatrix`` for out-of-core)."""
        self._check_init_from(init_from)
        xgb = _xgb()
        params, rounds = self.train_params(num_classes=num_classes, seed=seed)
        if params["max_depth"] == 0 and params["grow_policy"] != "lossguide":
            raise UserError(
                "hyperparameter 'max_depth' of model 'xgboost' must be >= 1 unless "
                "grow_policy is 'lossguide', got 0"
            )
        init = getattr(init_from, "booster_", None)
        if init is not None and init.num_features() != dtrain.num_col():
            raise UserError(
                f"cannot continue an xgboost model trained on {init.num_features()} features "
                f"with data of {dtrain.num_col()} features"
            )
        self.curves_ = {}
        callbacks = []
        if valid is not None:
            callbacks.append(_reporter(xgb, self.curves_, self.task, on_iteration))
        self.booster_ = xgb.train(
            params,
            dtrain,
            num_boost_round=rounds,
            evals=[(valid, "valid")] if valid is not None else None,
            verbose_eval=False,
            xgb_model=init,  # copied by xgboost: the earlier model is left as it was
            callbacks=callbacks,
        )
        if params.get("device") == "cuda":
            # Predictions come from host arrays; a CPU booster predicts them without a copy.
            self.booster_.set_param({"device": "cpu"})
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        # The booster keeps the feature types it was trained with, so plain arrays predict
        # with categorical splits; in-place prediction skips building a DMatrix.
        out = np.asarray(self.booster_.inplace_predict(X, missing=np.nan), dtype=np.float64)
        if self.task == "binary":
            return np.column_stack([1.0 - out, out])
        if self.task == "multiclass":
            return out / out.sum(axis=1, keepdims=True)  # float32 softmax: sum exactly to 1
        return out

    def save(self) -> bytes:
        return bytes(self.booster_.save_raw(raw_format="ubj"))

    @classmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> XGBoostModel:
        model = cls(task=task, categorical=categorical)
        model.booster_ = _xgb().Booster(model_file=bytearray(data))
        return model


def _reporter(
    xgb: Any, curves: dict[str, list[float]], task: str, on_iteration: IterationCallback | None
) -> Any:
    """A TrainingCallback that records ``valid_loss`` and stops when ``on_iteration`` says so."""
    curve = curves.setdefault("valid_loss", [])
    metric = _METRIC[task]

    class Reporter(xgb.callback.TrainingCallback):  # type: ignore[misc, name-defined]
        def before_training(self, model: Any) -> Any:
            self.first = model.num_boosted_rounds()  # continued models start past zero
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            loss = float(evals_log["valid"][metric][-1])
            loss = loss * loss if metric == "rmse" else loss
            curve.append(loss)
            step = epoch - self.first + 1
            return on_iteration is not None and bool(on_iteration(step, {"valid_loss": loss}))

    return Reporter()
