"""The simulated fleet: seeded VMs loaded into the store, and the clock that plays their snapshot story.

Everything after the build happens through timed actions on the simulated clock (scheduled by the
``SnapshotController``). Each action runs at its scheduled time and stamps objects with that time, so
one seed and one start time always give the same objects and resourceVersions, however fast or
unevenly real time passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from exporter.simulator.clock import SimClock
from exporter.simulator.controller import Actor, SnapshotController
from exporter.simulator.events import launcher_log_line
from exporter.simulator.guests import GUEST_OSES, Volume, guest_agent_info
from exporter.simulator.history import ObjectStore
from exporter.simulator.objects import VmIdentity, launcher_pod, vm_object, vmi_object, vmi_spec
from exporter.simulator.resources import random_uuid
from exporter.simulator.scenarios import SCENARIOS, Scenario, loopback_ip
from exporter.simulator.versions import KubeVirtVersion

EVENT_SWEEP_SECONDS = 60.0
STUCK_FROZEN_BEFORE_START = 1500.0
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
    #: The computer name and volumes guestosinfo shows for the VM; its reports name the same ones.
    hostname: str = ""
    volumes: tuple[Volume, ...] = ()


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
        self._actors: dict[tuple[str, str], Actor] = {}
        self._queue: list[tuple[float, int, Callable[[float], None]]] = []
        self._order = itertools.count()
        self._log = structlog.get_logger().bind(component="simulator")
        self._controller = SnapshotController(
            store=store, version=version, uid=self._uid, schedule=self._schedule, interval=snapshot_interval,
            keep=keep_snapshots, deadline=failure_deadline, event_ttl=event_ttl,
        )

    # --- building -----------------------------------------------------------------------------

    def _uid(self) -> str:
        return random_uuid(self._rng)

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
            namespace = f"sim-{index // VMS_PER_NAMESPACE}"
            name = f"{scenario.name.removesuffix('-01')}-{index:05d}"
        guest = GUEST_OSES[scenario.guest]
        nodes = max(3, self._count // 100)
        return VmIdentity(
            namespace=namespace,
            name=name,
            scenario=scenario.key,
            vm_uid=self._uid(),
            vmi_uid=self._uid(),
            pod_uid=self._uid(),
            pod_suffix="".join(rng.choices(_POD_SUFFIX_ALPHABET, k=5)),
            ip=loopback_ip(index),
            mac="02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5)),
            node=f"sim-node-{1 + index % nodes:02d}",
            guest=guest,
            hostname=("WIN-" + "".join(rng.choices(_HOST_ALPHABET, k=11))) if guest.windows else name,
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

    def _actors_to_build(self) -> Iterator[Actor]:
        for index in range(self._count):
            scenario = SCENARIOS[index % len(SCENARIOS)]
            vm = self._identity(index, scenario)
            yield Actor(
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
                created = self._start - self._rng.uniform(3600.0, 7200.0)
                snapshots.append(self._controller.earlier_snapshot(actor, created=created))
                self._schedule(actor.base, lambda t, a=actor: self._controller.start_snapshot(a, t))
        self._store.bulk_load("virtualmachines", vms)
        self._store.bulk_load("virtualmachineinstances", vmis)
        self._store.bulk_load("pods", pods)
        self._store.bulk_load("virtualmachinesnapshots", snapshots)
        self._store.guest_info_source = self.guest_info
        self._schedule(self._start + EVENT_SWEEP_SECONDS, self._sweep_events)

    def _boot_log(self, actor: Actor) -> None:
        vm = actor.vm
        boot = vm.created + 28
        self._store.append_log(vm.namespace, vm.pod_name, launcher_log_line(
            vm, at=boot, level="info", msg="Domain defined.", pos="manager.go:1076"), at=boot)
        if vm.agent != "none":
            at = boot + 60
            self._store.append_log(vm.namespace, vm.pod_name, launcher_log_line(
                vm, at=at, level="info", msg="GuestAgentLifecycle event state 1 with reason 1 received",
                pos="client.go:546", with_object=False), at=at)
        if actor.frozen:
            # Stuck frozen: a backup hook froze the guest before the run started and never thawed it.
            # virt-launcher logs the freeze, the evidence of when it began that outlives a restart.
            at = self._start - STUCK_FROZEN_BEFORE_START
            self._store.append_log(vm.namespace, vm.pod_name, launcher_log_line(
                vm, at=at, level="info", msg="Freezed vmi", pos="server.go:277"), at=at)

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
            GuestTarget(a.vm.namespace, a.vm.name, a.vm.ip, a.vm.profile, a.vm.hostname, a.vm.volumes)
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

    def _sweep_events(self, t: float) -> None:
        self._controller.sweep_events(self._actors.values(), t)
        self._schedule(t + EVENT_SWEEP_SECONDS, self._sweep_events)
