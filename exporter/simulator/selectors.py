"""Kubernetes ``labelSelector`` and ``fieldSelector`` query parameters as predicates on raw objects."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_SET_REQUIREMENT = re.compile(r"^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQUALITY = re.compile(r"^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$")
_EXISTS = re.compile(r"^(!?)([^\s!=(),]+)$")


class SelectorError(ValueError):
    """The selector text is not valid; the API answers 400 BadRequest."""


def _split(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _labels(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def parse_label_selector(text: str) -> Predicate | None:
    """Return a predicate for ``k=v``, ``k!=v``, ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``; None if empty."""
    checks: list[Predicate] = []
    for part in _split(text):
        if m := _SET_REQUIREMENT.match(part):
            key, op, values = m[1], m[2], frozenset(v.strip() for v in m[3].split(",") if v.strip())
            if op == "in":
                checks.append(lambda o, k=key, vs=values: _labels(o).get(k) in vs)
            else:
                checks.append(lambda o, k=key, vs=values: _labels(o).get(k) not in vs)
        elif m := _EQUALITY.match(part):
            key, op, value = m[1], m[2], m[3]
            if op == "!=":
                checks.append(lambda o, k=key, v=value: _labels(o).get(k) != v)
            else:
                checks.append(lambda o, k=key, v=value: _labels(o).get(k) == v)
        elif m := _EXISTS.match(part):
            negate, key = m[1] == "!", m[2]
            checks.append(lambda o, k=key, n=negate: (k in _labels(o)) != n)
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return _all(checks)


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for step in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(step)
    if value is None:
        return ""
    if isinstance(value, dict) and path == "source":
        return str(value.get("component", ""))
    return str(value)


def parse_field_selector(text: str) -> Predicate | None:
    """Return a predicate for ``a.b=v``, ``a.b==v``, ``a.b!=v`` over dotted paths; None if empty.

    ``source`` on Events means ``source.component``, as the API server defines it.
    """
    checks: list[Predicate] = []
    for part in _split(text):
        m = _EQUALITY.match(part)
        if m is None:
            raise SelectorError(f"invalid field selector: {part!r}")
        path, op, value = m[1], m[2], m[3]
        if op == "!=":
            checks.append(lambda o, p=path, v=value: _field(o, p) != v)
        else:
            checks.append(lambda o, p=path, v=value: _field(o, p) == v)
    return _all(checks)


def _all(checks: list[Predicate]) -> Predicate | None:
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda o: all(check(o) for check in checks)


def combine(*predicates: Predicate | None) -> Predicate | None:
    """AND of the given predicates, ignoring None; None when there is nothing to check."""
    return _all([p for p in predicates if p is not None])
