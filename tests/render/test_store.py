"""The pre-rendered store: put, delete, empty families, and scrapes during a relist."""

from __future__ import annotations

import gzip
import random

from exporter.render.families import FAMILIES, render_vm
from exporter.render.store import MetricsStore
from exporter.resources import VMIS
from exporter.state.fleet import Fleet
from exporter.state.records import VmKey, VmState
from tests.render.exposition import per_vm_body


def state(name: str) -> VmState:
    return VmState(key=VmKey("ns", name), phase="Running", agent_connected=True)


def test_empty_store_prints_every_header_once() -> None:
    body = per_vm_body(MetricsStore(), openmetrics=False).decode()
    assert body.count("# TYPE ") == len(FAMILIES)
    assert "{" not in body


def test_put_replace_delete() -> None:
    store = MetricsStore()
    store.put(VmKey("ns", "a"), state("a"))
    store.put(VmKey("ns", "b"), state("b"))
    assert per_vm_body(store, openmetrics=False).count(b'name="a"') == 2
    store.put(VmKey("ns", "a"), VmState(key=VmKey("ns", "a"), phase="Stopped"))
    body = per_vm_body(store, openmetrics=False)
    assert b'kubevirt_vss_agent_connected{namespace="ns",name="a"}' not in body
    store.put(VmKey("ns", "a"), None)
    assert b'name="a"' not in per_vm_body(store, openmetrics=False)
    assert len(store) == 1


def test_blocks_are_cached_and_only_changed_ones_are_redone() -> None:
    store = MetricsStore()
    for i in range(200):
        store.put(VmKey("ns", f"vm{i}"), state(f"vm{i}"))
    first = store.pieces(openmetrics=False, compress=True)
    again = store.pieces(openmetrics=False, compress=True)
    assert all(a is b for a, b in zip(first, again, strict=True))
    store.put(VmKey("ns", "vm7"), VmState(key=VmKey("ns", "vm7"), phase="Running", agent_connected=False))
    after = store.pieces(openmetrics=False, compress=True)
    redone = [i for i, (a, b) in enumerate(zip(first, after, strict=True)) if a is not b]
    assert len(redone) == 1  # one block of the agent_connected family


def test_gzip_members_decompress_to_the_plain_body() -> None:
    import gzip

    store = MetricsStore()
    for i in range(50):
        store.put(VmKey("ns", f"vm{i}"), state(f"vm{i}"))
    plain = per_vm_body(store, openmetrics=True)
    assert gzip.decompress(b"".join(store.pieces(openmetrics=True, compress=True))) == plain


def vmi(name: str) -> dict:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": name},
        "status": {"phase": "Running", "conditions": [{"type": "AgentConnected", "status": "True"}]},
    }


def test_scrape_during_relist_never_sees_a_partial_fleet() -> None:
    """A reader between every state change of a relist sees each VM that exists before and after."""
    store = MetricsStore()
    survivors = [f"vm{i}" for i in range(50)]
    seen_partial: list[int] = []

    def on_state(key: VmKey, vm_state: VmState | None) -> None:
        store.put(key, vm_state)
        body = per_vm_body(store, openmetrics=False)
        missing = [n for n in survivors if f'name="{n}"'.encode() not in body]
        if missing:
            seen_partial.append(len(missing))

    fleet = Fleet(on_state=on_state)
    fleet.replace(VMIS.name, [vmi(n) for n in [*survivors, "doomed"]], now=1)
    seen_partial.clear()
    for _ in range(3):
        fleet.replace(VMIS.name, [vmi(n) for n in reversed(survivors)], now=2)
    assert seen_partial == []
    assert b'name="doomed"' not in per_vm_body(store, openmetrics=False)


def test_random_puts_and_deletes_keep_exactly_each_vms_current_lines() -> None:
    """Slots are reused after deletes and changed lines are patched into compressed blocks:
    the body always holds each live VM's current lines, once, in either format."""
    rng = random.Random(5)
    store = MetricsStore()
    current: dict[VmKey, VmState] = {}
    phases = ("Running", "Stopped", "Paused")
    for step in range(3000):
        key = VmKey(f"ns{rng.randrange(3)}", f"vm{rng.randrange(300)}")
        if rng.random() < 0.2:
            store.put(key, None)
            current.pop(key, None)
        else:
            value = VmState(key=key, phase=rng.choice(phases), agent_connected=rng.random() < 0.5)
            store.put(key, value)
            current[key] = value
        if step % 500 == 0:
            store.pieces(openmetrics=False, compress=rng.random() < 0.5)  # build some blocks midway
    expected = sorted(line for s in current.values() for chunk in render_vm(s, FAMILIES) for line in chunk.splitlines())
    body = per_vm_body(store, openmetrics=False)
    assert sorted(line for line in body.splitlines() if not line.startswith(b"#")) == expected
    assert gzip.decompress(b"".join(store.pieces(openmetrics=False, compress=True))) == body
    assert len(store) == len(current)


def test_changed_blocks_can_be_compressed_ahead_of_the_scrape() -> None:
    store = MetricsStore()
    for i in range(50):
        store.put(VmKey("ns", f"vm{i}"), state(f"vm{i}"))
    first = store.pieces(openmetrics=False, compress=True)
    assert store.compress_pending(10) == 0
    store.put(VmKey("ns", "vm3"), VmState(key=VmKey("ns", "vm3"), phase="Paused"))
    pending = store.compress_pending(0)
    assert pending > 0  # the families whose lines changed, in vm3's block
    assert store.compress_pending(pending) == 0
    built = store.pieces(openmetrics=False, compress=True)
    before = {id(piece) for piece in first}
    assert sum(id(piece) not in before for piece in built) <= pending  # only those were rebuilt
    assert gzip.decompress(b"".join(built)) == per_vm_body(store, openmetrics=False)


def test_a_plain_body_is_the_store_as_it_was_when_the_scrape_began() -> None:
    # Plain pieces are inflated while the response is written; changes made meanwhile are not in it.
    store = MetricsStore()
    for i in range(100):
        store.put(VmKey("ns", f"vm{i}"), state(f"vm{i}"))
    before = per_vm_body(store, openmetrics=False)
    pieces = store.plain_pieces(openmetrics=False)
    store.put(VmKey("ns", "vm3"), None)
    store.put(VmKey("ns", "new"), state("new"))
    store.put(VmKey("ns", "vm5"), VmState(key=VmKey("ns", "vm5"), phase="Stopped"))

    sent = b"".join(pieces)
    assert sent == before
    assert pieces.size == len(sent)
    assert b'name="new"' not in sent and b'name="new"' in per_vm_body(store, openmetrics=False)


def test_the_size_of_a_plain_body_is_known_before_it_is_inflated() -> None:
    store = MetricsStore()
    for i in range(300):
        store.put(VmKey("ns", f"vm{i}"), state(f"vm{i}"))
    store.pieces(openmetrics=True, compress=True)  # members built, then some changed again
    for i in range(0, 300, 7):
        store.put(VmKey("ns", f"vm{i}"), VmState(key=VmKey("ns", f"vm{i}"), phase="Stopped"))
    for openmetrics in (False, True):
        pieces = store.plain_pieces(openmetrics=openmetrics)
        assert pieces.size == len(b"".join(pieces)) == len(per_vm_body(store, openmetrics=openmetrics))
