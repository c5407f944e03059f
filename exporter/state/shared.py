"""One instance of the immutable values that many VMs hold alike.

Thousands of VMs carry equal values: the same check results, the same VSS writers from the same
Windows build, the same snapshot indications and their messages. Every parse builds its own copy;
a ``SharedValues`` table hands back the first equal instance instead, so the fleet holds one.

Each kind of value has its own table, so only values built the same way are compared (``True ==
1`` must not make a check result stand in for a count). A table is bounded: once full, a value it
does not hold is returned as it is — still correct, only not shared — so odd input cannot grow it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

DEFAULT_LIMIT = 4096

Value = TypeVar("Value", bound=Hashable)


class SharedValues:
    """A bounded table of canonical instances of one kind of immutable value."""

    __slots__ = ("_limit", "_values")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._values: dict[Hashable, Hashable] = {}

    def __call__(self, value: Value) -> Value:
        """The instance equal to ``value`` that this table already holds, else ``value`` itself."""
        found = self._values.get(value)
        if found is not None:
            return found  # type: ignore[return-value]  # equal, and of the same kind: one table per kind
        if len(self._values) < self._limit:
            self._values[value] = value
        return value

    def __len__(self) -> int:
        return len(self._values)
