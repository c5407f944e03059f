"""The simulated fleet and its story: seeded VMs, a snapshot schedule and the controller's reactions.

Everything happens through timed actions on the simulated clock. Each action runs at its scheduled
time and stamps objects with that time, so one seed and one start time always give the same objects
and resourceVersions, however fast or unevenly real time passes (reference/kubevirt.md §3.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import itertools
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from exporter.simulator import messages
from exporter.simulator.clock import SimClock
from exporter.simulator.guests import GUEST_OSES, Volume, guest_agent_info
from exporter.simulator.history import ObjectStore
from exporter.simulator.objects import (
    EventState,
    SnapshotState,
    VmIdentity,
    launcher_log_line,
    launcher_pod,
    snapshot_object,
    vm_object,
    vmi_object,
    vmi_spec,
    warning_event,
)
from exporter.simulator.scenarios import SCENARIOS, Scenario, loopback_ip
from exporter.simulator.versions import KubeVirtVersion

RETRY_SECONDS = 5.0  # the snapshot controller requeues a failed freeze after 5 s
HOLD_SECONDS = 12.0  # volume snapshots slower than the 10 s VSS hold limit
EVENT_SWEEP_SECONDS = 60.0
VMS_PER_NAMESPACE = 100
_POD_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_HOST_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause cyclic garbage collection while building, then freeze what was built.

    The fleet is hundreds of thousands of long-lived, acyclic dicts: collection passes over them find
    nothing and, at 50k VMs, cost more than building them.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.freeze()


@dataclass(frozen=True, slots=True)
class GuestTarget:
    """A running Windows VM with a connected agent that sends guest reports from ``ip``."""

    namespace: str
    name: str
    ip: str
    profile: str


@dataclass(slots=True)
class _Run:
    snap: SnapshotState
    index: int
    marks: list[str] = field(default_factory=list)
    attempts: int = 0
    volumes_at: float | None = None


@dataclass(slots=True)
class _Actor:
    vm: VmIdentity
    scenario: Scenario
    replica: int
    base: float | None
    frozen: bool
    spec: dict[str, Any]
    next_index: int = 1
    run: _Run | None = None
    kept: deque[str] = field(default_factory=deque)
    events: dict[str, EventState] = field(default_factory=dict)


class Fleet:
    """Builds the fleet into a store and plays its story up to any simulated time."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        seed: int,
        start: float,
        version: KubeVirtVersion,
        vms: int | None = None,
        snapshot_interval: float = 180.0,
        keep_snapshots: int = 3,
        failure_deadline: float = 300.0,
        event_ttl: float = 3600.0,
    ) -> None:
        self._store = store
        self._rng = random.Random(seed)
        self._start = start
        self._version = version
        self._count = len(SCENARIOS) if vms is None else vms
        self._named = vms is None
        self._interval = snapshot_interval
        self._keep = keep_snapshots
        self._deadline = failure_deadline
        self._event_ttl = event_ttl
        self._actors: dict[tuple[str, str], _Actor] = {}
        self._queue: list[tuple[float, int, Callable[[float], None]]] = []
        self._order = itertools.count()
        self._log = structlog.get_logger().bind(component="simulator")

    # --- building -----------------------------------------------------------------------------

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _volumes(self, scenario: Scenario, *, windows: bool, profile: str | None) -> tuple[Volume, ...]:
        rng = self._rng
        gib = 1 << 30
        if windows:
            total = 64 * gib
            used = int(total * (0.97 if profile == "low_disk" else rng.uniform(0.25, 0.6)))
            vols = [
                Volume(f"\\\\?\\Volume{{{self._uid()}}}\\", "System Reserved", "NTFS", 0, 0, "sata"),
                Volume(f"\\\\?\\Volume{{{self._uid()}}}\\", "C:\\", "NTFS", used, total, "sata"),
            ]
            if scenario.data_volume:
                vols.append(Volume(f"\\\\?\\Volume{{{self._uid()}}}\\", "E:\\", "NTFS",
                                   int(200 * gib * rng.uniform(0.3, 0.8)), 200 * gib, "sata"))
            return tuple(vols)
        total = 40 * gib
        used = int(total * rng.uniform(0.2, 0.6))
        if scenario.guest == "opensuse":
            return (Volume("vda3", "/", "btrfs", used, total, "virtio"),
                    Volume("vda3", "/.snapshots", "btrfs", used, total, "virtio"))
        if scenario.guest == "rhel":
            return (Volume("dm-0", "/", "xfs", used, total, "virtio"),
                    Volume("vda2", "/boot", "xfs", 300 << 20, 1 << 30, "virtio"))
        return (Volume("vda1", "/", "ext4" if scenario.guest == "ubuntu" else "btrfs", used, total, "virtio"),)

    def _identity(self, index: int, scenario: Scenario) -> VmIdentity:
        rng = self._rng
        if self._named:
            namespace, name = scenario.namespace, scenario.name
        else:
            namespace, name = f"sim-{index // VMS_PER_NAMESPACE}", f"{scenario.name}-{index:05d}"
        guest = GUEST_OSES[scenario.guest]
        nodes = max(3, self._count // 100)
        return VmIdentity(
            namespace=namespace,
            name=name,
            scenario=scenario.key,
            vm_uid=self._uid(),
            vmi_uid=self._uid(),
            pod_uid=self._uid(),
            pod_suffix="".join(rng.choice(_POD_SUFFIX_ALPHABET) for _ in range(5)),
            ip=loopback_ip(index),
            mac="02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5)),
            node=f"sim-node-{1 + index % nodes:02d}",
            guest=guest,
            hostname=("WIN-" + "".join(rng.choice(_HOST_ALPHABET) for _ in range(11))) if guest.windows else name,
            agent=scenario.agent,
            power=scenario.power,
            volumes=self._volumes(scenario, windows=guest.windows, profile=scenario.profile),
            created=self._start - rng.uniform(2, 60) * 86400,
            profile=scenario.profile,
        )

    def _first_snapshot(self, index: int, scenario: Scenario) -> float | None:
        if scenario.first_snapshot is None:
            return None
        if index < len(SCENARIOS):
            return self._start + scenario.first_snapshot
        return self._start + self._rng.uniform(10.0, max(self._interval, 10.0))

    def _actors_to_build(self) -> Iterator[_Actor]:
        for index in range(self._count):
            scenario = SCENARIOS[index % len(SCENARIOS)]
            vm = self._identity(index, scenario)
            yield _Actor(
                vm=vm,
                spec=vmi_spec(vm),
                scenario=scenario,
                replica=index // len(SCENARIOS),
                base=self._first_snapshot(index, scenario),
                frozen=scenario.stuck_frozen,
            )

    def build(self) -> None:
        """Load every VM, VMI, launcher pod and earlier snapshot into the store and schedule the story."""
        with _no_cyclic_gc():
            self._build()

    def _build(self) -> None:
        vms: list[dict[str, Any]] = []
        vmis: list[dict[str, Any]] = []
        pods: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []
        version = self._version
        for actor in self._actors_to_build():
            vm = actor.vm
            self._actors[(vm.namespace, vm.name)] = actor
            vms.append(vm_object(vm, version=version, snapshot_in_progress=None, spec=actor.spec))
            if vm.running:
                vmis.append(vmi_object(vm, version=version, frozen=actor.frozen, spec=actor.spec))
                pods.append(launcher_pod(vm, version=version))
                self._boot_log(actor)
            if actor.base is not None:
                snapshots.append(self._earlier_snapshot(actor))
                self._schedule(actor.base, lambda t, a=actor: self._start_snapshot(a, t))
        self._store.bulk_load("virtualmachines", vms)
        self._store.bulk_load("virtualmachineinstances", vmis)
        self._store.bulk_load("pods", pods)
        self._store.bulk_load("virtualmachinesnapshots", snapshots)
        self._store.guest_info_source = self.guest_info
        self._schedule(self._start + EVENT_SWEEP_SECONDS, self._sweep_events)

    def _boot_log(self, actor: _Actor) -> None:
        vm = actor.vm
        boot = vm.created + 28
        self._append_log(actor, boot, launcher_log_line(
            vm, at=boot, level="info", msg="Domain defined.", pos="manager.go:1076"))
        if vm.agent != "none":
            at = boot + 60
            self._append_log(actor, at, launcher_log_line(
                vm, at=at, level="info", msg="GuestAgentLifecycle event state 1 with reason 1 received",
                pos="client.go:546", with_object=False))

    def _earlier_snapshot(self, actor: _Actor) -> dict[str, Any]:
        """The snapshot taken before the run started: failed for a VM whose freeze never worked."""
        vm = actor.vm
        created = self._start - self._rng.uniform(3600.0, 7200.0)
        snap = SnapshotState(vm.namespace, f"{vm.name}-snap-0", self._uid(), vm.name, vm.vm_uid,
                             created=created, deadline=self._deadline)
        run = _Run(snap, 0, marks=self._initial_marks(vm))
        snap.indications = self._ordered(run.marks) if vm.running else None
        if actor.scenario.failure == "command_disabled":
            texts = self._texts(actor, run, thaw=False)
            self._mark_error(run, created + 1, texts.status_message)
            self._finish_failed(run, created + self._deadline)
        else:
            if actor.scenario.behaviour == "hold_timeout" and self._version.quiesce_timeout:
                run.marks.append("QuiesceTimeout")
                snap.indications = self._ordered(run.marks)
            self._finish_succeeded(run, created + 8, volumes_at=created + 2)
        actor.kept.append(snap.name)
        return snapshot_object(snap, version=self._version)

    @property
    def size(self) -> int:
        """How many VMs the fleet has."""
        return self._count

    # --- queries ------------------------------------------------------------------------------

    def guest_info(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The guestosinfo body of a VMI with a connected agent, or None."""
        actor = self._actors.get((namespace, name))
        if actor is None or not actor.vm.agent_connected:
            return None
        vm = actor.vm
        return guest_agent_info(guest=vm.guest, hostname=vm.hostname, volumes=vm.volumes, frozen=actor.frozen,
                                vss_init_failed=vm.agent == "unsupported", login_time=vm.created + 120)

    def guest_targets(self) -> list[GuestTarget]:
        return [
            GuestTarget(a.vm.namespace, a.vm.name, a.vm.ip, a.vm.profile)
            for a in self._actors.values()
            if a.vm.guest.windows and a.vm.power == "running" and a.vm.agent_connected and a.vm.profile
        ]

    # --- the clock ----------------------------------------------------------------------------

    def _schedule(self, at: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._queue, (at, next(self._order), action))

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def advance_to(self, now: float, *, limit: int | None = None) -> int:
        """Run every action due at or before ``now`` (at most ``limit``); return how many ran."""
        ran = 0
        queue = self._queue
        while queue and queue[0][0] <= now and (limit is None or ran < limit):
            at, _, action = heapq.heappop(queue)
            try:
                action(at)
            except Exception:
                self._log.exception("story_action_failed", at=at)
            ran += 1
        return ran

    async def drive(self, clock: SimClock, *, batch: int = 500) -> None:
        """Play the story against ``clock`` until cancelled, yielding to the loop between batches."""
        while True:
            if self.advance_to(clock.now(), limit=batch) >= batch:
                await asyncio.sleep(0)
                continue
            due = self.next_due()
            wait = 1.0 if due is None else clock.real_seconds(due - clock.now())
            await asyncio.sleep(min(wait, 1.0))

    # --- the snapshot controller --------------------------------------------------------------

    def _ordered(self, marks: list[str]) -> list[str]:
        unique = list(dict.fromkeys(marks))
        return sorted(unique) if self._version.sorted_indications else unique

    def _initial_marks(self, vm: VmIdentity) -> list[str]:
        if not vm.running:
            return []
        if vm.power == "paused" and self._version.paused_indication:
            return ["Online", "Paused"]
        return ["Online", "GuestAgent" if vm.agent_connected else "NoGuestAgent"]

    def _put_snapshot(self, run: _Run) -> None:
        self._store.put("virtualmachinesnapshots", snapshot_object(run.snap, version=self._version))

    def _put_vm(self, actor: _Actor) -> None:
        in_progress = actor.run.snap.name if actor.run is not None else None
        self._store.put("virtualmachines", vm_object(actor.vm, version=self._version,
                                                     snapshot_in_progress=in_progress, spec=actor.spec))

    def _put_vmi(self, actor: _Actor, *, frozen: bool) -> None:
        self._store.put("virtualmachineinstances",
                        vmi_object(actor.vm, version=self._version, frozen=frozen, spec=actor.spec))

    def _append_log(self, actor: _Actor, at: float, line: str) -> None:
        self._store.append_log(actor.vm.namespace, actor.vm.pod_name, line, at=at)

    def _start_snapshot(self, actor: _Actor, t: float) -> None:
        vm = actor.vm
        index = actor.next_index
        actor.next_index += 1
        snap = SnapshotState(vm.namespace, f"{vm.name}-snap-{index}", self._uid(), vm.name, vm.vm_uid,
                             created=t, deadline=self._deadline)
        run = _Run(snap, index, marks=self._initial_marks(vm))
        snap.indications = self._ordered(run.marks) if vm.running else None
        snap.set_condition("Progressing", "True", "Source locked and operation in progress", t)
        snap.set_condition("Ready", "False", "Not ready", t)
        actor.run = run
        self._put_snapshot(run)
        self._put_vm(actor)
        actor.kept.append(snap.name)
        while len(actor.kept) > self._keep:
            self._store.delete("virtualmachinesnapshots", vm.namespace, actor.kept.popleft())
        skip_freeze = vm.power == "paused" and self._version.paused_indication
        if vm.agent_connected and not skip_freeze and not actor.frozen:
            self._schedule(t + 1, lambda at: self._attempt_freeze(actor, at))
        else:
            run.volumes_at = t + 1
            self._schedule(t + 2, lambda at: self._complete(actor, at))

    def _agent_failure(self, actor: _Actor, run: _Run) -> str | None:
        scenario = actor.scenario
        if scenario.behaviour == "transient":
            return messages.SNAPSHOT_SET_IN_PROGRESS if run.index % 2 == 1 and run.attempts == 1 else None
        if scenario.behaviour != "fail_until_deadline":
            return None
        if scenario.failure == "vss_guid":
            shape = messages.VOLUME_SHAPES[(run.index - 1 + actor.replica) % len(messages.VOLUME_SHAPES)]
            return messages.vss_add_volume(actor.vm.volumes[0].disk_name, shape)
        if scenario.failure == "linux_eacces":
            return messages.LINUX_PERMISSION_DENIED
        return messages.FREEZE_COMMAND_DISABLED

    def _texts(self, actor: _Actor, run: _Run, *, thaw: bool) -> messages.FailureTexts:
        agent_message = messages.HOLD_WRITES_TIMEOUT if thaw else self._agent_failure(actor, run)
        return messages.failure_texts(agent_message=agent_message or "", thaw=thaw, vm_name=actor.vm.name,
                                      version=self._version)

    def _mark_error(self, run: _Run, t: float, message: str) -> None:
        if self._version.error_in_status:
            run.snap.error = (t, message)
            run.snap.set_condition("Progressing", "False", "In error state", t)

    def _attempt_freeze(self, actor: _Actor, t: float) -> None:
        run = actor.run
        assert run is not None
        run.attempts += 1
        vm = actor.vm
        if self._agent_failure(actor, run) is None:
            actor.frozen = True
            run.volumes_at = t + 1
            self._append_log(actor, t, launcher_log_line(vm, at=t, level="info", msg="Freezed vmi",
                                                         pos="server.go:548"))
            if actor.scenario.behaviour == "hold_timeout":
                self._put_vmi(actor, frozen=True)
                self._schedule(t + HOLD_SECONDS, lambda at: self._thaw(actor, at))
            else:
                self._schedule(t + 2, lambda at: self._thaw(actor, at))
            return
        texts = self._texts(actor, run, thaw=False)
        self._append_log(actor, t, launcher_log_line(vm, at=t, level="error", msg="Failed to freeze vmi",
                                                     pos="server.go:542", reason=texts.launcher_reason))
        if self._version.freeze_error_event:
            self._warn(actor, t, "FreezeError", texts.event_message)
        self._mark_error(run, t, texts.status_message)
        if self._version.quiesce_failed:
            run.marks.append("QuiesceFailed")
            run.snap.indications = self._ordered(run.marks)
        self._put_snapshot(run)
        deadline_at = run.snap.created + run.snap.deadline
        if t + RETRY_SECONDS < deadline_at:
            self._schedule(t + RETRY_SECONDS, lambda at: self._attempt_freeze(actor, at))
        else:
            self._schedule(deadline_at, lambda at: self._fail(actor, at))

    def _thaw(self, actor: _Actor, t: float) -> None:
        run = actor.run
        assert run is not None
        vm = actor.vm
        actor.frozen = False
        if actor.scenario.behaviour != "hold_timeout":
            self._append_log(actor, t, launcher_log_line(vm, at=t, level="info", msg="Unfreezed vmi",
                                                         pos="server.go:575"))
            self._schedule(t + 1, lambda at: self._complete(actor, at))
            return
        texts = self._texts(actor, run, thaw=True)
        self._append_log(actor, t, launcher_log_line(vm, at=t, level="error", msg="Failed to unfreeze vmi",
                                                     pos="server.go:569", reason=texts.launcher_reason))
        self._put_vmi(actor, frozen=False)
        if self._version.quiesce_timeout:
            run.marks.append("QuiesceTimeout")
            run.snap.indications = self._ordered(run.marks)
            self._mark_error(run, t, texts.status_message)
            self._put_snapshot(run)
        self._schedule(t + RETRY_SECONDS, lambda at: self._complete(actor, at))

    def _finish_succeeded(self, run: _Run, t: float, *, volumes_at: float | None) -> None:
        snap = run.snap
        snap.phase = "Succeeded"
        snap.error = None
        snap.creation_time = volumes_at if volumes_at is not None else t - 1
        snap.set_condition("Progressing", "False", "Operation complete", t)
        snap.set_condition("Ready", "True", "Ready", t)

    def _finish_failed(self, run: _Run, t: float) -> None:
        snap = run.snap
        snap.phase = "Failed"
        snap.set_condition("Progressing", "False", "In error state" if snap.error else "Operation failed", t)
        snap.set_condition("Ready", "False", "Not ready", t)
        snap.set_condition("Failure", "True", "snapshot deadline exceeded", t)

    def _complete(self, actor: _Actor, t: float) -> None:
        run = actor.run
        assert run is not None
        self._finish_succeeded(run, t, volumes_at=run.volumes_at)
        self._end_run(actor, t)

    def _fail(self, actor: _Actor, t: float) -> None:
        run = actor.run
        assert run is not None
        self._finish_failed(run, t)
        self._end_run(actor, t)

    def _end_run(self, actor: _Actor, t: float) -> None:
        assert actor.run is not None and actor.base is not None
        self._put_snapshot(actor.run)
        actor.run = None
        self._put_vm(actor)
        slots = int((t - actor.base) // self._interval) + 1
        self._schedule(actor.base + slots * self._interval, lambda at: self._start_snapshot(actor, at))

    # --- events -------------------------------------------------------------------------------

    def _warn(self, actor: _Actor, t: float, reason: str, message: str) -> None:
        event = actor.events.get(message)
        if event is None:
            event = EventState(name=f"{actor.vm.name}.{int(t * 1e9):x}", uid=self._uid(), reason=reason,
                               message=message, first=t, last=t)
            actor.events[message] = event
        else:
            event.count += 1
            event.last = t
        self._store.put("events", warning_event(actor.vm, event))

    def _sweep_events(self, t: float) -> None:
        """Delete Events not updated for the event TTL, as the API server's TTL does."""
        for actor in self._actors.values():
            if not actor.events:
                continue
            for message, event in list(actor.events.items()):
                if event.last + self._event_ttl <= t:
                    del actor.events[message]
                    self._store.delete("events", actor.vm.namespace, event.name)
        self._schedule(t + EVENT_SWEEP_SECONDS, self._sweep_events)
