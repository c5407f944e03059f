"""The address book every shard keeps: interface address → VM, over all VMIs."""

from __future__ import annotations

from typing import Any

from exporter.state.addresses import MAX_ADDRESSES_PER_VMI, AddressBook
from exporter.state.records import VmKey


def vmi(namespace: str, name: str, *addresses: str) -> dict[str, Any]:
    interfaces = [{"ipAddress": addresses[0], "ipAddresses": list(addresses)}] if addresses else []
    return {"metadata": {"namespace": namespace, "name": name}, "status": {"interfaces": interfaces}}


def test_lookup_upsert_move_and_delete() -> None:
    book = AddressBook()
    book.upsert(vmi("a", "one", "10.0.0.1", "fe80::1"))
    assert book.lookup("10.0.0.1") == book.lookup("fe80::1") == VmKey("a", "one")
    book.upsert(vmi("a", "one", "10.0.0.2"))  # migrated: new address, the old one is free
    assert book.lookup("10.0.0.1") is None and book.lookup("10.0.0.2") == VmKey("a", "one")
    book.upsert(vmi("b", "two", "10.0.0.2"))  # a newer VMI claims the address
    assert book.lookup("10.0.0.2") == VmKey("b", "two")
    book.delete(vmi("a", "one"))
    assert book.lookup("10.0.0.2") == VmKey("b", "two")  # not taken back by the old owner's delete
    assert len(book) == 1


def test_replace_prunes_only_its_namespace() -> None:
    book = AddressBook()
    book.upsert(vmi("a", "one", "10.0.0.1"))
    book.upsert(vmi("b", "two", "10.0.0.2"))
    book.replace([vmi("a", "three", "10.0.0.3")], namespace="a")
    assert book.lookup("10.0.0.1") is None
    assert book.lookup("10.0.0.2") == VmKey("b", "two")
    book.replace([], namespace=None)
    assert len(book) == 0 and book.lookup("10.0.0.3") is None


def test_malformed_objects_are_ignored_and_addresses_bounded() -> None:
    book = AddressBook()
    no_addresses = {"metadata": {"namespace": "a", "name": "n"}, "status": {"interfaces": ["x", {"ipAddresses": 5}]}}
    for raw in ({}, {"metadata": "x"}, {"metadata": {"name": "n"}}, no_addresses):
        book.upsert(raw)
    assert len(book) == 0
    many = [f"10.1.0.{i}" for i in range(40)]
    book.upsert(vmi("a", "many", *many))
    assert sum(book.lookup(a) is not None for a in many) == MAX_ADDRESSES_PER_VMI
