"""Import heavy optional dependencies only where they are used, with the install line on failure."""

from __future__ import annotations

import importlib
from types import ModuleType

from mlscale.errors import MissingDependencyError


def require(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or fail with the exact ``pip install`` line for the extra that provides it.

    >>> require("json", extra="test").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is not installed; it comes with the {extra!r} extra: "
            f'pip install "mlscale[{extra}]"'
        ) from exc
