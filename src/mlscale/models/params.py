"""Hyperparameters declared as data: their type, allowed range, default and search range.

Each adapter lists its hyperparameters once (``BaseModel.params_spec``). The same declaration
validates what a user passes (the error names the allowed range) and gives tuning its default
search space.

>>> spec = {"learning_rate": Param("float", low=0.0, high=1.0, low_open=True, default=0.05,
...                                search=(0.01, 0.3), log=True)}
>>> check_params("lightgbm", spec, {"learning_rate": 0.1})
{'learning_rate': 0.1}
>>> check_params("lightgbm", spec, {"learning_rate": 5})
Traceback (most recent call last):
...
mlscale.errors.UserError: hyperparameter 'learning_rate' of model 'lightgbm' must be a float in (0.0, 1.0], got 5
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from mlscale.errors import UserError

KINDS = ("float", "int", "choice", "bool")


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    ``low``/``high`` bound what is valid (``None``: unbounded; ``low_open``: ``low`` itself is
    not allowed); ``search`` is the range tuning explores by default: ``(low, high)`` for numbers,
    a tuple of options for choices, ``None`` to leave it out of tuning.
    """

    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[Any, ...] = ()
    search: tuple[Any, ...] | None = None
    log: bool = False  # search on a log scale
    help: str = ""

    def describe(self) -> str:
        """The allowed values in words, for error messages.

        >>> Param("int", low=1, high=None).describe()
        'an int >= 1'
        >>> Param("choice", choices=("l1", "l2")).describe()
        "one of 'l1', 'l2'"
        """
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        article = "an" if self.kind == "int" else "a"
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            return f"{article} {self.kind} in {left}{self.low}, {self.high}]"
        if self.low is not None:
            return f"{article} {self.kind} {'>' if self.low_open else '>='} {self.low}"
        if self.high is not None:
            return f"{article} {self.kind} <= {self.high}"
        return f"{article} {self.kind}"

    def check(self, value: Any) -> Any:
        """``value`` converted to this parameter's type, or None when it is not allowed."""
        if self.kind == "choice":
            return value if value in self.choices else None
        if self.kind == "bool":
            return value if isinstance(value, bool) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if self.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                return None
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                return None
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return None
        if self.high is not None and value > self.high:
            return None
        return value


def check_params(model: str, spec: dict[str, Param], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` validated against ``spec``: unknown names and bad values raise a UserError."""
    checked: dict[str, Any] = {}
    for name, value in params.items():
        if name not in spec:
            close = difflib.get_close_matches(name, list(spec), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserError(
                f"unknown hyperparameter {name!r} for model {model!r}{hint} "
                f"(known: {', '.join(sorted(spec))})"
            )
        converted = spec[name].check(value)
        if converted is None:
            raise UserError(
                f"hyperparameter {name!r} of model {model!r} must be {spec[name].describe()}, "
                f"got {value!r}"
            )
        checked[name] = converted
    return checked


def defaults(spec: dict[str, Param]) -> dict[str, Any]:
    """The default value of every parameter that has one."""
    return {name: p.default for name, p in spec.items() if p.default is not None}
