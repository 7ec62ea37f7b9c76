"""LightGBM adapter: native categorical splits, saved as LightGBM's text model format."""

from __future__ import annotations

from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from mlscale.errors import UserError
from mlscale.models.base import BaseModel, IterationCallback, TrainSet
from mlscale.models.lightgbm_single_row import SingleRowPredictor
from mlscale.models.params import Param

_OBJECTIVE = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
_LOSS = {"binary": "binary_logloss", "multiclass": "multi_logloss", "regression": "l2"}


class LightGBMModel(BaseModel):
    flavor = "lightgbm"
    warm_start = True
    iterations_param = "num_boost_round"
    trainset_params = ("max_bin",)
    params_spec: ClassVar[dict[str, Param]] = {
        "num_boost_round": Param("int", 200, low=1, high=100_000, search=(50, 1000), log=True),
        "learning_rate": Param(
            "float", 0.05, low=0.0, high=1.0, low_open=True, search=(0.01, 0.3), log=True
        ),
        "num_leaves": Param("int", 31, low=2, high=131_072, search=(8, 256), log=True),
        "max_depth": Param("int", -1, low=-1, high=1_000),
        "min_data_in_leaf": Param("int", 20, low=0, search=(5, 200), log=True),
        "feature_fraction": Param("float", 0.9, low=0.0, high=1.0, low_open=True, search=(0.5, 1)),
        "bagging_fraction": Param("float", 1.0, low=0.0, high=1.0, low_open=True, search=(0.5, 1)),
        "bagging_freq": Param("int", 0, low=0, search=(0, 5)),
        "lambda_l1": Param("float", 0.0, low=0.0, search=(1e-8, 10.0), log=True),
        "lambda_l2": Param("float", 0.0, low=0.0, search=(1e-8, 10.0), log=True),
        "min_gain_to_split": Param("float", 0.0, low=0.0),
        "max_bin": Param("int", 255, low=2, high=65_535),
        "max_cat_to_onehot": Param("int", 4, low=1),
        "cat_smooth": Param("float", 10.0, low=0.0),
        "num_threads": Param("int", 0, low=0, help="0: one per core"),
    }

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
    ) -> LightGBMModel:
        self._check_init_from(init_from)
        init = getattr(init_from, "booster_", None)
        # Data-parallel training (Ray) must bin inside lightgbm.train, once the workers are
        # connected, so that they agree on the bins: no Dataset binned ahead for it either.
        distributed = self.params.get("tree_learner", "serial") != "serial"
        if init is None and not distributed:
            data = self.trainset(X, y, seed=seed, valid=valid)
            return self.fit_trainset(
                data, num_classes=num_classes, seed=seed, on_iteration=on_iteration
            )
        if init is not None and init.num_feature() != X.shape[1]:
            raise UserError(
                f"cannot continue a lightgbm model trained on {init.num_feature()} features "
                f"with data of {X.shape[1]} features"
            )
        # Continuing sets the earlier model's scores on the rows before binning them (and
        # distributed workers bin together): a Dataset left for lightgbm.train to construct.
        return self.fit_dataset(
            self._dataset(X, y, seed),
            num_classes=num_classes,
            seed=seed,
            valid=valid,
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
        """The rows binned once (``native``: the training and validation ``lightgbm.Dataset``),
        for every model with the same ``max_bin`` and seed to train on."""
        data = self._dataset(X, y, seed).construct()
        dvalid = None
        if valid is not None:
            # Binned on the training rows' bins; with their own copy of the categorical columns
            # and parameters, as lightgbm.train checks both against the training Dataset's.
            dvalid = lgb.Dataset(
                valid[0],
                label=valid[1],
                reference=data,
                categorical_feature=self.categorical,
                params=data.get_params(),
                free_raw_data=True,
            ).construct()
        return TrainSet(X, y, valid, native=(data, dvalid))

    def fit_native(
        self,
        native: Any,
        *,
        num_classes: int,
        seed: int,
        on_iteration: IterationCallback | None = None,
    ) -> LightGBMModel:
        train, valid = native
        return self._train(train, valid, num_classes, seed, on_iteration, init_from=None)

    def fit_dataset(
        self,
        data: lgb.Dataset,
        *,
        num_classes: int,
        seed: int,
        valid: tuple[np.ndarray, np.ndarray] | None = None,
        on_iteration: IterationCallback | None = None,
        init_from: BaseModel | None = None,
    ) -> LightGBMModel:
        """``fit`` on a ``lightgbm.Dataset`` built by the caller (from Sequences, out of core)."""
        self._check_init_from(init_from)
        # The validation rows take the training Dataset's own parameters (binning), as
        # LightGBM warns when the two differ.
        dvalid = None
        if valid is not None:
            dvalid = data.create_valid(valid[0], label=valid[1], params=data.params)
        return self._train(data, dvalid, num_classes, seed, on_iteration, init_from=init_from)

    def _dataset(self, X: np.ndarray, y: np.ndarray, seed: int) -> lgb.Dataset:
        """``X`` and ``y`` to bin with what binning depends on. Without the pre-filter, which
        drops features by ``min_data_in_leaf``, one binned Dataset serves any of its values."""
        params = self.effective_params()
        binning = {
            "max_bin": params["max_bin"],
            "num_threads": params["num_threads"],
            "seed": seed,
            "feature_pre_filter": False,
            "verbose": -1,
        }
        return lgb.Dataset(
            X, label=y, categorical_feature=self.categorical, params=binning, free_raw_data=True
        )

    def _train(
        self,
        data: lgb.Dataset,
        valid: lgb.Dataset | None,
        num_classes: int,
        seed: int,
        on_iteration: IterationCallback | None,
        *,
        init_from: BaseModel | None,
    ) -> LightGBMModel:
        params = self.effective_params()
        rounds = int(params.pop("num_boost_round"))
        params |= {
            "objective": _OBJECTIVE[self.task],
            "metric": _LOSS[self.task],
            "seed": seed,
            "deterministic": True,
            "verbose": -1,
        }
        if self.task == "multiclass":
            params["num_class"] = num_classes
        self.curves_ = {}
        callbacks = [] if valid is None else [self._report(on_iteration)]
        self.booster_ = lgb.train(
            params,
            data,
            num_boost_round=rounds,
            valid_sets=[valid] if valid is not None else [],
            valid_names=["valid"] if valid is not None else None,
            callbacks=callbacks,
            init_model=getattr(init_from, "booster_", None),
            keep_training_booster=False,
        )
        return self

    def _report(self, on_iteration: IterationCallback | None) -> Any:
        curve = self.curves_.setdefault("valid_loss", [])

        def callback(env: lgb.callback.CallbackEnv) -> None:
            loss = float(env.evaluation_result_list[0][2])
            curve.append(loss)
            step = env.iteration - env.begin_iteration + 1
            if on_iteration is not None and on_iteration(step, {"valid_loss": loss}):
                raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

        callback.order = 30  # type: ignore[attr-defined]
        return callback

    concurrent_predict = True  # the booster predicts from many threads; the GIL is released

    def predict(self, X: np.ndarray) -> np.ndarray:
        # One thread for small inputs: thread start-up costs more than it saves on a few rows.
        return self._predict(X, threads=1 if len(X) < 1_000 else 0)

    def predict_one_thread(self, X: np.ndarray) -> np.ndarray:
        return self._predict(X, threads=1)

    def _predict(self, X: np.ndarray, *, threads: int) -> np.ndarray:
        out = self._single_row(X) if len(X) == 1 else None
        if out is None:
            out = self.booster_.predict(X, num_threads=threads)
        if self.task == "binary":
            return np.column_stack([1.0 - out, out])
        return np.asarray(out)

    def _single_row(self, X: np.ndarray) -> np.ndarray | None:
        """One row through LightGBM's fast single-row API (None: busy in another thread)."""
        fast = self.__dict__.get("_fast")
        if fast is None or fast.booster is not self.booster_:  # first call, or refitted since
            fast = self._fast = SingleRowPredictor(self.booster_)
        out = fast.predict(X[0])
        if out is None or self.task != "multiclass":
            return out
        return out.reshape(1, -1)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_fast"}  # ctypes: not picklable

    def save(self) -> bytes:
        return self.booster_.model_to_string().encode()

    @classmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> LightGBMModel:
        model = cls(task=task, categorical=categorical)
        model.booster_ = lgb.Booster(model_str=data.decode())
        return model
