"""The VM of a VMI, found by the VMI's UID (launcher pods) or by one of its addresses (guest reports)."""

from __future__ import annotations

from exporter.state.records import VmiFacts, VmKey


class VmiLookups:
    """UID → VM and interface address → VM, for the current VMI of every VM."""

    def __init__(self) -> None:
        self._by_uid: dict[str, VmKey] = {}
        self._by_address: dict[str, VmKey] = {}

    def vm_of_uid(self, uid: str) -> VmKey | None:
        return self._by_uid.get(uid)

    def vm_at(self, address: str) -> VmKey | None:
        return self._by_address.get(address)

    def replace(self, key: VmKey, previous: VmiFacts | None, current: VmiFacts | None) -> None:
        """The VMI of ``key`` changed from ``previous`` to ``current`` (either may be None)."""
        if previous is not None:
            self._by_uid.pop(previous.uid, None)
            for address in previous.ip_addresses:
                if self._by_address.get(address) == key:
                    del self._by_address[address]
        if current is not None:
            if current.uid:
                self._by_uid[current.uid] = key
            for address in current.ip_addresses:
                self._by_address[address] = key
