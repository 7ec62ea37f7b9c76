"""The search space: which hyperparameters tuning explores, over which values.

The default space comes from the adapter's declared search ranges (``Param.search``). A YAML file
overrides it per parameter: a range, a list of choices, or a fixed value. Every bound, choice and
fixed value is checked against what the adapter allows, and an error names the file and line.

>>> from mlscale.models.lightgbm import LightGBMModel
>>> space = default_space("lightgbm", LightGBMModel)
>>> space.dims["learning_rate"]
Dimension(name='learning_rate', kind='float', low=0.01, high=0.3, log=True, choices=())
>>> custom = parse_space(
...     "learning_rate: {low: 0.02, high: 0.2, log: true}\\nnum_leaves: 31\\n",
...     "lightgbm",
...     LightGBMModel,
... )
>>> custom.dims["learning_rate"].high, custom.fixed
(0.2, {'num_leaves': 31})
>>> parse_space("learning_rate: {low: 0, high: 2}\\n", "lightgbm", LightGBMModel, where="s.yaml")
Traceback (most recent call last):
...
mlscale.errors.UserError: s.yaml, line 1: learning_rate: low 0 is not allowed: hyperparameter 'learning_rate' of model 'lightgbm' must be a float in (0.0, 1.0], got 0

The file's format, one entry per hyperparameter::

    learning_rate: {low: 0.01, high: 0.2, log: true}   # a range (log: a log scale)
    num_leaves: {low: 16, high: 128}
    penalty: {choices: [l1, l2]}                       # a list of options
    max_depth: 8                                       # fixed: not tuned
    inherit_defaults: false                            # tune only what this file names
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlscale.errors import UserError

if TYPE_CHECKING:
    import optuna

    from mlscale.models.base import BaseModel
    from mlscale.models.params import Param

#: The reserved key of a space file: with ``false``, the adapter's default ranges are dropped.
INHERIT_KEY = "inherit_defaults"
_RANGE_KEYS = {"low", "high", "log"}


@dataclass(frozen=True)
class Dimension:
    """One tuned hyperparameter: a numeric range (``float``/``int``) or ``categorical`` choices."""

    name: str
    kind: str  # "float" | "int" | "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)  # type: ignore[arg-type]
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)  # type: ignore[arg-type]

    def grid(self, points: int) -> list[Any]:
        """``points`` values spread over the range (evenly, or evenly in log space), or the choices.

        >>> Dimension("n", "int", 1, 1000, log=True).grid(4)
        [1, 10, 100, 1000]
        >>> Dimension("f", "float", 0.5, 1.0).grid(3)
        [0.5, 0.75, 1.0]
        """
        if self.kind == "categorical":
            return list(self.choices)
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        if points == 1 or low == high:
            values = [low]
        elif self.log:
            ratio = (high / low) ** (1.0 / (points - 1))
            values = [low * ratio**i for i in range(points - 1)] + [high]
        else:
            step = (high - low) / (points - 1)
            values = [low + step * i for i in range(points - 1)] + [high]
        if self.kind == "int":
            return sorted({round(v) for v in values})
        return [float(f"{v:.6g}") for v in values]

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Space:
    """The tuned dimensions of one model, and the hyperparameters held fixed while tuning."""

    model: str
    dims: dict[str, Dimension]
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def numeric(self) -> bool:
        """Whether every dimension is a number range (what CMA-ES can search)."""
        return all(d.kind != "categorical" for d in self.dims.values())

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """One point of the space, asked of ``trial``, with the fixed values added."""
        return {name: d.suggest(trial) for name, d in self.dims.items()} | self.fixed

    def grid(self, points: int) -> dict[str, list[Any]]:
        return {name: d.grid(points) for name, d in self.dims.items()}

    def to_dict(self) -> dict[str, Any]:
        """A plain description, recorded on the tuning run."""
        return {
            "tuned": {name: d.to_dict() for name, d in self.dims.items()},
            "fixed": dict(self.fixed),
        }

    def digest(self) -> str:
        """A short hash of the space: part of the default study name.

        >>> one = Space("m", {"x": Dimension("x", "float", 0.0, 1.0)})
        >>> one.digest() == Space("m", {"x": Dimension("x", "float", 0.0, 1.0)}).digest()
        True
        >>> one.digest() == Space("m", {"x": Dimension("x", "float", 0.0, 2.0)}).digest()
        False
        """
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def default_space(model: str, cls: type[BaseModel]) -> Space:
    """Every hyperparameter of ``cls`` that declares a search range."""
    dims = {}
    for name, param in cls.params_spec.items():
        if param.search is not None:
            dims[name] = _dimension(name, param, param.search, param.log)
    return Space(model, dims)


def load_space(path: str | Path, model: str, cls: type[BaseModel]) -> Space:
    """The default space of ``cls`` with the overrides of the YAML file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the search space file {path}: {exc.strerror}") from None
    return parse_space(text, model, cls, where=str(path))


