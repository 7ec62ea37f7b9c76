"""Random forests (scikit-learn), saved with skops and loaded only with scikit-learn/numpy types.

The trees split on missing numbers natively (scikit-learn >= 1.4), so NaN goes in as it is.
Scikit-learn's forests have no categorical splits: category codes are split on as ordered
numbers, which trees cope with by splitting more often; an unseen category is missing.

``fit(init_from=...)`` continues a forest: the earlier trees are kept and ``n_estimators`` new
trees are grown on the new data (scikit-learn's ``warm_start``).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from mlscale.errors import UserError
from mlscale.models.base import BaseModel, IterationCallback
from mlscale.models.linear import load_sklearn
from mlscale.models.params import Param


class RandomForestModel(BaseModel):
    """A random forest classifier for classes, a regressor for values.

    >>> X = np.array([[0.0], [1.0], [np.nan], [3.0]] * 5)
    >>> m = RandomForestModel(task="binary", categorical=[], params={"n_estimators": 5})
    >>> m.fit(X, np.array([0, 0, 1, 1] * 5), num_classes=2, seed=0).predict(X[:4]).argmax(1)
    array([0, 0, 1, 1])
    """

    flavor = "random_forest"
    warm_start = True
    params_spec: ClassVar[dict[str, Param]] = {
        "n_estimators": Param("int", 200, low=1, high=100_000, search=(50, 1000), log=True),
        "max_depth": Param("int", 0, low=0, high=1_000, search=(0, 32), help="0: no limit"),
        "min_samples_split": Param("int", 2, low=2, search=(2, 32), log=True),
        "min_samples_leaf": Param("int", 1, low=1, search=(1, 64), log=True),
        "max_features": Param(
            "float",
            0.0,
            low=0.0,
            high=1.0,
            search=(0.1, 1.0),
            help="share of the features tried at each split; 0: scikit-learn's default "
            "(the square root of their number for classes, all of them for values)",
        ),
        "max_samples": Param(
            "float", 1.0, low=0.0, high=1.0, low_open=True, help="share of rows per tree"
        ),
        "bootstrap": Param("bool", True),
        "min_impurity_decrease": Param("float", 0.0, low=0.0),
        "class_weight": Param("choice", "none", choices=("none", "balanced", "balanced_subsample")),
        "n_jobs": Param("int", 0, low=0, help="0: one per core"),
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
    ) -> RandomForestModel:
        self._check_init_from(init_from)
        params = self.effective_params()
        if isinstance(init_from, RandomForestModel):
            forest = copy.deepcopy(init_from.forest_)  # leave the earlier model as it was
            self._check_continuable(forest, X, y)
            forest.set_params(
                warm_start=True,
                n_estimators=len(forest.estimators_) + params["n_estimators"],
                n_jobs=params["n_jobs"] or -1,
                random_state=seed,
            )
        else:
            forest = self._new_forest(params, seed)
        self.forest_ = forest.fit(X, y)
        self.forest_.set_params(warm_start=False)
        self.curves_ = {}
        return self

    def _new_forest(self, params: dict[str, Any], seed: int) -> Any:
        common = {
            "n_estimators": params["n_estimators"],
            "max_depth": params["max_depth"] or None,
            "min_samples_split": params["min_samples_split"],
            "min_samples_leaf": params["min_samples_leaf"],
            "max_features": params["max_features"]
            or ("sqrt" if self.task != "regression" else 1.0),
            "bootstrap": params["bootstrap"],
            # scikit-learn refuses max_samples without bootstrap; 1.0 means "all rows" anyway.
            "max_samples": params["max_samples"] if params["bootstrap"] else None,
            "min_impurity_decrease": params["min_impurity_decrease"],
            "n_jobs": params["n_jobs"] or -1,
            "random_state": seed,
        }
        if self.task == "regression":
            if params["class_weight"] != "none":
                raise UserError(
                    "hyperparameter 'class_weight' of model 'random_forest' applies to "
                    f"classes only; the task is regression, got {params['class_weight']!r}"
                )
            return RandomForestRegressor(**common)
        weight = None if params["class_weight"] == "none" else params["class_weight"]
        return RandomForestClassifier(class_weight=weight, **common)

    def _check_continuable(self, forest: Any, X: np.ndarray, y: np.ndarray) -> None:
        if X.shape[1] != forest.n_features_in_:
            raise UserError(
                f"cannot continue a random forest trained on {forest.n_features_in_} features "
                f"with data of {X.shape[1]} features"
            )
        if self.task != "regression":
            # New trees must vote over the same classes as the old ones.
            classes = np.unique(y)
            if not np.array_equal(classes, forest.classes_):
                raise UserError(
                    f"cannot continue a random forest trained on classes "
                    f"{forest.classes_.tolist()} with data whose classes are {classes.tolist()}"
                )

    def predict(self, X: np.ndarray) -> np.ndarray:
        forest = self.forest_
        if len(X) < 1_000:
            # Threads cost more than they save on a few rows (a single row: ~2x slower with
            # them). A shallow copy shares the trees, so concurrent callers are unaffected.
            forest = copy.copy(forest)
            forest.n_jobs = 1
        if self.task == "regression":
            return forest.predict(X)
        return forest.predict_proba(X)

    def save(self) -> bytes:
        return sio.dumps(self.forest_)

    @classmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> RandomForestModel:
        model = cls(task=task, categorical=categorical)
        model.forest_ = load_sklearn(data, what="random forest")
        return model
