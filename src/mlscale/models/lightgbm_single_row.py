"""LightGBM's fast single-row prediction: the serving path's one-row requests.

``Booster.predict`` builds a predictor (parameters copied and parsed, buffers allocated) on every
call: most of the ~50 us it takes for one row. LightGBM's C API has a ``SingleRowFast`` pair of
calls for this case: the set-up is done once (``...FastInit``) and each call only walks the
trees. The Python package does not wrap it, so this does, with ctypes on the library that the
package has already loaded.
"""

from __future__ import annotations

import ctypes
import threading

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call  # the loaded library and its error check

# Values from LightGBM's c_api.h, stable across releases.
_PREDICT_NORMAL = 0
_DTYPE_FLOAT64 = 1


class SingleRowPredictor:
    """Predicts one row at a time with a set-up made once; safe to share between threads (a
    caller that finds it busy gets None and predicts the ordinary way)."""

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster  # keeps the handle the fast config points into alive
        self.features = booster.num_feature()
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(-1),  # every iteration
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(self.features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._out = np.empty(max(1, booster.num_model_per_iteration()), dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len = ctypes.c_int64()
        self._lock = threading.Lock()  # the config's buffers serve one call at a time

    def predict(self, row: np.ndarray) -> np.ndarray | None:
        """The booster's output for one row of ``features`` float64 values; None when busy."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            x = np.ascontiguousarray(row, dtype=np.float64)
            if x.size != self.features:
                raise ValueError(f"expected {self.features} features, got {x.size}")
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    self._config,
                    ctypes.c_void_p(x.ctypes.data),
                    ctypes.byref(self._out_len),
                    self._out_ptr,
                )
            )
            return self._out[: self._out_len.value].copy()
        finally:
            self._lock.release()

    def __del__(self) -> None:
        if self._config:
            _LIB.LGBM_FastConfigFree(self._config)
