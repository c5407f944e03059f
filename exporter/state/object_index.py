"""Which VM each watched object belongs to, and the resourceVersion last applied to it.

Deletes and relist prunes find the VM of an object through this index; a relist skips objects
whose resourceVersion was already applied (the API server changes it on every write).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from exporter.state import field_readers as read
from exporter.state.records import VmKey

ObjectId = tuple[str, str]  # (namespace, name) of a watched object
# A resourceVersion as kept: etcd's are decimal numbers, held as ints (half the bytes of the text);
# any other spelling is kept as the text. Only equality is ever asked of it.
Version = int | str


class ObjectIndex:
    """Per resource: object → (resourceVersion applied, VM), one entry per object.

    One table per resource, rather than one for versions and one for owners, holds each object's
    identity once; versions are also kept for objects of other shards, which are parsed only to be
    dropped, and have no VM.
    """

    def __init__(self, resources: Iterable[str]) -> None:
        self._entries: dict[str, dict[ObjectId, tuple[Version | None, VmKey | None]]] = {
            name: {} for name in resources
        }

    def already_applied(self, resource: str, raw: Mapping[str, Any]) -> bool:
        """True when this exact version was applied before; otherwise note it as applied now."""
        entries = self._entries[resource]
        identity, text = object_id(raw), resource_version(raw)
        if identity is None or not text:
            return False
        version = compact_version(text)
        entry = entries.get(identity)
        if entry is not None and entry[0] == version:
            return True
        entries[identity] = (version, entry[1] if entry is not None else None)
        return False

    def vm_of(self, resource: str, identity: ObjectId) -> VmKey | None:
        entry = self._entries[resource].get(identity)
        return entry[1] if entry is not None else None

    def remember(self, resource: str, identity: ObjectId, key: VmKey) -> None:
        entries = self._entries[resource]
        entry = entries.get(identity)
        if entry is None or entry[1] is not key:
            entries[identity] = (entry[0] if entry is not None else None, key)

    def remove(self, resource: str, identity: ObjectId) -> VmKey | None:
        """Forget a deleted object; the VM it belonged to, if it was known."""
        entry = self._entries[resource].pop(identity, None)
        return entry[1] if entry is not None else None

    def remove_missing(
        self, resource: str, seen: set[ObjectId], *, namespace: str | None = None
    ) -> list[tuple[ObjectId, VmKey]]:
        """Forget every object a full list (of ``namespace``, or of all) did not hold; the (object, VM)
        pairs that were known."""
        entries = self._entries[resource]
        missing = [i for i in entries if i not in seen and (namespace is None or i[0] == namespace)]
        gone = [(identity, entries.pop(identity)[1]) for identity in missing]
        return [(identity, key) for identity, key in gone if key is not None]


def compact_version(text: str) -> Version:
    """``text`` as an int when it is a plain decimal number (as etcd's are), else ``text``."""
    if text.isdigit() and text.isascii() and (text[0] != "0" or text == "0") and len(text) <= 18:
        return int(text)
    return text


def object_id(raw: Any) -> ObjectId | None:
    """(namespace, name) of a raw object, or None when either is missing (read as the parsers read it)."""
    _, identity = read.identified(raw)
    return (identity[0], identity[1]) if identity is not None else None


def resource_version(raw: Any) -> str | None:
    metadata = raw.get("metadata") if isinstance(raw, Mapping) else None
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) else None
