"""Where work runs: local processes (``local``) or a Ray cluster (``ray``).

Backends are imported only when chosen; only this package imports ray. Each backend module has
the same seam, ``run_parallel(fn, n_workers, *, poll=None, ...) -> list``: ``fn(i)`` for each
worker index ``i``, in parallel, results in index order.

>>> check_backend("local", None)
'local'
>>> check_backend("spark", None)
Traceback (most recent call last):
...
mlscale.errors.UserError: unknown backend 'spark'; expected one of local, ray
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, TypeVar

from mlscale.errors import UserError

__all__ = ["BACKENDS", "check_backend", "run_parallel"]

T = TypeVar("T")
BACKENDS = ("local", "ray")


def check_backend(backend: str, address: str | None) -> str:
    """``backend`` if it is known and usable here, else a UserError saying what to do."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "local" and address:
        raise UserError(
            "--address names a Ray cluster; it is only used with --backend ray "
            f"(got --address {address!r} with --backend local)"
        )
    if backend == "ray" and importlib.util.find_spec("mlscale.compute.ray") is None:
        raise UserError(
            "the ray backend is not available yet in this version of mlscale; "
            "use --backend local (the default)"
        )
    return backend


def run_parallel(
    fn: Callable[[int], T],
    n_workers: int,
    *,
    backend: str = "local",
    address: str | None = None,
    poll: Callable[[], None] | None = None,
) -> list[T]:
    """``[fn(0), ..., fn(n_workers - 1)]`` run in parallel on ``backend``."""
    check_backend(backend, address)
    module: Any = importlib.import_module(f"mlscale.compute.{backend}")
    options: dict[str, Any] = {"poll": poll}
    if backend == "ray":
        options["address"] = address
    return module.run_parallel(fn, n_workers, **options)
