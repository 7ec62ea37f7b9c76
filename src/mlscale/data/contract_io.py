"""The YAML form of a data contract: load it with line-numbered errors, dump it, hash it.

A contract file looks like this (every key but ``columns`` is optional)::

    # mlscale data contract
    version: 1
    columns:
      age: {type: int64, nullable: false, min: 18, max: 120}
      state: {type: string, allowed: [CA, TX]}
      email: {type: string, regex: '^[^@]+@[^@]+$'}
      loan_id: {type: string, unique: true}
      application_date: {type: 'timestamp[us]', min: '2020-01-01'}
      note: string                  # shorthand for {type: string}
      employment_years:             # block style works too
        type: float
        min: 0
    checks:
      - name: amount_within_income
        sql: loan_amount <= annual_income * 5
    cleaning:
      normalize: {state: [trim, upper]}
      missing: {annual_income: median, employment_years: {constant: 0}, age: drop}
      clip: {debt_to_income: {min: 0, max: 100}}
      duplicates: {key: [loan_id]}
    evolution: {new_columns: refuse, dropped_columns: refuse, widened_types: accept}

Columns keep the order they are written in. Types are the canonical ``int64``, ``float64``,
``bool``, ``string``, ``timestamp[us]`` or one of :data:`TYPE_ALIASES` (``int``, ``float``,
``text``, ``boolean``, ``datetime``, ...). Inside ``{...}`` YAML reads ``[`` as the start of a
list, so write ``'timestamp[us]'`` in quotes there (or the alias ``timestamp``). Values of
``allowed`` and ``regex`` are taken as written, so ``allowed: [NO, 1]`` means the strings ``'NO'``
and ``'1'``, not false and a number.

Every problem in the file is reported, each with its file and line, in one :class:`ContractError`:

>>> loads_contract("columns:\\n  age: {type: int, min: 18}\\n").columns[0]
ColumnRule(name='age', type='int64', nullable=True, min=18, max=None, allowed=None, regex=None, unique=False)
>>> loads_contract("columns:\\n  age: {type: int, min: ten}\\n", "contract.yaml")
Traceback (most recent call last):
...
mlscale.data.contract_io.ContractError: contract.yaml, line 2: column 'age': min must be a number, found 'ten'
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mlscale.data.contract import (
    Cleaning,
    ColumnRule,
    Contract,
    Evolution,
    Fill,
    FillStrategy,
    RowCheck,
)
from mlscale.data.schema import BOOL, FLOAT, INT, STRING, TIMESTAMP, TYPES
from mlscale.errors import NotFoundError, SchemaError

__all__ = [
    "TYPE_ALIASES",
    "ContractError",
    "contract_hash",
    "dump_contract",
    "load_contract",
    "loads_contract",
    "write_contract",
]

TYPE_ALIASES = {
    "int": INT,
    "integer": INT,
    "float": FLOAT,
    "double": FLOAT,
    "number": FLOAT,
    "str": STRING,
    "text": STRING,
    "category": STRING,
    "boolean": BOOL,
    "datetime": TIMESTAMP,
    "timestamp": TIMESTAMP,
    "date": TIMESTAMP,
}
_NUMERIC = (INT, FLOAT)
_TOP_KEYS = ("version", "columns", "checks", "cleaning", "evolution")
_COLUMN_KEYS = ("type", "nullable", "min", "max", "allowed", "regex", "unique")
_CLEANING_KEYS = ("normalize", "missing", "clip", "duplicates")
_EVOLUTION_KEYS = tuple(f.name for f in dataclasses.fields(Evolution))
_STEPS = ("trim", "lower", "upper")
_STRATEGIES = ("drop", "median", "mode", "constant")
_POLICIES = ("accept", "refuse")
_TAG = "tag:yaml.org,2002:"
_INT_TAG, _FLOAT_TAG, _BOOL_TAG, _NULL_TAG = (_TAG + t for t in ("int", "float", "bool", "null"))
# Python `re` constructs that DuckDB's RE2 rejects; checked outside character classes.
_RE2_GROUPS = {
    "(?=": "a lookahead (?=...)",
    "(?!": "a negative lookahead (?!...)",
    "(?<=": "a lookbehind (?<=...)",
    "(?<!": "a negative lookbehind (?<!...)",
    "(?>": "an atomic group (?>...)",
    "(?P=": "a named backreference (?P=...)",
    "(?(": "a conditional group (?(...)...)",
    "(?#": "a comment group (?#...)",
}
_RE2_FLAGS = re.compile(r"\(\?[aiLmsux-]*[aLux][aiLmsux-]*[:)]")  # RE2 knows only i, m, s, U
_COUNTED = re.compile(r"\{(\d+(,\d*)?|,\d+)\}")


class ContractError(SchemaError):
    """A contract file with problems; the message has one ``file, line N: ...`` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_contract(path: str | os.PathLike[str]) -> Contract:
    """Read and check a contract file; the returned contract remembers ``path``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"contract file {path} not found") from None
    except OSError as exc:
        raise ContractError([f"{path}: cannot read the contract: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContractError([f"{path}, line {line}: not UTF-8 text ({exc.reason})"]) from None
    return loads_contract(text, str(path))


def loads_contract(text: str, path: str | os.PathLike[str] = "<string>") -> Contract:
    """Parse and check contract YAML; ``path`` names it in messages and becomes ``Contract.path``.

    The default ``"<string>"`` leaves ``Contract.path`` None, so a dumped contract reads back equal.
    """
    where = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        hint = ""
        if "[us]" in "".join(text.splitlines()[line - 1 : line]):
            hint = "; inside {...} write 'timestamp[us]' in quotes, or the alias timestamp"
        raise ContractError([f"{where}, line {line}: invalid YAML: {exc.problem}{hint}"]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ContractError([f"{where}, line {line}: invalid YAML: {exc.reason}"]) from None
    reader = _Reader()
    contract = reader.contract(root)
    if reader.errors or contract is None:
        # In file order, whichever section found them.
        lines = sorted(reader.errors, key=lambda error: error[0])
        raise ContractError([f"{where}, line {line}: {message}" for line, message in lines])
    return dataclasses.replace(contract, path=None if where == "<string>" else where)


class _Reader:
    """Walks the YAML node tree, so every value still knows its line; collects every problem."""

    def __init__(self) -> None:
        self.errors: list[tuple[int, str]] = []  # (line, message)
        self.types: dict[str, str | None] = {}  # column -> canonical type (None: type was invalid)
        self._constructor = SafeConstructor()

    def error(self, node: Node, message: str) -> None:
        self.errors.append((node.start_mark.line + 1, message))

    # -- sections ------------------------------------------------------------------------------

    def contract(self, root: Node | None) -> Contract | None:
        if root is None or _is_null(root):
            self.errors.append((1, "the contract is empty; expected 'columns:'"))
            return None
        top = self.mapping(root, "the contract", _TOP_KEYS)
        if top is None:
            return None
        if "version" in top:
            node = top["version"][1]
            if not (isinstance(node, ScalarNode) and node.tag == _INT_TAG and node.value == "1"):
                self.error(node, f"version must be 1, found {_found(node)}")
        if "columns" not in top:
            self.error(root, "columns is missing; list the columns as 'name: {type: ...}'")
            return None
        columns = self.columns(top["columns"][1])
        checks = self.checks(top["checks"][1]) if "checks" in top else []
        cleaning = self.cleaning(top["cleaning"][1]) if "cleaning" in top else Cleaning()
        evolution = self.evolution(top["evolution"][1]) if "evolution" in top else Evolution()
        return Contract(columns, checks, cleaning, evolution)

    def columns(self, node: Node) -> list[ColumnRule]:
        if isinstance(node, SequenceNode):
            self.error(node, "columns must be a mapping of column name to rule, not a list")
            return []
        fields = self.mapping(node, "columns")
        if fields is None:
            return []
        if not fields:
            self.error(node, "columns is empty; a contract needs at least one column")
        rules = []
        for name, (name_node, value) in fields.items():
            if not name.strip():
                self.error(name_node, "a column name must not be empty")
                continue
            self.types[name] = None
            rule = self.column(name, value)
            if rule is not None:
                rules.append(rule)
        return rules

    def column(self, name: str, node: Node) -> ColumnRule | None:
        what = f"column {name!r}"
        if isinstance(node, ScalarNode) and not _is_null(node):
            type_ = self.type_name(node, what)
            self.types[name] = type_
            return ColumnRule(name, type_) if type_ else None
        fields = self.mapping(node, what, _COLUMN_KEYS)
        if fields is None:
            return None
        if "type" not in fields:
            self.error(node, f"{what}: type is missing; one of {', '.join(TYPES)}")
            return None
        type_ = self.type_name(fields["type"][1], what)
        self.types[name] = type_
        if type_ is None:
            return None
        before = len(self.errors)
        rule: dict[str, Any] = {}
        for flag in ("nullable", "unique"):
            if flag in fields:
                rule[flag] = self.boolean(fields[flag][1], f"{what}: {flag}")
        for bound in ("min", "max"):
            if bound not in fields:
                continue
            key, value = fields[bound]
            if type_ in _NUMERIC:
                rule[bound] = self.number(value, f"{what}: {bound}")
            elif type_ == TIMESTAMP:
                rule[bound] = self.timestamp(value, f"{what}: {bound}")
            else:
                self.error(
                    key, f"{what}: {bound} applies to numeric and timestamp columns, not {type_}"
                )
        if rule.get("min") is not None and rule.get("max") is not None:
            low, high = rule["min"], rule["max"]
            if type_ == TIMESTAMP:
                low, high = datetime.fromisoformat(low), datetime.fromisoformat(high)
            if low > high:
                self.error(
                    fields["min"][1], f"{what}: min {rule['min']} is above max {rule['max']}"
                )
        for key_name in ("allowed", "regex"):
            if key_name in fields and type_ != STRING:
                self.error(
                    fields[key_name][0],
                    f"{what}: {key_name} applies to string columns, not {type_}",
                )
        if "allowed" in fields and type_ == STRING:
            rule["allowed"] = self.allowed(fields["allowed"][1], f"{what}: allowed")
        if "regex" in fields and type_ == STRING:
            rule["regex"] = self.regex(fields["regex"][1], f"{what}: regex")
        if len(self.errors) > before:
            return None
        return ColumnRule(name, type_, **rule)

    def checks(self, node: Node) -> list[RowCheck]:
        if _is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.error(
                node, f"checks must be a list of '- name: ..., sql: ...', found {_found(node)}"
            )
            return []
        checks: list[RowCheck] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(node.value, start=1):
            fields = self.mapping(item, f"check {i}", ("name", "sql"))
            if fields is None:
                continue
            for required in ("name", "sql"):
                if required not in fields:
                    self.error(item, f"check {i}: {required} is missing")
            if "name" not in fields or "sql" not in fields:
                continue
            name = self.text(fields["name"][1], f"check {i}: name")
            sql = self.text(fields["sql"][1], f"check {name or i!r}: sql")
            if name is None or sql is None:
                continue
            if name in seen:
                self.error(item, f"check {name!r} appears twice (first at line {seen[name]})")
                continue
            seen[name] = item.start_mark.line + 1
            checks.append(RowCheck(name, sql))
        return checks

    def cleaning(self, node: Node) -> Cleaning:
        if _is_null(node):
            return Cleaning()
        fields = self.mapping(node, "cleaning", _CLEANING_KEYS)
        if fields is None:
            return Cleaning()
        normalize: dict[str, list[str]] = {}
        missing: dict[str, Fill] = {}
        clip: dict[str, tuple[float | None, float | None]] = {}
        key: list[str] = []
        for name, node_, what in self.column_entries(fields, "normalize", (STRING,)):
            steps = self.text_list(node_, f"{what}: normalize", single=True)
            for step, step_node in steps or []:
                if self.choice_ok(step, step_node, f"{what}: normalize step", _STEPS):
                    normalize.setdefault(name, []).append(step)
        for name, node_, what in self.column_entries(fields, "missing", None):
            fill = self.fill(name, node_, what)
            if fill is not None:
                missing[name] = fill
        for name, node_, what in self.column_entries(fields, "clip", _NUMERIC):
            limits = self.clip(node_, f"{what}: clip")
            if limits is not None:
                clip[name] = limits
        if "duplicates" in fields and not _is_null(fields["duplicates"][1]):
            key = self.duplicates(fields["duplicates"][1])
        return Cleaning(normalize=normalize, missing=missing, clip=clip, duplicates_key=key)

    def column_entries(
        self,
        fields: dict[str, tuple[ScalarNode, Node]],
        section: str,
        kinds: tuple[str, ...] | None,
    ) -> Iterable[tuple[str, Node, str]]:
        """The ``column: value`` entries of a cleaning section that name a column of fitting type."""
        if section not in fields or _is_null(fields[section][1]):
            return
        entries = self.mapping(fields[section][1], f"cleaning.{section}")
        for name, (key, value) in (entries or {}).items():
            if self.column_ok(name, key, f"cleaning.{section}", kinds):
                yield name, value, f"cleaning.{section}: column {name!r}"

    def column_ok(self, name: str, node: Node, what: str, kinds: tuple[str, ...] | None) -> bool:
        if name not in self.types:
            hint = _did_you_mean(name, self.types)
            self.error(node, f"{what}: no column {name!r} in the contract{hint}")
            return False
        type_ = self.types[name]
        if type_ is None:  # its own error is already reported
            return False
        if kinds is not None and type_ not in kinds:
            self.error(node, f"{what}: column {name!r} is {type_}; needs {' or '.join(kinds)}")
            return False
        return True

    def fill(self, name: str, node: Node, what: str) -> Fill | None:
        type_ = self.types[name]
        if isinstance(node, MappingNode):
            if not node.value:
                self.error(node, f"{what}: write the fill value as {{constant: value}}")
                return None
            fields = self.mapping(node, f"{what}: missing", ("constant",))
            if not fields:
                return None
            value = self.constant(fields["constant"][1], type_, f"{what}: constant")
            return None if value is None else Fill("constant", value)
        strategy = self.text(node, f"{what}: missing")
        if strategy is None or not self.choice_ok(strategy, node, f"{what}: missing", _STRATEGIES):
            return None
        if strategy == "constant":
            self.error(node, f"{what}: constant needs a value; write {{constant: 0}}")
            return None
        if strategy == "median" and type_ not in _NUMERIC:
            self.error(node, f"{what}: median needs a numeric column, not {type_}; use mode")
            return None
        return Fill(cast("FillStrategy", strategy))

    def constant(self, node: Node, type_: str | None, what: str) -> Any:
        if type_ == INT:
            value = self.number(node, what)
            if value is not None and value != int(value):
                self.error(
                    node, f"{what} must be a whole number for an int64 column, found {value}"
                )
                return None
            return None if value is None else int(value)
        if type_ == FLOAT:
            value = self.number(node, what)
            return None if value is None else float(value)
        if type_ == BOOL:
            return self.boolean(node, what)
        if type_ == TIMESTAMP:
            return self.timestamp(node, what)
        return self.text(node, what, allow_empty=True)

    def clip(self, node: Node, what: str) -> tuple[float | None, float | None] | None:
        fields = self.mapping(node, what, ("min", "max"))
        if fields is None:
            return None
        if not fields:
            self.error(node, f"{what}: give min, max or both, e.g. {{min: 0, max: 100}}")
            return None
        low = self.number(fields["min"][1], f"{what}: min") if "min" in fields else None
        high = self.number(fields["max"][1], f"{what}: max") if "max" in fields else None
        if low is not None and high is not None and low > high:
            self.error(node, f"{what}: min {low} is above max {high}")
            return None
        return low, high

    def duplicates(self, node: Node) -> list[str]:
        fields = self.mapping(node, "cleaning.duplicates", ("key",))
        if fields is None:
            return []
        if "key" not in fields:
            self.error(node, "cleaning.duplicates: key is missing; write {key: [id_column]}")
            return []
        names = self.text_list(fields["key"][1], "cleaning.duplicates: key", single=True)
        key: list[str] = []
        for name, name_node in names or []:
            if name in key:
                self.error(name_node, f"cleaning.duplicates: key lists {name!r} twice")
            elif self.column_ok(name, name_node, "cleaning.duplicates: key", None):
                key.append(name)
        if isinstance(fields["key"][1], SequenceNode) and not fields["key"][1].value:
            self.error(fields["key"][1], "cleaning.duplicates: key must name at least one column")
        return key

    def evolution(self, node: Node) -> Evolution:
        if _is_null(node):
            return Evolution()
        fields = self.mapping(node, "evolution", _EVOLUTION_KEYS)
        policies: dict[str, Any] = {}
        for name, (_key, value) in (fields or {}).items():
            policy = self.text(value, f"evolution: {name}")
            if policy is not None and self.choice_ok(
                policy, value, f"evolution: {name}", _POLICIES
            ):
                policies[name] = policy
        return Evolution(**policies)

    # -- values --------------------------------------------------------------------------------

    def mapping(
        self, node: Node, what: str, keys: tuple[str, ...] | None = None
    ) -> dict[str, tuple[ScalarNode, Node]] | None:
        """``key -> (key node, value node)`` in file order; unknown and repeated keys are errors."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping, found {_found(node)}")
            return None
        fields: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, f"{what}: keys must be plain names, found {_found(key)}")
                continue
            if key.value in fields:
                first = fields[key.value][0].start_mark.line + 1
                self.error(key, f"{what}: {key.value!r} appears twice (first at line {first})")
                continue
            if keys is not None and key.value not in keys:
                hint = _did_you_mean(key.value, keys) or f"; expected one of {', '.join(keys)}"
                self.error(key, f"{what}: unknown key {key.value!r}{hint}")
                continue
            fields[key.value] = (key, value)
        return fields

    def text(self, node: Node, what: str, *, allow_empty: bool = False) -> str | None:
        if not isinstance(node, ScalarNode) or _is_null(node) or not node.tag.startswith(_TAG):
            self.error(node, f"{what} must be text, found {_found(node)}")
            return None
        if not node.value.strip() and not allow_empty:
            self.error(node, f"{what} must not be empty")
            return None
        return node.value

    def text_list(
        self, node: Node, what: str, *, single: bool = False
    ) -> list[tuple[str, Node]] | None:
        if single and isinstance(node, ScalarNode) and not _is_null(node):
            items = [node]
        elif isinstance(node, SequenceNode):
            items = node.value
        else:
            self.error(node, f"{what} must be a list, found {_found(node)}")
            return None
        out = []
        for item in items:
            value = self.text(item, f"{what}: each value")
            if value is not None:
                out.append((value, item))
        return out

    def choice_ok(self, value: str, node: Node, what: str, options: tuple[str, ...]) -> bool:
        if value in options:
            return True
        hint = _did_you_mean(value, options) or ""
        self.error(node, f"{what} must be one of {', '.join(options)}, found {value!r}{hint}")
        return False

    def type_name(self, node: Node, what: str) -> str | None:
        name = self.text(node, f"{what}: type")
        if name is None:
            return None
        key = name.strip().lower()
        if key in TYPES:
            return key
        if key in TYPE_ALIASES:
            return TYPE_ALIASES[key]
        hint = _did_you_mean(key, (*TYPES, *TYPE_ALIASES))
        self.error(
            node,
            f"{what}: type must be one of {', '.join(TYPES)} (or an alias: int, float, str, "
            f"boolean, datetime), found {name!r}{hint}",
        )
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == _BOOL_TAG:
            return bool(self._constructor.construct_object(node))
        self.error(node, f"{what} must be true or false, found {_found(node)}")
        return None

    def number(self, node: Node, what: str) -> float | None:
        value = None
        if isinstance(node, ScalarNode) and node.tag in (_INT_TAG, _FLOAT_TAG):
            try:
                value = self._constructor.construct_object(node)
            except (yaml.YAMLError, ValueError):
                value = None
        if value is None:
            hint = " (write it without quotes)" if _is_number_text(node) else ""
            self.error(node, f"{what} must be a number, found {_found(node)}{hint}")
            return None
        if not math.isfinite(value):
            self.error(node, f"{what} must be a finite number, found {_found(node)}")
            return None
        return value

    def timestamp(self, node: Node, what: str) -> str | None:
        text = self.text(node, what)
        if text is None:
            return None
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            self.error(
                node,
                f"{what} must be an ISO date or timestamp such as '2020-01-31' or "
                f"'2020-01-31 12:00:00', found {text!r}",
            )
            return None
        if parsed.tzinfo is not None:
            self.error(
                node, f"{what} must not carry a time zone (timestamp[us] has none), found {text!r}"
            )
            return None
        return text.strip()

    def allowed(self, node: Node, what: str) -> list[str] | None:
        values = self.text_list(node, what)
        if values is None:
            return None
        if not values and isinstance(node, SequenceNode) and not node.value:
            self.error(node, f"{what} lists no values; remove it to allow any value")
            return None
        seen: set[str] = set()
        for value, item in values:
            if value in seen:
                self.error(item, f"{what} lists {value!r} twice")
            seen.add(value)
        return [value for value, _ in values]

    def regex(self, node: Node, what: str) -> str | None:
        pattern = self.text(node, what)
        if pattern is None:
            return None
        try:
            re.compile(pattern)
        except re.error as exc:
            self.error(node, f"{what}: {pattern!r} is not a valid regular expression: {exc}")
            return None
        construct = _re2_unsupported(pattern)
        if construct is not None:
            self.error(
                node,
                f"{what}: {pattern!r} uses {construct}, which DuckDB's regular expressions (RE2) "
                "do not support",
            )
            return None
        return pattern


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _found(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if _is_null(node):
        return "nothing"
    return repr(node.value)


def _is_number_text(node: Node) -> bool:
    if not isinstance(node, ScalarNode):
        return False
    try:
        float(node.value)
    except ValueError:
        return False
    return True


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _re2_unsupported(pattern: str) -> str | None:
    """The first construct Python's ``re`` accepts but RE2 rejects, or None.

    >>> _re2_unsupported(r"(?<=\\$)\\d+"), _re2_unsupported(r"[(?=]\\d+")
    ('a lookbehind (?<=...)', None)
    """
    i, in_class = 0, False
    while i < len(pattern):
        char, following = pattern[i], pattern[i + 1 : i + 2]
        if char == "\\":
            if following in tuple("123456789") and not in_class:
                return f"a backreference \\{following}"
            if following in ("u", "U", "N"):
                return f"a \\{following} escape (write the character itself or \\x{{...}})"
            if following == "Z":
                return "\\Z (use \\z)"
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 1
            # A ']' right after '[' or '[^' is a literal, not the end of the class.
            i += pattern[i : i + 1] == "^"
            i += pattern[i : i + 1] == "]"
            continue
        elif char == "(":
            for prefix, name in _RE2_GROUPS.items():
                if pattern.startswith(prefix, i):
                    return name
            if flags := _RE2_FLAGS.match(pattern, i):
                return f"the inline flags {flags.group()} (RE2 knows i, m and s)"
        elif char in "*+?" and following == "+" and pattern[i - 1 : i] != "(":
            return "a possessive quantifier such as *+"
        elif counted := _COUNTED.match(pattern, i):
            if counted.group().startswith("{,"):
                return f"{counted.group()}, which RE2 reads as literal text (write {{0{counted.group()[1:]})"
            if pattern[counted.end() :][:1] == "+":
                return "a possessive quantifier such as {2}+"
        i += 1
    return None


# -- writing -----------------------------------------------------------------------------------

_HEADER = """\
# mlscale data contract: what every row must satisfy, and how accepted rows are cleaned.
# This file is meant to be edited: tighten or relax the rules, then ingest again.
#
# columns    one per column, in order. type: int64, float64, bool, string or timestamp[us]
#            (quoted inside {...}: 'timestamp[us]'). nullable (default true), unique (default
#            false), min/max (numbers, or ISO timestamps such as '2020-01-31'); for strings,
#            allowed (list of values) and regex (the whole value must match; RE2 syntax, so
#            no lookarounds or backreferences).
# checks     row rules as SQL boolean expressions over the columns; false rejects the row.
# cleaning   fixes to accepted rows, in this order: normalize (trim, lower, upper; strings),
#            missing (drop, median, mode or {constant: value}), clip ({min, max}; numbers),
#            duplicates ({key: [columns]}: later rows with a key already seen are quarantined).
# evolution  what to do when a source's columns differ from these: new_columns,
#            dropped_columns, widened_types (int64 -> float64); each accept or refuse.
"""
_CHECKS_EXAMPLE = """\
checks:
  # - name: amount_within_income
  #   sql: loan_amount <= annual_income * 5
"""
_CLEANING_EXAMPLE = """\
cleaning:
  # normalize: {state: [trim, upper]}
  # missing: {income: median, years: {constant: 0}, age: drop}
  # clip: {debt_to_income: {min: 0, max: 100}}
  # duplicates: {key: [loan_id]}
"""
_LINE_LENGTH = 100


def dump_contract(contract: Contract) -> str:
    """The contract as commented YAML that :func:`loads_contract` reads back to an equal contract.

    >>> contract = Contract([ColumnRule("age", "int64", nullable=False)])
    >>> "  age: {type: int64, nullable: false}" in dump_contract(contract).splitlines()
    True
    >>> loads_contract(dump_contract(contract)) == contract
    True
    """
    parts = [_HEADER, "version: 1\n", "\ncolumns:\n"]
    parts += [_column_yaml(rule) for rule in contract.columns]
    parts.append("\n# Row rules; each needs a name and a SQL expression.\n")
    if contract.checks:
        checks = [
            {"name": c.name, "sql": _Literal(c.sql) if _literal_ok(c.sql) else c.sql}
            for c in contract.checks
        ]
        parts.append(_block({"checks": checks}, flow=False))
    else:
        parts.append(_CHECKS_EXAMPLE)
    parts.append("\n# Fixes applied to accepted rows.\n")
    cleaning = _cleaning_dict(contract.cleaning)
    parts.append(_block({"cleaning": cleaning}, flow=None) if cleaning else _CLEANING_EXAMPLE)
    parts.append("\n# When a source's columns differ from the contract: accept or refuse.\n")
    parts.append(_block({"evolution": dataclasses.asdict(contract.evolution)}, flow=None))
    return "".join(parts)


def write_contract(contract: Contract, path: str | os.PathLike[str]) -> Path:
    """Write :func:`dump_contract` to ``path`` atomically (a reader sees the old file or the new)."""
    path = Path(path)
    # A named temporary beside the target (not mkstemp, whose 0600 mode would stick to the file).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("x", encoding="utf-8") as out:
            out.write(dump_contract(contract))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def contract_hash(contract: Contract) -> str:
    """SHA-256 of the contract's meaning: the same for any YAML spelling, ignoring ``path``.

    >>> a = loads_contract("columns: {x: {type: float, min: 1}}", "a.yaml")
    >>> b = loads_contract("columns:\\n  x:\\n    type: float64\\n    min: 1.0\\n", "b.yaml")
    >>> contract_hash(a) == contract_hash(b)
    True
    """
    data = dataclasses.asdict(contract)
    del data["path"]
    text = json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    # 1 and 1.0 compare equal in a contract, so they must hash the same.
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _column_yaml(rule: ColumnRule) -> str:
    fields: dict[str, Any] = {"type": rule.type}
    if not rule.nullable:
        fields["nullable"] = False
    if rule.unique:
        fields["unique"] = True
    for name in ("min", "max", "allowed", "regex"):
        if getattr(rule, name) is not None:
            fields[name] = getattr(rule, name)
    # One line if it fits, else one line per key, else one line per allowed value too.
    candidates = [
        f"  {_flow(rule.name)}: {_flow(fields)}\n",
        *(_indent(_block({rule.name: fields}, flow=flow)) for flow in (None, False)),
    ]
    for text in candidates:
        if all(len(line) <= _LINE_LENGTH for line in text.splitlines()):
            return text
    return candidates[-1]


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def _cleaning_dict(cleaning: Cleaning) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cleaning.normalize:
        out["normalize"] = {name: list(steps) for name, steps in cleaning.normalize.items()}
    if cleaning.missing:
        out["missing"] = {
            name: {"constant": fill.value} if fill.strategy == "constant" else fill.strategy
            for name, fill in cleaning.missing.items()
        }
    if cleaning.clip:
        out["clip"] = {
            name: {k: v for k, v in (("min", low), ("max", high)) if v is not None}
            for name, (low, high) in cleaning.clip.items()
        }
    if cleaning.duplicates_key:
        out["duplicates"] = {"key": list(cleaning.duplicates_key)}
    return out


class _Dumper(yaml.SafeDumper):
    """Writes text with line breaks double-quoted (escaped), so every scalar stays on one line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if "\n" in value or "\r" in value else None
    return dumper.represent_scalar(_TAG + "str", value, style=style)


class _Literal(str):
    """Multi-line SQL, written as a ``|`` block so it reads (and is edited) as written."""


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    _Literal, lambda dumper, value: dumper.represent_scalar(_TAG + "str", str(value), style="|")
)


def _literal_ok(text: str) -> bool:
    # Several trailing line breaks need a "|+" block, which ends the YAML document early.
    return "\n" in text and not text.endswith("\n\n") and "\r" not in text


def _flow(value: Any) -> str:
    return _block(value, flow=True).removesuffix("\n").removesuffix("\n...")


def _block(value: Any, *, flow: bool | None) -> str:
    return yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=flow,
        sort_keys=False,
        allow_unicode=True,
        width=1 << 30,
    )
