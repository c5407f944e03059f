"""Family selection: allow or deny lists of full-match patterns, chosen once for the store."""

from __future__ import annotations

import pytest

from exporter.render.families import FAMILIES
from exporter.render.selection import FamilySelection, pattern_problem, split_patterns
from exporter.render.store import MetricsStore
from exporter.state.records import VmKey, VmState, VolumeFreeSpace
from tests.render.exposition import per_vm_body

NAMES = [f.name for f in FAMILIES]
GUEST_VOLUME = ["kubevirt_vss_guest_volume_free_bytes", "kubevirt_vss_guest_volume_size_bytes"]


def test_no_lists_keep_every_family() -> None:
    assert FamilySelection().select() == FAMILIES


def test_deny_list_drops_exactly_the_matching_families() -> None:
    kept = [f.name for f in FamilySelection(deny=("kubevirt_vss_guest_volume_.*",)).select()]
    assert kept == [n for n in NAMES if n not in GUEST_VOLUME]
    assert set(GUEST_VOLUME) <= set(NAMES)


def test_allow_list_keeps_only_the_matching_families_in_declaration_order() -> None:
    selection = FamilySelection(allow=("kubevirt_vss_last_snapshot_.*", "kubevirt_vss_vm_info"))
    assert [f.name for f in selection.select()] == [
        n for n in NAMES if n.startswith("kubevirt_vss_last_snapshot_") or n == "kubevirt_vss_vm_info"
    ]


@pytest.mark.parametrize(
    ("pattern", "name", "kept"),
    [
        # Full match: a pattern naming part of a family does not select it.
        ("guest_volume", "kubevirt_vss_guest_volume_free_bytes", False),
        ("kubevirt_vss_guest_volume", "kubevirt_vss_guest_volume_free_bytes", False),
        ("kubevirt_vss_guest_volume_free_bytes", "kubevirt_vss_guest_volume_free_bytes", True),
        (".*_free_bytes", "kubevirt_vss_guest_volume_free_bytes", True),
        # Alternation is anchored as a whole, not only its first branch.
        ("a|kubevirt_vss_writers", "kubevirt_vss_writers_failed", False),
        ("a|kubevirt_vss_writers", "kubevirt_vss_writers", True),
    ],
)
def test_patterns_match_the_whole_name(pattern: str, name: str, kept: bool) -> None:
    assert FamilySelection(allow=(pattern,)).keeps(name) is kept
    assert FamilySelection(deny=(pattern,)).keeps(name) is not kept


def test_both_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        FamilySelection(allow=("a",), deny=("b",))


def test_invalid_patterns_are_refused_by_name() -> None:
    assert pattern_problem("kubevirt_vss_.*") is None
    problem = pattern_problem("kubevirt_vss_(")
    assert problem is not None and "'kubevirt_vss_('" in problem
    with pytest.raises(ValueError, match=r"kubevirt_vss_\["):
        FamilySelection(deny=("kubevirt_vss_[",))


def test_split_patterns_accepts_commas_and_repeats() -> None:
    assert split_patterns(["a, b", "c,,", "a"]) == ("a", "b", "c")
    assert split_patterns([]) == ()


def test_unmatched_patterns_are_reported() -> None:
    selection = FamilySelection(deny=("kubevirt_vss_guest_volume_.*", "kubevirt_vss_no_such_family"))
    assert selection.unmatched() == ("kubevirt_vss_no_such_family",)


def test_a_denied_family_is_never_rendered_nor_announced() -> None:
    state = VmState(
        key=VmKey("ns", "vm"),
        phase="Running",
        agent_connected=True,
        volume_free_space=(VolumeFreeSpace(volume="C:\\", mount_point="C:\\", free_bytes=1, total_bytes=2),),
    )
    full, denied = MetricsStore(), MetricsStore(FamilySelection(deny=("kubevirt_vss_guest_volume_.*",)).select())
    for store in (full, denied):
        store.put(state.key, state)
    for openmetrics in (False, True):
        everything = per_vm_body(full, openmetrics=openmetrics).decode()
        body = per_vm_body(denied, openmetrics=openmetrics).decode()
        for name in GUEST_VOLUME:
            assert name in everything
            assert name not in body
        assert 'kubevirt_vss_agent_connected{namespace="ns",name="vm"} 1.0' in body
        assert body.count("# TYPE ") == len(FAMILIES) - len(GUEST_VOLUME)
