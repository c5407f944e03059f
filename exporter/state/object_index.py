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


class ObjectIndex:
    """Per resource: object → VM, and object → resourceVersion applied."""

    def __init__(self, resources: Iterable[str]) -> None:
        self._owners: dict[str, dict[ObjectId, VmKey]] = {name: {} for name in resources}
        # Also kept for objects of other shards, which are parsed only to be dropped.
        self._versions: dict[str, dict[ObjectId, str]] = {name: {} for name in self._owners}

    def already_applied(self, resource: str, raw: Mapping[str, Any]) -> bool:
        """True when this exact version was applied before; otherwise note it as applied now."""
        versions = self._versions[resource]
        identity, version = object_id(raw), resource_version(raw)
        if identity is None or not version:
            return False
        if versions.get(identity) == version:
            return True
        versions[identity] = version
        return False

    def vm_of(self, resource: str, identity: ObjectId) -> VmKey | None:
        return self._owners[resource].get(identity)

    def remember(self, resource: str, identity: ObjectId, key: VmKey) -> None:
        self._owners[resource][identity] = key

    def remove(self, resource: str, identity: ObjectId) -> VmKey | None:
        """Forget a deleted object; the VM it belonged to, if it was known."""
        self._versions[resource].pop(identity, None)
        return self._owners[resource].pop(identity, None)

    def remove_missing(
        self, resource: str, seen: set[ObjectId], *, namespace: str | None = None
    ) -> list[tuple[ObjectId, VmKey]]:
        """Forget every object a full list (of ``namespace``, or of all) did not hold; the (object, VM)
        pairs that were known."""

        def missing(identity: ObjectId) -> bool:
            return identity not in seen and (namespace is None or identity[0] == namespace)

        versions = self._versions[resource]
        for identity in [i for i in versions if missing(i)]:
            del versions[identity]
        owners = self._owners[resource]
        return [(identity, owners.pop(identity)) for identity in [i for i in owners if missing(i)]]


def object_id(raw: Any) -> ObjectId | None:
    """(namespace, name) of a raw object, or None when either is missing (read as the parsers read it)."""
    _, identity = read.identified(raw)
    return (identity[0], identity[1]) if identity is not None else None


def resource_version(raw: Any) -> str | None:
    metadata = raw.get("metadata") if isinstance(raw, Mapping) else None
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) else None
