"""Writes a contract as commented YAML, and hashes what a contract means.

:func:`dump_contract` writes the file a person edits: a header that explains every section, each
column on one line when it fits, and commented examples for the sections that are empty, so that
:func:`~mlscale.data.contract_io.loads_contract` reads it back to an equal contract.
:func:`write_contract` puts that text in place atomically, and :func:`contract_hash` gives the same
hash for any YAML spelling of the same rules, which is how an ingest records the contract it used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import yaml

from mlscale.data.contract import Cleaning, ColumnRule, Contract

__all__ = ["contract_hash", "dump_contract", "write_contract"]

_STR_TAG = "tag:yaml.org,2002:str"

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

    >>> from mlscale.data.contract_io import loads_contract
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

    >>> from mlscale.data.contract_io import loads_contract
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
    return dumper.represent_scalar(_STR_TAG, value, style=style)


class _Literal(str):
    """Multi-line SQL, written as a ``|`` block so it reads (and is edited) as written."""


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    _Literal, lambda dumper, value: dumper.represent_scalar(_STR_TAG, str(value), style="|")
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
