"""Interface address → VM for every VMI, whichever shard owns it: where a sharded guest report belongs.

With several shards a guest report reaches any one of them, but only the shard that owns the VM
indexes its VMI in full. Every shard therefore keeps this small map over all VMIs (an address and
a key per interface address), built from the same VMI list and watch, and only when sharded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from exporter.state.records import VmKey

MAX_ADDRESSES_PER_VMI = 16


class AddressBook:
    """Addresses of every VMI's interfaces; a later VMI claiming an address wins it."""

    def __init__(self) -> None:
        self._by_address: dict[str, VmKey] = {}
        self._by_vmi: dict[VmKey, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._by_vmi)

    def lookup(self, address: str) -> VmKey | None:
        return self._by_address.get(address)

    def upsert(self, raw: Mapping[str, Any]) -> None:
        read = _read(raw)
        if read is None:
            return
        key, addresses = read
        if self._by_vmi.get(key) == addresses:
            return
        self._drop(key)
        if addresses:
            self._by_vmi[key] = addresses
            for address in addresses:
                self._by_address[address] = key

    def delete(self, raw: Mapping[str, Any]) -> None:
        read = _read(raw)
        if read is not None:
            self._drop(read[0])

    def relist(self, namespace: str | None) -> AddressRelist:
        """A full list (of one namespace, or of all) fed in parts: ``add`` each, then ``end``."""
        return AddressRelist(self, namespace)

    def replace(self, items: Iterable[Mapping[str, Any]], *, namespace: str | None) -> None:
        """A full list in one go: VMIs it no longer holds are dropped."""
        relist = self.relist(namespace)
        relist.add(items)
        relist.end()

    def prune(self, stale: Callable[[VmKey], bool]) -> None:
        for key in [k for k in self._by_vmi if stale(k)]:
            self._drop(key)

    def _drop(self, key: VmKey) -> None:
        for address in self._by_vmi.pop(key, ()):
            if self._by_address.get(address) == key:
                del self._by_address[address]


class AddressRelist:
    """One full list on its way into an address book; VMIs it did not show go at ``end``."""

    def __init__(self, book: AddressBook, namespace: str | None) -> None:
        self._book = book
        self._namespace = namespace
        self._seen: set[VmKey] = set()

    def add(self, items: Iterable[Mapping[str, Any]]) -> None:
        for raw in items:
            read = _read(raw)
            if read is not None:
                self._seen.add(read[0])
                self._book.upsert(raw)

    def end(self) -> None:
        self._book.prune(lambda key: key not in self._seen and self._namespace in (None, key.namespace))


def _read(raw: Mapping[str, Any]) -> tuple[VmKey, tuple[str, ...]] | None:
    metadata = raw.get("metadata") if isinstance(raw, Mapping) else None
    if not isinstance(metadata, Mapping):
        return None
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not (isinstance(namespace, str) and namespace and isinstance(name, str) and name):
        return None
    status = raw.get("status")
    interfaces = status.get("interfaces") if isinstance(status, Mapping) else None
    addresses: dict[str, None] = {}
    for interface in interfaces if isinstance(interfaces, list) else ():
        if not isinstance(interface, Mapping):
            continue
        listed = interface.get("ipAddresses")
        for address in [interface.get("ipAddress"), *(listed if isinstance(listed, list) else ())]:
            if isinstance(address, str) and address and len(addresses) < MAX_ADDRESSES_PER_VMI:
                addresses[address] = None
    return VmKey(namespace, name), tuple(addresses)
