"""``name@version`` and ``name@alias`` references, used the same way everywhere."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mlscale.errors import UserError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a valid dataset or model name, else raise a clear error."""
    if not _NAME.match(name):
        raise UserError(
            f"invalid {what} {name!r}: expected a letter followed by up to 127 letters, digits, "
            "'_', '.' or '-'"
        )
    return name


@dataclass(frozen=True)
class Ref:
    """A parsed reference: exactly one of ``version`` or ``alias`` is set (``latest`` is an alias).

    >>> Ref.parse("loans@3")
    Ref(name='loans', version=3, alias=None)
    >>> Ref.parse("loans@production").alias
    'production'
    >>> str(Ref.parse("loans"))
    'loans@latest'
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str, *, default_alias: str = "latest") -> Ref:
        name, sep, tail = text.partition("@")
        check_name(name)
        if not sep:
            return cls(name, alias=default_alias)
        if tail.isdigit():
            if int(tail) < 1:
                raise UserError(f"invalid reference {text!r}: versions start at 1")
            return cls(name, version=int(tail))
        if not tail:
            raise UserError(f"invalid reference {text!r}: expected NAME@VERSION or NAME@ALIAS")
        check_name(tail, "alias")
        return cls(name, alias=tail)

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else self.alias}"


@functools.lru_cache(maxsize=1024)
def cached_ref(text: str) -> Ref:
    """:meth:`Ref.parse`, remembered: a server parses the same few references all day.

    >>> cached_ref("loans@2") is cached_ref("loans@2")
    True
    """
    return Ref.parse(text)
