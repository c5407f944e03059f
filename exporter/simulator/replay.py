"""Objects from a file, served as they are: a customer's ``kubectl get … -o yaml|json`` replayed.

Accepts a ``List`` (what ``kubectl get a,b,c -o yaml`` prints), a multi-document YAML stream, a JSON
document or a JSON array, nested Lists included. Objects of kinds the simulator does not serve are
counted and skipped; the ``resourceVersion`` of each object is reassigned by the store.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.simulator.resources import RESOURCE_TYPES

_PLURAL_BY_KIND = {t.kind: t.plural for t in RESOURCE_TYPES.values()}
MAX_OBJECTS = 200_000


class ObjectsFileError(ValueError):
    """The file is not JSON or YAML of Kubernetes objects."""


@dataclass(slots=True)
class LoadedObjects:
    """Objects by resource, in file order, and the kinds that were skipped with their counts."""

    objects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def read_objects(text: str) -> LoadedObjects:
    """Parse the text of an objects file; raise ObjectsFileError when it is neither JSON nor YAML."""
    loaded = LoadedObjects()
    for obj in _flatten(_documents(text)):
        kind = obj.get("kind")
        plural = _PLURAL_BY_KIND.get(kind) if isinstance(kind, str) else None
        metadata = obj.get("metadata")
        if plural is None or not isinstance(metadata, dict) or not metadata.get("name"):
            loaded.skipped[str(kind) if kind else "<no kind>"] += 1
            continue
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in metadata.items() if k not in ("resourceVersion", "managedFields")}
        loaded.objects.append((plural, obj))
        if len(loaded.objects) > MAX_OBJECTS:
            raise ObjectsFileError(f"more than {MAX_OBJECTS} objects")
    return loaded


def read_objects_file(path: Path) -> LoadedObjects:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ObjectsFileError(f"cannot read {path}: {exc}") from exc
    return read_objects(text)


def _documents(text: str) -> list[Any]:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return [json.loads(text)]
        except ValueError:
            pass  # YAML flow style also starts with a brace
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise ObjectsFileError(f"not JSON or YAML: {exc}") from exc


def _flatten(documents: Iterable[Any]) -> Iterator[dict[str, Any]]:
    stack = list(reversed(list(documents)))
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif (
            isinstance(item, dict)
            and isinstance(item.get("items"), list)
            and str(item.get("kind", "")).endswith("List")
        ):
            stack.extend(reversed(item["items"]))
        elif isinstance(item, dict):
            yield item
