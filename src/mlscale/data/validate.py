"""Enforce a :class:`Contract` with one DuckDB query per source: cast, clean, check, explain.

The query turns raw rows (strings from text formats, typed values from Parquet or SQL) into typed
rows plus two extra columns that are null for good rows: ``_reason`` (every rule the row broke)
and ``_raw`` (its original values as a JSON object of strings, for the quarantine). DuckDB evaluates it in parallel,
and the ``CASE`` branches that build reasons run only on the rows that need them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlscale.data.contract import ColumnRule, Contract
from mlscale.data.schema import BOOL, FLOAT, INT, STRING, TIMESTAMP

SQL_TYPES = {
    INT: "BIGINT",
    FLOAT: "DOUBLE",
    BOOL: "BOOLEAN",
    STRING: "VARCHAR",
    TIMESTAMP: "TIMESTAMP",
}
_NUMERIC = (INT, FLOAT)


def ident(name: str) -> str:
    """A quoted SQL identifier.

    >>> print(ident('a"b'))
    "a""b"
    """
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a number, string, bool or None.

    >>> literal("it's"), literal(3), literal(None), literal(True)
    ("'it''s'", '3', 'NULL', 'TRUE')
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class Plan:
    """The compiled query and what its step counters mean."""

    sql: str
    columns: list[str]  # the typed output columns, in contract order
    counters: dict[str, str] = field(default_factory=dict)  # output column -> what it counts


def compile_contract(
    contract: Contract,
    *,
    source: str,
    present: set[str],
    fills: dict[str, Any] | None = None,
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
) -> Plan:
    """Build the validating query over ``source`` (a table name or a parenthesised subquery).

    ``present`` is the set of contract columns the source has (others are null). ``fills`` holds
    the values for median/mode imputation, computed beforehand from a sample; ``bounds`` the clip
    limits (defaults: the contract's).
    """
    fills = fills or {}
    cleaning = contract.cleaning
    bounds = bounds if bounds is not None else dict(cleaning.clip)
    raw_cols, typed, cleaned, counters = [], [], [], {}
    reasons: list[tuple[str, str]] = []  # (condition, message) on the cleaned row
    for i, rule in enumerate(contract.columns):
        name, sql_type, label = ident(rule.name), SQL_TYPES[rule.type], _q(rule.name)
        raw_cols.append(f"{name} AS _r{i}" if rule.name in present else f"NULL AS _r{i}")
        typed.append(f"{_cast(f'_r{i}', rule.type)} AS _t{i}")
        # A value that was present but did not convert is a type error, named with what was found.
        found = f"''' || CAST(_r{i} AS VARCHAR) || ''''"
        reasons.append(
            (
                f"_r{i} IS NOT NULL AND _t{i} IS NULL",
                f"'column {label}: expected {rule.type}, found {found}",
            )
        )
        value = f"_t{i}"
        for step in cleaning.normalize.get(rule.name, []):
            value = f"{step}({value})"  # trim, lower, upper: DuckDB functions of the same name
        if rule.name in cleaning.normalize:
            counters[f"_n_norm_{i}"] = f"normalized {rule.name}"
        fill = cleaning.missing.get(rule.name)
        if fill is not None and fill.strategy != "drop":
            fill_value = fill.value if fill.strategy == "constant" else fills.get(rule.name)
            if fill_value is not None:
                counters[f"_n_fill_{i}"] = f"imputed {rule.name} ({fill.strategy}: {fill_value})"
                value = f"COALESCE({value}, CAST({literal(fill_value)} AS {sql_type}))"
        elif fill is not None:
            reasons.append((f"{name} IS NULL", f"'column {label}: missing (cleaning: drop)'"))
        low, high = bounds.get(rule.name, (None, None))
        if low is not None or high is not None:
            counters[f"_n_clip_{i}"] = f"clipped {rule.name}"
            if low is not None:
                value = f"greatest({value}, CAST({literal(low)} AS {sql_type}))"
            if high is not None:
                value = f"least({value}, CAST({literal(high)} AS {sql_type}))"
        cleaned.append(f"{value} AS {name}")
        reasons.extend(_rule_checks(rule, i))
    for check in contract.checks:
        reasons.append((f"NOT COALESCE(({check.sql}), FALSE)", f"'check {_q(check.name)} failed'"))
    n = len(contract.columns)
    keep_raw = [f"_r{i}" for i in range(n)]
    keep_typed = [f"_t{i}" for i in range(n)]
    names = [ident(r.name) for r in contract.columns]
    raw_struct = ", ".join(
        f"{ident(r.name)} := CAST(_r{i} AS VARCHAR)" for i, r in enumerate(contract.columns)
    )
    counter_sql = [_counter_sql(key, contract) for key in counters]
    # Cheap boolean conditions decide; message text is built only for the rows that failed.
    any_bad = " OR ".join(f"COALESCE({cond}, FALSE)" for cond, _ in reasons) or "FALSE"
    messages = ", ".join(f"CASE WHEN {cond} THEN {msg} END" for cond, msg in reasons)
    level1 = f"SELECT {', '.join(raw_cols)} FROM {source}"
    level2 = f"SELECT {', '.join(keep_raw + typed)} FROM ({level1})"
    level3 = f"SELECT {', '.join(keep_raw + keep_typed + cleaned)} FROM ({level2})"
    level4 = (
        f"SELECT {', '.join(keep_raw + names + counter_sql)}, "
        f"CASE WHEN {any_bad} THEN concat_ws('; ', {messages}) END AS _reason FROM ({level3})"
    )
    outer = ", ".join(
        [
            *names,
            "_reason",
            # JSON text rather than a struct: a mostly-null string column is much cheaper to move.
            f"CASE WHEN _reason IS NOT NULL THEN CAST(to_json(struct_pack({raw_struct})) AS VARCHAR) "
            "END AS _raw",
            *counters,
        ]
    )
    sql = f"SELECT {outer} FROM ({level4})"
    return Plan(sql=sql, columns=[r.name for r in contract.columns], counters=counters)


def _cast(raw: str, type_: str) -> str:
    """Safe coercion: a value converts only if nothing is lost ('42' and 42.0 to 42, not 42.5)."""
    if type_ == INT:
        as_double = f"TRY_CAST({raw} AS DOUBLE)"
        return f"CASE WHEN {as_double} = round({as_double}) THEN TRY_CAST({raw} AS BIGINT) END"
    return f"TRY_CAST({raw} AS {SQL_TYPES[type_]})"


def _rule_checks(rule: ColumnRule, i: int) -> list[tuple[str, str]]:
    """(condition, message) for the per-value rules, on the cleaned value ``rule.name``."""
    col, name = ident(rule.name), _q(rule.name)
    out = []
    if not rule.nullable:
        # A type error already explains the null; only a truly missing value is reported here.
        out.append((f"{col} IS NULL AND _r{i} IS NULL", f"'column {name}: missing, not nullable'"))
    if rule.type in (*_NUMERIC, TIMESTAMP):
        sql_type = SQL_TYPES[rule.type]
        shown = f"' || CAST({col} AS VARCHAR) || '"
        if rule.min is not None:
            limit = f"CAST({literal(rule.min)} AS {sql_type})"
            out.append(
                (
                    f"{col} < {limit}",
                    f"'column {name}: {shown} is below the minimum {_q(str(rule.min))}'",
                )
            )
        if rule.max is not None:
            limit = f"CAST({literal(rule.max)} AS {sql_type})"
            out.append(
                (
                    f"{col} > {limit}",
                    f"'column {name}: {shown} is above the maximum {_q(str(rule.max))}'",
                )
            )
    if rule.allowed is not None:
        values = ", ".join(literal(v) for v in rule.allowed)
        out.append(
            (
                f"{col} NOT IN ({values})",
                f"'column {name}: ''' || {col} || ''' is not an allowed value'",
            )
        )
    if rule.regex is not None:
        out.append(
            (
                f"NOT regexp_full_match({col}, {literal(rule.regex)})",
                f"'column {name}: ''' || {col} || ''' does not match {_q(rule.regex)}'",
            )
        )
    return out


def _counter_sql(key: str, contract: Contract) -> str:
    """1 where a cleaning step changed the value of this row, for the per-step report."""
    kind, i = key.split("_")[2], int(key.split("_")[3])
    rule = contract.columns[i]
    col, before = ident(rule.name), f"_t{i}"
    if kind == "fill":
        return f"({before} IS NULL AND {col} IS NOT NULL) AS {key}"
    return f"({before} IS NOT NULL AND {col} IS DISTINCT FROM {before}) AS {key}"


def _q(text: str) -> str:
    """Text for inside a SQL string literal, quoted the Python way: 'age'."""
    return "''" + text.replace("'", "''") + "''"
