"""Reads contract YAML into a :class:`~mlscale.data.contract.Contract`, collecting every problem.

:class:`ContractReader` walks the nodes that ``yaml.compose`` returns rather than the plain values
``yaml.safe_load`` would, so every value still knows its line and each problem is reported as
``(line, message)``; it never stops at the first one. It also checks that ``regex`` rules use only
what DuckDB's regular expressions (RE2) support, since that is where they run. Turning the problems
into a :class:`~mlscale.data.contract_io.ContractError` is left to
:func:`~mlscale.data.contract_io.loads_contract`, which also knows the file name.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable
from datetime import datetime
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


class ContractReader:
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
