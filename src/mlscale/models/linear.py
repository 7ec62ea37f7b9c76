"""Linear models (scikit-learn) with L1, L2 or elastic-net regularisation, or none.

Classes get a logistic regression; values get ridge (L2), lasso (L1), elastic net, or ordinary
least squares. ``C`` is the inverse regularisation strength with one meaning for every penalty
and task, LogisticRegression's: the objective is the summed loss plus ``1/C`` times the penalty
``l1_ratio * |w|_1 + (1 - l1_ratio) / 2 * |w|_2^2``. For regressors that gives ridge
``alpha = 1/C`` and, since lasso and elastic net average their loss over the n rows,
``alpha = 1/(n C)`` for those.

Missing numbers are imputed with the median and scaled; categories are one-hot encoded (unseen
ones ignored). Saved with skops, never pickle, and loaded only with scikit-learn/numpy types.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import sklearn
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlscale.errors import IntegrityError
from mlscale.models.base import BaseModel, IterationCallback
from mlscale.models.params import Param

_TRUSTED_PREFIXES = ("sklearn.", "numpy.")
# skops already trusts the builtin containers and scalars; a builtin that it reports as untrusted
# is a function (``builtins.eval``, ``builtins.exec``), which no fitted estimator of ours holds.
_TRUSTED_BUILTINS = frozenset({"builtins.slice", "builtins.range", "builtins.complex"})
# scikit-learn 1.8 deprecated ``penalty`` in favour of ``l1_ratio`` (0: L2, 1: L1) and C=inf.
_L1_RATIO_API = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8)


def load_sklearn(data: bytes, *, what: str) -> Any:
    """A skops archive loaded only if every type in it is scikit-learn's or numpy's.

    >>> from sklearn.linear_model import Ridge
    >>> load_sklearn(sio.dumps(Ridge(alpha=2.0)), what="linear model").alpha
    2.0
    """
    untrusted = sio.get_untrusted_types(data=data)
    unexpected = [
        t for t in untrusted if not (t.startswith(_TRUSTED_PREFIXES) or t in _TRUSTED_BUILTINS)
    ]
    if unexpected:
        raise IntegrityError(
            f"refusing to load a {what} that contains {', '.join(unexpected)}: "
            "only scikit-learn and numpy types are trusted"
        )
    return sio.loads(data, trusted=untrusted)


class LinearModel(BaseModel):
    """Logistic regression for classes, a regularised linear regression for values.

    >>> X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 1.0]])
    >>> m = LinearModel(task="regression", categorical=[1], params={"penalty": "none"})
    >>> m.fit(X, np.array([1.0, 3.0, 5.0, 7.0]), num_classes=0, seed=0).predict(X).round(6)
    array([1., 3., 5., 7.])
    """

    flavor = "linear"
    params_spec: ClassVar[dict[str, Param]] = {
        "penalty": Param(
            "choice",
            "l2",
            choices=("l2", "l1", "elasticnet", "none"),
            search=("l2", "l1", "elasticnet"),
        ),
        "C": Param(
            "float",
            1.0,
            low=0.0,
            low_open=True,
            search=(1e-3, 100.0),
            log=True,
            help="inverse regularisation strength",
        ),
        "l1_ratio": Param(
            "float", 0.5, low=0.0, high=1.0, search=(0.05, 0.95), help="elasticnet: L1 share"
        ),
        "max_iter": Param("int", 2000, low=1, high=1_000_000),
        "tol": Param("float", 1e-4, low=0.0, low_open=True),
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
    ) -> LinearModel:
        self._check_init_from(init_from)
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
            estimator = _regressor(params, n_rows=len(y))
        else:
            estimator = _classifier(params, seed)
        self.pipeline_ = Pipeline([("prep", prep), ("model", estimator)]).fit(X, y)
        self.curves_ = {}
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return self.pipeline_.predict(X)
        return self.pipeline_.predict_proba(X)

    def save(self) -> bytes:
        return sio.dumps(self.pipeline_)

    @classmethod
    def load(cls, data: bytes, *, task: str, categorical: list[int]) -> LinearModel:
        model = cls(task=task, categorical=categorical)
        model.pipeline_ = load_sklearn(data, what="linear model")
        return model


def _classifier(params: dict[str, Any], seed: int) -> LogisticRegression:
    penalty, C = params["penalty"], params["C"]
    # lbfgs handles L2 and no penalty; saga is the solver that handles L1 and elastic net.
    solver = "saga" if penalty in ("l1", "elasticnet") else "lbfgs"
    common = {"solver": solver, "max_iter": params["max_iter"], "tol": params["tol"]}
    if _L1_RATIO_API:
        l1_ratio = {"l2": 0.0, "none": 0.0, "l1": 1.0}.get(penalty, params["l1_ratio"])
        C = np.inf if penalty == "none" else C
        return LogisticRegression(C=C, l1_ratio=l1_ratio, random_state=seed, **common)
    extra = {"l1_ratio": params["l1_ratio"]} if penalty == "elasticnet" else {}
    return LogisticRegression(
        penalty=None if penalty == "none" else penalty,
        C=C,
        random_state=seed,
        **common,
        **extra,
    )


def _regressor(params: dict[str, Any], *, n_rows: int) -> Any:
    penalty, C = params["penalty"], params["C"]
    if penalty == "none":
        return LinearRegression()
    if penalty == "l2":
        return Ridge(alpha=1.0 / C)
    # Lasso and ElasticNet average the squared error over the rows; scale alpha so that one C
    # means the same penalty as for ridge and logistic regression (see the module docstring).
    alpha = 1.0 / (n_rows * C)
    common = {"alpha": alpha, "max_iter": params["max_iter"], "tol": params["tol"]}
    if penalty == "l1":
        return Lasso(**common)
    return ElasticNet(l1_ratio=params["l1_ratio"], **common)
