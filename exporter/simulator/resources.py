"""The served resource types and the records the store keeps: object versions and their changes."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A served resource: plural name, stored apiVersion and kind, and whether it is namespaced."""

    plural: str
    api_version: str
    kind: str
    namespaced: bool = True


RESOURCE_TYPES: dict[str, ResourceType] = {
    t.plural: t
    for t in (
        ResourceType("virtualmachineinstances", "kubevirt.io/v1", "VirtualMachineInstance"),
        ResourceType("virtualmachines", "kubevirt.io/v1", "VirtualMachine"),
        ResourceType("virtualmachinesnapshots", "snapshot.kubevirt.io/v1beta1", "VirtualMachineSnapshot"),
        ResourceType(
            "virtualmachinesnapshotcontents", "snapshot.kubevirt.io/v1beta1", "VirtualMachineSnapshotContent"
        ),
        ResourceType("virtualmachinebackups", "backup.kubevirt.io/v1alpha1", "VirtualMachineBackup"),
        ResourceType("events", "v1", "Event"),
        ResourceType("pods", "v1", "Pod"),
        ResourceType("namespaces", "v1", "Namespace", namespaced=False),
    )
}


class Expired(Exception):
    """The requested resourceVersion is older than the history still kept."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (reproducible for a seeded generator)."""
    n = (rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Entry:
    """One stored version of an object and its JSON, encoded on first use."""

    __slots__ = ("_alternate", "_json", "obj")

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self._json: bytes | None = None
        self._alternate: tuple[str, bytes] | None = None

    def json(self, api_version: str | None = None) -> bytes:
        """The object's JSON; with ``api_version``, the same object served under that version."""
        if api_version is None or api_version == self.obj.get("apiVersion"):
            if self._json is None:
                self._json = encode(self.obj)
            return self._json
        if self._alternate is None or self._alternate[0] != api_version:
            self._alternate = (api_version, encode({**self.obj, "apiVersion": api_version}))
        return self._alternate[1]


@dataclass(frozen=True, slots=True)
class Change:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    entry: Entry
    prev: Entry | None
