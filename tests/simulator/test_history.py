"""The object store: resourceVersions, copies, paging, watch replay and fan-out, compaction, logs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.simulator.history import ObjectStore
from exporter.simulator.resources import Expired
from exporter.simulator.streams import StreamEnd


def vmi(name: str, namespace: str = "ns1", **status: object) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name}}, "status": dict(status)}


@pytest.fixture
def store() -> ObjectStore:
    return ObjectStore(clock=lambda: 1_800_000_000.0, seed=3, history_limit=5, stream_limit=4)


def test_upsert_sets_version_uid_and_creation_and_fills_type(store: ObjectStore) -> None:
    stored = store.upsert("virtualmachineinstances", vmi("a"))

    assert stored["apiVersion"] == "kubevirt.io/v1"
    assert stored["kind"] == "VirtualMachineInstance"
    assert stored["metadata"]["creationTimestamp"] == "2027-01-15T08:00:00Z"
    assert stored["metadata"]["uid"]
    # The namespace is created on first use, so the VMI is the second write.
    assert stored["metadata"]["resourceVersion"] == "2"
    assert store.get("namespaces", "", "ns1") is not None


def test_resource_versions_are_one_counter_across_resources(store: ObjectStore) -> None:
    store.upsert("virtualmachineinstances", vmi("a"))
    pod = store.upsert("pods", {"metadata": {"name": "p", "namespace": "ns1"}})
    again = store.upsert("virtualmachineinstances", vmi("a", phase="Running"))

    assert [pod["metadata"]["resourceVersion"], again["metadata"]["resourceVersion"]] == ["3", "4"]
    assert store.resource_version == 4


def test_update_keeps_uid_and_creation_timestamp(store: ObjectStore) -> None:
    first = store.upsert("virtualmachineinstances", vmi("a"))
    second = store.upsert("virtualmachineinstances", vmi("a", phase="Running"))

    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["creationTimestamp"] == first["metadata"]["creationTimestamp"]


def test_get_and_list_return_copies_the_caller_may_change(store: ObjectStore) -> None:
    original = vmi("a", phase="Running")
    store.upsert("virtualmachineinstances", original)
    original["status"]["phase"] = "Failed"
    got = store.get("virtualmachineinstances", "ns1", "a")
    assert got is not None
    got["status"]["phase"] = "Failed"
    store.list("virtualmachineinstances")[0]["status"]["phase"] = "Failed"

    entry = store.entry("virtualmachineinstances", "ns1", "a")
    assert entry is not None
    assert json.loads(entry.json())["status"]["phase"] == "Running"


def test_list_is_ordered_by_namespace_and_name(store: ObjectStore) -> None:
    for ns, name in [("b", "x"), ("a", "z"), ("a", "y")]:
        store.upsert("virtualmachineinstances", vmi(name, ns))

    keys = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.list("virtualmachineinstances")]
    assert keys == [("a", "y"), ("a", "z"), ("b", "x")]


def test_unknown_resource_and_missing_name_are_rejected(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="unknown resource"):
        store.upsert("deployments", vmi("a"))
    with pytest.raises(ValueError, match=r"metadata\.name"):
        store.upsert("pods", {"metadata": {}})


def test_page_walks_keys_with_limit_and_reports_remaining(store: ObjectStore) -> None:
    for name in "abcde":
        store.upsert("virtualmachineinstances", vmi(name))

    first, after, remaining = store.page("virtualmachineinstances", namespace=None, after=None, limit=2, match=None)
    second, after2, _ = store.page("virtualmachineinstances", namespace=None, after=after, limit=2, match=None)
    last, after3, _ = store.page("virtualmachineinstances", namespace=None, after=after2, limit=2, match=None)

    names = [e.obj["metadata"]["name"] for e in first + second + last]
    assert names == list("abcde")
    assert remaining == 3
    assert after3 is None


_NAMES = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
_CHANGES = st.lists(
    st.tuples(st.sampled_from(["create", "update", "delete"]), st.sampled_from(["ns1", "ns2", "ns3"]), _NAMES),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    initial=st.sets(st.tuples(st.sampled_from(["ns1", "ns2", "ns3"]), _NAMES), min_size=1, max_size=30),
    limit=st.integers(min_value=1, max_value=7),
    between_pages=st.lists(_CHANGES, max_size=12),
)
def test_a_paged_list_under_concurrent_writes_returns_every_object_once_in_key_order(
    initial: set[tuple[str, str]], limit: int, between_pages: list[list[tuple[str, str, str]]]
) -> None:
    # Objects created or deleted while a list is paged may or may not appear (continue walks the key
    # order, as the API promises), but every object present throughout appears exactly once.
    store = ObjectStore(clock=lambda: 1_800_000_000.0, seed=1, history_limit=10_000)
    for namespace, name in initial:
        store.upsert("virtualmachineinstances", vmi(name, namespace))
    untouched = set(initial)
    seen: list[tuple[str, str]] = []
    after = None
    for page_number in range(len(initial) + 100):
        entries, after, _ = store.page("virtualmachineinstances", namespace=None, after=after, limit=limit, match=None)
        seen += [(e.obj["metadata"]["namespace"], e.obj["metadata"]["name"]) for e in entries]
        if after is None:
            break
        for action, namespace, name in between_pages[page_number] if page_number < len(between_pages) else ():
            if action == "delete":
                store.delete("virtualmachineinstances", namespace, name)
                untouched.discard((namespace, name))
            else:
                store.upsert("virtualmachineinstances", vmi(name, namespace, phase=action))

    assert after is None
    assert seen == sorted(set(seen))
    assert untouched <= set(seen)
    listed = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.list("virtualmachineinstances")]
    assert listed == sorted(listed)


def test_keys_stay_ordered_through_creates_before_and_after_the_last_and_deletes(store: ObjectStore) -> None:
    for namespace, name in [("ns2", "m"), ("ns1", "z"), ("ns3", "a"), ("ns1", "a"), ("ns2", "b")]:
        store.upsert("virtualmachineinstances", vmi(name, namespace))
    store.delete("virtualmachineinstances", "ns2", "m")
    store.delete("virtualmachineinstances", "ns2", "absent")
    store.upsert("virtualmachineinstances", vmi("c", "ns2"))

    listed = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.list("virtualmachineinstances")]

    assert listed == [("ns1", "a"), ("ns1", "z"), ("ns2", "b"), ("ns2", "c"), ("ns3", "a")]


def test_page_limits_to_a_namespace_and_a_predicate(store: ObjectStore) -> None:
    store.upsert("virtualmachineinstances", vmi("a", "ns1"))
    store.upsert("virtualmachineinstances", vmi("b", "ns1"))
    store.upsert("virtualmachineinstances", vmi("a", "ns10"))
    store.upsert("virtualmachineinstances", vmi("c", "ns2"))

    in_ns1, _, _ = store.page("virtualmachineinstances", namespace="ns1", after=None, limit=None, match=None)
    only_b, _, _ = store.page(
        "virtualmachineinstances", namespace=None, after=None, limit=None,
        match=lambda o: o["metadata"]["name"] == "b",
    )

    assert [(e.obj["metadata"]["namespace"], e.obj["metadata"]["name"]) for e in in_ns1] == [("ns1", "a"), ("ns1", "b")]
    assert [e.obj["metadata"]["name"] for e in only_b] == ["b"]


async def test_watch_from_version_replays_changes_in_order(store: ObjectStore) -> None:
    store.upsert("virtualmachineinstances", vmi("a"))
    since = store.resource_version
    store.upsert("virtualmachineinstances", vmi("a", phase="Running"))
    store.upsert("virtualmachineinstances", vmi("b"))
    store.delete("virtualmachineinstances", "ns1", "a")

    watcher, backlog = store.watch("virtualmachineinstances", namespace=None, since=since, match=None)
    store.upsert("virtualmachineinstances", vmi("c"))

    assert [(t, e.obj["metadata"]["name"]) for t, e in backlog] == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    assert [(t, e.obj["metadata"]["name"]) for t, e in watcher.drain()] == [("ADDED", "c")]
    deleted = backlog[2][1].obj
    assert int(deleted["metadata"]["resourceVersion"]) == since + 3
    store.release(watcher)


async def test_watch_from_zero_sends_current_state_as_added(store: ObjectStore) -> None:
    store.upsert("virtualmachineinstances", vmi("a"))
    store.upsert("virtualmachineinstances", vmi("a", phase="Running"))

    watcher, backlog = store.watch("virtualmachineinstances", namespace=None, since=None, match=None)

    assert [(t, e.obj["status"].get("phase")) for t, e in backlog] == [("ADDED", "Running")]
    store.release(watcher)


async def test_watch_with_selector_turns_leaving_into_deleted_and_joining_into_added(store: ObjectStore) -> None:
    store.upsert("virtualmachineinstances", vmi("a", phase="Pending"))
    watcher, _ = store.watch(
        "virtualmachineinstances", namespace="ns1", since=None, match=lambda o: o["status"].get("phase") == "Running"
    )
    store.upsert("virtualmachineinstances", vmi("a", phase="Running"))
    store.upsert("virtualmachineinstances", vmi("a", phase="Running", nodeName="n1"))
    store.upsert("virtualmachineinstances", vmi("a", phase="Failed"))
    store.upsert("virtualmachineinstances", vmi("other", "ns2", phase="Running"))

    assert [t for t, _ in watcher.drain()] == ["ADDED", "MODIFIED", "DELETED"]
    store.release(watcher)


def test_history_beyond_the_limit_is_expired(store: ObjectStore) -> None:
    store.upsert("virtualmachineinstances", vmi("a"))
    old = store.resource_version
    for phase in ("A", "B", "C", "D", "E", "F"):
        store.upsert("virtualmachineinstances", vmi("a", phase=phase))

    with pytest.raises(Expired, match=rf"too old resource version: {old} \(\d+\)"):
        store.watch("virtualmachineinstances", namespace=None, since=old, match=None)
    recent = store.resource_version - 2
    watcher, backlog = store.watch("virtualmachineinstances", namespace=None, since=recent, match=None)
    assert len(backlog) == 2
    store.release(watcher)


def test_compact_expires_every_older_version_but_not_the_current(store: ObjectStore) -> None:
    store.upsert("virtualmachineinstances", vmi("a"))
    before = store.resource_version - 1
    store.compact()

    with pytest.raises(Expired):
        store.check_not_expired("virtualmachineinstances", before)
    store.check_not_expired("virtualmachineinstances", store.resource_version)


async def test_slow_watcher_is_ended_as_overflow_instead_of_growing(store: ObjectStore) -> None:
    watcher, _ = store.watch("pods", namespace=None, since=None, match=None)
    for i in range(10):
        store.upsert("pods", {"metadata": {"name": f"p{i}", "namespace": "ns1"}})

    assert watcher.end is StreamEnd.OVERFLOW
    assert len(watcher.drain()) == 4
    store.release(watcher)


async def test_end_streams_finishes_watchers_and_log_followers(store: ObjectStore) -> None:
    watcher, _ = store.watch("pods", namespace=None, since=None, match=None)
    follower = store.follow_log("ns1", "p")

    store.end_streams(StreamEnd.EXPIRED, watches_only=True)
    assert (watcher.end, follower.end) == (StreamEnd.EXPIRED, None)
    store.end_streams(StreamEnd.DROPPED)
    assert (watcher.end, follower.end) == (StreamEnd.EXPIRED, StreamEnd.DROPPED)
    store.release(watcher)
    store.release(follower)
    assert store.streams() == []


async def test_logs_are_kept_and_followed_and_end_with_the_pod(store: ObjectStore) -> None:
    store.upsert("pods", {"metadata": {"name": "p", "namespace": "ns1"}})
    store.append_log("ns1", "p", "one", at=10.0)
    follower = store.follow_log("ns1", "p")
    store.append_log("ns1", "p", "two", at=11.0)
    store.delete("pods", "ns1", "p")

    assert store.log_lines("ns1", "p") == [(10.0, "one"), (11.0, "two")]
    assert follower.drain() == [(11.0, "two")]
    assert follower.end is StreamEnd.CLOSED


def test_guest_info_prefers_what_was_set_over_the_source(store: ObjectStore) -> None:
    store.guest_info_source = lambda ns, name: {"hostname": name}
    store.set_guest_info("ns1", "gone", None)

    assert store.guest_info("ns1", "a") == {"hostname": "a"}
    assert store.guest_info("ns1", "gone") is None
    store.set_guest_info("ns1", "a", {"hostname": "set"})
    assert store.guest_info("ns1", "a") == {"hostname": "set"}


def test_serving_under_another_api_version_changes_only_api_version(store: ObjectStore) -> None:
    store.upsert("virtualmachinesnapshots", {"metadata": {"name": "s", "namespace": "ns1"}, "spec": {}})
    entry = store.entry("virtualmachinesnapshots", "ns1", "s")
    assert entry is not None

    beta, alpha = json.loads(entry.json()), json.loads(entry.json("snapshot.kubevirt.io/v1alpha1"))
    assert beta["apiVersion"] == "snapshot.kubevirt.io/v1beta1"
    assert alpha == {**beta, "apiVersion": "snapshot.kubevirt.io/v1alpha1"}


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_revision_stays_readable_however_many_writes_follow_until_compaction() -> None:
    # kube-apiserver compacts etcd on a timer, not by change count: a long list under heavy writes completes.
    store = ObjectStore(clock=lambda: 1_800_000_000.0, history_limit=5, compaction_interval=300.0,
                        monotonic=FakeMonotonic())
    store.upsert("virtualmachineinstances", vmi("a"))
    listed_at = store.resource_version
    for phase in range(50):  # ten times the watch history
        store.upsert("virtualmachineinstances", vmi("a", phase=str(phase)))

    store.check_readable(listed_at)
    with pytest.raises(Expired):  # watches still resume only within the bounded history
        store.check_not_expired("virtualmachineinstances", listed_at)


def test_compaction_forgets_the_revision_recorded_one_interval_earlier() -> None:
    clock = FakeMonotonic()
    store = ObjectStore(clock=lambda: 1_800_000_000.0, compaction_interval=300.0, monotonic=clock)
    store.upsert("virtualmachineinstances", vmi("a"))
    first = store.resource_version
    clock.now = 299.0
    store.upsert("virtualmachineinstances", vmi("a", phase="Running"))
    clock.now = 300.0  # the first compaction only records the current revision (none at bootstrap)
    store.check_readable(first)
    recorded = store.resource_version
    store.upsert("virtualmachineinstances", vmi("a", phase="Failed"))
    newer = store.resource_version
    clock.now = 599.0
    store.check_readable(first)
    clock.now = 600.0  # the second compacts up to what the first recorded

    with pytest.raises(Expired, match=rf"too old resource version: {first} \({recorded}\)"):
        store.check_readable(first)
    store.check_readable(recorded)
    store.check_readable(newer)
    clock.now = 900.0
    store.upsert("virtualmachineinstances", vmi("b"))  # a write sees the due compaction first
    with pytest.raises(Expired):
        store.check_readable(recorded)
    store.check_readable(newer)  # what the second recorded, the third keeps


def test_compactions_missed_while_idle_compact_up_to_the_current_revision() -> None:
    clock = FakeMonotonic()
    store = ObjectStore(clock=lambda: 1_800_000_000.0, compaction_interval=300.0, monotonic=clock)
    store.upsert("virtualmachineinstances", vmi("a"))
    before = store.resource_version - 1
    clock.now = 1000.0  # three compactions fell due with no write between them
    store.check_readable(store.resource_version)
    with pytest.raises(Expired):
        store.check_readable(before)


def test_without_a_compaction_interval_only_compact_expires_a_revision() -> None:
    clock = FakeMonotonic()
    store = ObjectStore(clock=lambda: 1_800_000_000.0, monotonic=clock)
    store.upsert("virtualmachineinstances", vmi("a"))
    old = store.resource_version
    store.upsert("virtualmachineinstances", vmi("a", phase="Running"))
    clock.now = 1e9
    store.check_readable(old)
    store.compact()
    with pytest.raises(Expired):
        store.check_readable(old)
    store.check_readable(store.resource_version)
