"""VMI UID and address lookups follow the current VMI of each VM."""

from __future__ import annotations

from exporter.state.records import VmiFacts, VmKey
from exporter.state.vmi_lookups import VmiLookups

A, B = VmKey("ns", "a"), VmKey("ns", "b")


def vmi(key: VmKey, uid: str, *addresses: str) -> VmiFacts:
    return VmiFacts(key, uid, "Running", "node", True, None, False, False, "mswindows", "Windows", "10", addresses)


def test_a_new_life_replaces_the_old_uid_and_addresses() -> None:
    lookups = VmiLookups()
    first = vmi(A, "uid-1", "10.0.0.1")
    lookups.replace(A, None, first)
    assert lookups.vm_of_uid("uid-1") == A and lookups.vm_at("10.0.0.1") == A
    second = vmi(A, "uid-2", "10.0.0.2")
    lookups.replace(A, first, second)
    assert lookups.vm_of_uid("uid-1") is None and lookups.vm_at("10.0.0.1") is None
    assert lookups.vm_of_uid("uid-2") == A and lookups.vm_at("10.0.0.2") == A
    lookups.replace(A, second, None)
    assert lookups.vm_of_uid("uid-2") is None and lookups.vm_at("10.0.0.2") is None


def test_an_address_taken_over_by_another_vm_stays_with_it() -> None:
    lookups = VmiLookups()
    old = vmi(A, "uid-a", "10.0.0.9")
    lookups.replace(A, None, old)
    lookups.replace(B, None, vmi(B, "uid-b", "10.0.0.9"))
    lookups.replace(A, old, None)  # A's VMI goes after B took the address over
    assert lookups.vm_at("10.0.0.9") == B