def parse_space(text: str, model: str, cls: type[BaseModel], *, where: str = "<space>") -> Space:
    """The default space of ``cls`` with the overrides written in ``text`` (YAML)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{where}{line}: not valid YAML: {problem}") from None
    if root is None:
        return default_space(model, cls)
    if not isinstance(root, yaml.MappingNode):
        raise UserError(
            f"{where}, line {root.start_mark.line + 1}: expected a mapping of hyperparameter "
            f"names to ranges, choices or fixed values, found {_kind_of(_value(root))}"
        )
    entries: list[tuple[int, str, Any]] = []
    inherit = True
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        name, value = _value(key_node), _value(value_node)
        if name == INHERIT_KEY:
            if not isinstance(value, bool):
                raise UserError(f"{where}, line {line}: {INHERIT_KEY} must be true or false")
            inherit = value
            continue
        entries.append((line, str(name), value))
    base = default_space(model, cls) if inherit else Space(model, {})
    dims, fixed = dict(base.dims), dict(base.fixed)
    seen: set[str] = set()
    for line, name, value in entries:
        at = f"{where}, line {line}"
        if name in seen:
            raise UserError(f"{at}: {name} is given twice")
        seen.add(name)
        param = _known(cls, model, name, at)
        dims.pop(name, None)
        fixed.pop(name, None)
        if isinstance(value, dict):
            dims[name] = _override(cls, model, name, param, value, at)
        elif isinstance(value, list):
            raise UserError(
                f"{at}: {name}: a list of options is written {{choices: [...]}}, "
                f"found a bare list {value!r}"
            )
        else:
            fixed[name] = _checked(cls, model, name, value, at, "fixed value")
    return Space(model, dims, fixed)


def _override(
    cls: type[BaseModel], model: str, name: str, param: Param, value: dict[str, Any], at: str
) -> Dimension:
    keys = set(value)
    if "choices" in keys:
        if keys != {"choices"}:
            extra = ", ".join(sorted(keys - {"choices"}))
            raise UserError(f"{at}: {name}: choices cannot be combined with {extra}")
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise UserError(f"{at}: {name}: choices must be a non-empty list, found {choices!r}")
        checked = tuple(_checked(cls, model, name, c, at, "choice") for c in choices)
        return Dimension(name, "categorical", choices=tuple(dict.fromkeys(checked)))
    unknown = keys - _RANGE_KEYS
    if unknown:
        raise UserError(
            f"{at}: {name}: unknown key(s) {', '.join(sorted(unknown))}; a range is written "
            "{low: ..., high: ..., log: true|false}, options {choices: [...]}"
        )
    if param.kind not in ("int", "float"):
        raise UserError(
            f"{at}: {name} is {param.describe()}: give {{choices: [...]}} or a fixed value, "
            "not a range"
        )
    if "low" not in keys or "high" not in keys:
        missing = " and ".join(k for k in ("low", "high") if k not in keys)
        raise UserError(f"{at}: {name}: a range needs low and high; {missing} missing")
    low = _checked(cls, model, name, value["low"], at, "low")
    high = _checked(cls, model, name, value["high"], at, "high")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{at}: {name}: log must be true or false, found {log!r}")
    return _dimension(name, param, (low, high), log, at)


def _dimension(
    name: str, param: Param, search: tuple[Any, ...], log: bool, at: str | None = None
) -> Dimension:
    where = f"{at}: " if at else f"the default search range of {name}: "
    if param.kind in ("choice", "bool"):
        return Dimension(name, "categorical", choices=tuple(search))
    low, high = search
    if low > high:
        raise UserError(f"{where}{name}: low {low} is above high {high}")
    if log and low <= 0:
        raise UserError(f"{where}{name}: a log scale needs low > 0, found {low}")
    if param.kind == "int":
        return Dimension(name, "int", int(low), int(high), log)
    return Dimension(name, "float", float(low), float(high), log)


def _known(cls: type[BaseModel], model: str, name: str, at: str) -> Param:
    spec = cls.params_spec
    if name not in spec:
        close = difflib.get_close_matches(name, list(spec), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(
            f"{at}: unknown hyperparameter {name!r} for model {model!r}{hint} "
            f"(known: {', '.join(sorted(spec))})"
        )
    return spec[name]


def _checked(cls: type[BaseModel], model: str, name: str, value: Any, at: str, what: str) -> Any:
    try:
        return cls.check_params({name: value}, name=model)[name]
    except UserError as exc:
        raise UserError(f"{at}: {name}: {what} {value!r} is not allowed: {exc}") from None


def _value(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_document(node)


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return repr(value)
