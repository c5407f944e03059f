"""Tolerant readers for untyped API dicts: wrong types become problems, never exceptions."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

MAX_STRING = 256


class Problems:
    """Collects the names of malformed fields met while reading one object."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, problem: str) -> None:
        if problem not in self.items:
            self.items.append(problem)


def mapping(raw: Any, field: str, problems: Problems) -> Mapping[str, Any]:
    value = raw.get(field) if isinstance(raw, Mapping) else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(f"{field}_not_object")
        return {}
    return value


def sequence(raw: Mapping[str, Any], field: str, problems: Problems) -> list[Any]:
    value = raw.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(f"{field}_not_list")
        return []
    return value


def string(raw: Mapping[str, Any], field: str, problems: Problems, *, limit: int = MAX_STRING) -> str:
    value = raw.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add(f"{field}_not_string")
        return ""
    if len(value) > limit:
        problems.add(f"{field}_too_long")
        return sys.intern(value[:limit])
    # Interned: phases, node names, namespaces, OS ids, versions repeat across thousands of
    # objects, and every decoded object carries its own copy; records keep one.
    return sys.intern(value)


def timestamp(raw: Mapping[str, Any], field: str, problems: Problems) -> float | None:
    """RFC 3339 time → epoch seconds; ``None`` when absent or unreadable."""
    value = raw.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        problems.add(f"{field}_not_time")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.add(f"{field}_not_time")
        return None
    if parsed.tzinfo is None:
        problems.add(f"{field}_not_time")
        return None
    return parsed.timestamp()


def duration_seconds(value: Any) -> float | None:
    """A Go duration such as ``5m0s`` or ``1h30m`` → seconds; ``None`` when unreadable."""
    if not isinstance(value, str) or not value or len(value) > 32:
        return None
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total = 0.0
    number = ""
    i = 0
    while i < len(value):
        char = value[i]
        if char.isdigit() or char == ".":
            number += char
            i += 1
            continue
        unit = "ms" if value.startswith("ms", i) else char
        if unit not in units or not number:
            return None
        try:
            total += float(number) * units[unit]
        except ValueError:
            return None
        number = ""
        i += len(unit)
    if number:
        return None if number != "0" else 0.0
    return total


class ObjectIdentity(NamedTuple):
    namespace: str
    name: str
    uid: str  # "" when the object carries none


def identified(raw: Any) -> tuple[Problems, ObjectIdentity | None]:
    """A new problem list for reading one object, and its identity (``None``, with a problem, when it has none)."""
    problems = Problems()
    return problems, object_identity(raw, problems)


def object_identity(raw: Any, problems: Problems) -> ObjectIdentity | None:
    """(namespace, name, uid) of an object, or ``None`` when it cannot be identified."""
    if not isinstance(raw, Mapping):
        problems.add("object_not_object")
        return None
    metadata = mapping(raw, "metadata", problems)
    namespace = string(metadata, "namespace", problems)
    name = string(metadata, "name", problems)
    if not namespace or not name:
        problems.add("missing_name")
        return None
    return ObjectIdentity(namespace, name, string(metadata, "uid", problems))
