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
import os
from pathlib import Path

import yaml

from mlscale.data.contract import Contract
from mlscale.data.contract_reader import TYPE_ALIASES, ContractReader
from mlscale.data.contract_writer import contract_hash, dump_contract, write_contract
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
    reader = ContractReader()
    contract = reader.contract(root)
    if reader.errors or contract is None:
        # In file order, whichever section found them.
        lines = sorted(reader.errors, key=lambda error: error[0])
        raise ContractError([f"{where}, line {line}: {message}" for line, message in lines])
    return dataclasses.replace(contract, path=None if where == "<string>" else where)
