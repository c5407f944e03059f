"""The object index: which VM an object belongs to, and which resourceVersion was applied."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.state.object_index import ObjectIndex, compact_version, object_id, resource_version
from exporter.state.records import VmKey

VM = VmKey("ns", "vm")


def raw(name: str = "snap", version: str | None = "1") -> dict[str, Any]:
    metadata: dict[str, Any] = {"namespace": "ns", "name": name}
    if version is not None:
        metadata["resourceVersion"] = version
    return {"metadata": metadata}


def test_a_version_is_applied_once() -> None:
    index = ObjectIndex(["snapshots"])
    assert not index.already_applied("snapshots", raw(version="1"))
    assert index.already_applied("snapshots", raw(version="1"))
    assert not index.already_applied("snapshots", raw(version="2"))
    assert not index.already_applied("snapshots", raw(version=None))  # no version: always applied
    assert not index.already_applied("snapshots", raw(version=None))


def test_remove_forgets_the_owner_and_the_version() -> None:
    index = ObjectIndex(["snapshots"])
    index.already_applied("snapshots", raw())
    index.remember("snapshots", ("ns", "snap"), VM)
    assert index.vm_of("snapshots", ("ns", "snap")) == VM
    assert index.remove("snapshots", ("ns", "snap")) == VM
    assert index.remove("snapshots", ("ns", "snap")) is None
    assert not index.already_applied("snapshots", raw())


def test_remove_missing_returns_what_a_full_list_no_longer_holds() -> None:
    index = ObjectIndex(["snapshots"])
    for name in ("kept", "gone"):
        index.already_applied("snapshots", raw(name))
        index.remember("snapshots", ("ns", name), VM)
    assert index.remove_missing("snapshots", {("ns", "kept")}) == [(("ns", "gone"), VM)]
    assert index.vm_of("snapshots", ("ns", "kept")) == VM
    assert not index.already_applied("snapshots", raw("gone"))
    assert index.already_applied("snapshots", raw("kept"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"metadata": {"namespace": "ns", "name": "a"}}, ("ns", "a")),
        ({"metadata": {"namespace": "", "name": "a"}}, None),
        ({"metadata": {"name": "a"}}, None),
        ({"metadata": "x"}, None),
        ([], None),
    ],
)
def test_object_id(value: Any, expected: tuple[str, str] | None) -> None:
    assert object_id(value) == expected


def test_resource_version() -> None:
    assert resource_version(raw(version="7")) == "7"
    assert resource_version({"metadata": {"resourceVersion": 7}}) is None
    assert resource_version(None) is None


def test_a_decimal_version_is_kept_as_a_number_and_others_as_text() -> None:
    index = ObjectIndex(["snapshots"])
    assert not index.already_applied("snapshots", raw(version="12345"))
    assert index.already_applied("snapshots", raw(version="12345"))
    assert not index.already_applied("snapshots", raw(version="012345"))  # not the same text: applied
    assert not index.already_applied("snapshots", raw(version="12345"))
    assert compact_version("12345") == 12345
    assert [compact_version(t) for t in ("0", "007", "1e3", "١٢", "12a")] == [0, "007", "1e3", "١٢", "12a"]


def test_an_object_of_another_shard_keeps_its_version_but_no_vm() -> None:
    index = ObjectIndex(["snapshots"])
    assert not index.already_applied("snapshots", raw("elsewhere"))
    assert index.vm_of("snapshots", ("ns", "elsewhere")) is None
    assert index.remove_missing("snapshots", set()) == []  # forgotten, but no VM to re-judge
    assert not index.already_applied("snapshots", raw("elsewhere"))
