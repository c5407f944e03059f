"""Churn that changes nothing exported re-renders nothing: cached gzip members stay as they are.

A guestosinfo answer or a guest report arrives every few minutes per VM. What only moves inside
them (used bytes, the answer's time, a little free space) must not make a scrape recompress.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exporter import resources
from exporter.render.families import FAMILIES
from exporter.render.store import MetricsStore
from exporter.state.fleet import Fleet
from exporter.state.guest_report import parse_guest_report
from exporter.state.records import VmKey, VmState
from tests.conftest import load_json

NOW = 1_760_000_000.0
KEY = VmKey("default", "win2019")
TIMESTAMP_FAMILY = "kubevirt_vss_guest_report_timestamp_seconds"
C_TOTAL = 136_365_211_648  # C: in guest_reports/healthy.json
STEP = C_TOTAL // 1024  # 130 MiB


class Wired:
    """The exporter's data path: fleet → store, counting every state the fleet hands on."""

    def __init__(self) -> None:
        self.store = MetricsStore()
        self.published: list[VmState | None] = []
        self.fleet = Fleet(on_state=self._publish)
        vmi = load_json("kubevirt/vmi-windows-agentconnected.json")
        self.uid = vmi["metadata"]["uid"]
        self.fleet.upsert(resources.VMIS.name, vmi, NOW)

    def _publish(self, key: VmKey, state: VmState | None) -> None:
        self.published.append(state)
        self.store.put(key, state)

    def gzip_members(self) -> list[bytes]:
        return self.store.pieces(openmetrics=False, compress=True)


def guest_info(used_c_bytes: int) -> dict[str, Any]:
    answer = copy.deepcopy(load_json("kubevirt/guestosinfo-windows.json"))
    answer["fsInfo"]["disks"][1]["usedBytes"] = used_c_bytes
    return answer


def report(free_c_bytes: int) -> dict[str, Any]:
    document = copy.deepcopy(load_json("guest_reports/healthy.json"))
    document["volumes"][0]["freeBytes"] = free_c_bytes
    return document


def test_a_guestosinfo_answer_that_changes_nothing_exported_keeps_every_cached_member() -> None:
    wired = Wired()
    wired.fleet.apply_guest_info(KEY, wired.uid, guest_info(15_238_594_560), NOW)
    before, published, generation = wired.gzip_members(), len(wired.published), wired.store.generation

    # Later, with more bytes used on C: (guestosinfo's usedBytes is not exported).
    wired.fleet.apply_guest_info(KEY, wired.uid, guest_info(15_300_000_000), NOW + 300)

    assert len(wired.published) == published  # not even judged into a new state
    assert wired.store.generation == generation
    after = wired.gzip_members()
    assert len(after) == len(before)
    assert all(a is b for a, b in zip(after, before, strict=True))  # the very same cached members


def test_a_guest_report_changes_only_the_report_timestamp_block_while_free_space_moves_a_little() -> None:
    wired = Wired()
    received = NOW
    free = 600 * STEP + STEP // 2
    wired.fleet.apply_guest_report(KEY, parse_guest_report(report(free), received_at=received), received)
    before = wired.gzip_members()

    # Five minutes later, 20 MiB less free on a 127 GiB C: — within the same 1/1024 of the volume.
    received = NOW + 300
    document = report(free - 20 * 1024 * 1024)
    wired.fleet.apply_guest_report(KEY, parse_guest_report(document, received_at=received), received)
    after = wired.gzip_members()

    changed = [i for i, (a, b) in enumerate(zip(after, before, strict=True)) if a is not b]
    timestamp_family = [f.name for f in FAMILIES].index(TIMESTAMP_FAMILY)
    assert changed == [_member_index(wired.store, timestamp_family, wired.gzip_members())]
    assert wired.published[-1] is not None
    assert wired.published[-1].guest_report_timestamp == received


def test_free_space_that_moves_past_a_step_is_exported() -> None:
    wired = Wired()
    wired.fleet.apply_guest_report(KEY, parse_guest_report(report(80 * 1024**3), received_at=NOW), NOW)
    document = report(70 * 1024**3)
    wired.fleet.apply_guest_report(KEY, parse_guest_report(document, received_at=NOW + 300), NOW + 300)
    state = wired.published[-1]
    assert state is not None
    (c_drive,) = [v for v in state.volume_free_space if v.mount_point == "C:\\"]
    assert 70 * 1024**3 - STEP < c_drive.free_bytes <= 70 * 1024**3
    assert c_drive.free_bytes % STEP == 0


def _member_index(store: MetricsStore, family_index: int, members: list[bytes]) -> int:
    """Where the one non-empty block of ``family_index`` sits in the scrape's list of members (one VM)."""
    plain = store.pieces(openmetrics=False, compress=False)
    position = 0
    for family in range(len(FAMILIES)):
        header = plain[position]
        assert header.startswith(b"# HELP")
        position += 1
        while position < len(plain) and not plain[position].startswith(b"# HELP"):
            if family == family_index:
                return position
            position += 1
    pytest.fail(f"family {family_index} has no lines")
