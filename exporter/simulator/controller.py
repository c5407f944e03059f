"""The snapshot controller, virt-handler and virt-launcher reacting to one VM's snapshots.

Each snapshot runs as KubeVirt runs it (reference/kubevirt.md §3.3): created InProgress, freeze
attempted, on failure the error written and retried every 5 s until the failure deadline, on success
volume snapshots taken, thawed and completed. Every step is an action scheduled on the simulated clock
and stamps objects with its scheduled time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.simulator import messages
from exporter.simulator.events import EventState, launcher_log_line, warning_event
from exporter.simulator.history import ObjectStore
from exporter.simulator.objects import VmIdentity, vm_object, vmi_object
from exporter.simulator.scenarios import Scenario
from exporter.simulator.snapshots import SnapshotState, content_object, snapshot_object
from exporter.simulator.versions import KubeVirtVersion

RETRY_SECONDS = 5.0  # the snapshot controller requeues a failed freeze after 5 s
HOLD_SECONDS = 12.0  # volume snapshots slower than the 10 s VSS hold limit

Schedule = Callable[[float, Callable[[float], None]], None]


@dataclass(slots=True)
class Run:
    """One snapshot being taken: its object state and what happened so far."""

    snap: SnapshotState
    index: int
    marks: list[str] = field(default_factory=list)
    attempts: int = 0
    volumes_at: float | None = None


@dataclass(slots=True)
class Actor:
    """One VM of the fleet and its dynamic state."""

    vm: VmIdentity
    scenario: Scenario
    replica: int
    base: float | None
    frozen: bool
    spec: dict[str, Any]
    next_index: int = 1
    run: Run | None = None
    kept: deque[str] = field(default_factory=deque)
    events: dict[str, EventState] = field(default_factory=dict)


class SnapshotController:
    """Takes snapshots of actors on their schedule and writes every object the real components write."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        version: KubeVirtVersion,
        uid: Callable[[], str],
        schedule: Schedule,
        interval: float,
        keep: int,
        deadline: float,
        event_ttl: float,
    ) -> None:
        self._store = store
        self._version = version
        self._uid = uid
        self._schedule = schedule
        self._interval = interval
        self._keep = keep
        self._deadline = deadline
        self._event_ttl = event_ttl

    def earlier_snapshot(self, actor: Actor, *, created: float) -> dict[str, Any]:
        """The snapshot taken before the run started: failed for a VM whose freeze never worked."""
        vm = actor.vm
        snap = SnapshotState(vm.namespace, f"{vm.name}-snap-0", self._uid(), vm.name, vm.vm_uid,
                             created=created, deadline=self._deadline)
        run = Run(snap, 0, marks=self._initial_marks(vm))
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

    def _ordered(self, marks: list[str]) -> list[str]:
        unique = list(dict.fromkeys(marks))
        return sorted(unique) if self._version.sorted_indications else unique

    def _initial_marks(self, vm: VmIdentity) -> list[str]:
        if not vm.running:
            return []
        if vm.power == "paused" and self._version.paused_indication:
            return ["Online", "Paused"]
        return ["Online", "GuestAgent" if vm.agent_connected else "NoGuestAgent"]

    def _put_snapshot(self, run: Run) -> None:
        self._store.put("virtualmachinesnapshots", snapshot_object(run.snap, version=self._version))

    def _put_vm(self, actor: Actor) -> None:
        in_progress = actor.run.snap.name if actor.run is not None else None
        self._store.put("virtualmachines", vm_object(actor.vm, version=self._version,
                                                     snapshot_in_progress=in_progress, spec=actor.spec))

    def _put_vmi(self, actor: Actor, *, frozen: bool) -> None:
        self._store.put("virtualmachineinstances",
                        vmi_object(actor.vm, version=self._version, frozen=frozen, spec=actor.spec))

    def _append_log(self, actor: Actor, at: float, line: str) -> None:
        self._store.append_log(actor.vm.namespace, actor.vm.pod_name, line, at=at)

    def start_snapshot(self, actor: Actor, t: float) -> None:
        """Create the actor's next VirtualMachineSnapshot at ``t`` and schedule what follows."""
        vm = actor.vm
        index = actor.next_index
        actor.next_index += 1
        snap = SnapshotState(vm.namespace, f"{vm.name}-snap-{index}", self._uid(), vm.name, vm.vm_uid,
                             created=t, deadline=self._deadline)
        run = Run(snap, index, marks=self._initial_marks(vm))
        snap.indications = self._ordered(run.marks) if vm.running else None
        snap.set_condition("Progressing", "True", "Source locked and operation in progress", t)
        snap.set_condition("Ready", "False", "Not ready", t)
        actor.run = run
        self._put_snapshot(run)
        self._put_vm(actor)
        actor.kept.append(snap.name)
        while len(actor.kept) > self._keep:
            self._delete_snapshot(vm.namespace, actor.kept.popleft())
        skip_freeze = vm.power == "paused" and self._version.paused_indication
        if vm.agent_connected and not skip_freeze and not actor.frozen:
            self._schedule(t + 1, lambda at: self._attempt_freeze(actor, at))
        else:
            run.volumes_at = t + 1
            self._schedule(t + 2, lambda at: self._complete(actor, at))

    def _delete_snapshot(self, namespace: str, name: str) -> None:
        """Delete a snapshot and its content with it (the controller's default retention)."""
        entry = self._store.entry("virtualmachinesnapshots", namespace, name)
        content = entry.obj.get("status", {}).get("virtualMachineSnapshotContentName") if entry else None
        self._store.delete("virtualmachinesnapshots", namespace, name)
        if isinstance(content, str):
            self._store.delete("virtualmachinesnapshotcontents", namespace, content)

    def _agent_failure(self, actor: Actor, run: Run) -> str | None:
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

    def _texts(self, actor: Actor, run: Run, *, thaw: bool) -> messages.FailureTexts:
        agent_message = messages.HOLD_WRITES_TIMEOUT if thaw else self._agent_failure(actor, run)
        return messages.failure_texts(agent_message=agent_message or "", thaw=thaw, vm_name=actor.vm.name,
                                      version=self._version)

    def _mark_error(self, run: Run, t: float, message: str) -> None:
        if self._version.error_in_status:
            run.snap.error = (t, message)
            run.snap.set_condition("Progressing", "False", "In error state", t)

    def _attempt_freeze(self, actor: Actor, t: float) -> None:
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

    def _thaw(self, actor: Actor, t: float) -> None:
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

    def _finish_succeeded(self, run: Run, t: float, *, volumes_at: float | None) -> None:
        snap = run.snap
        snap.phase = "Succeeded"
        snap.error = None
        snap.creation_time = volumes_at if volumes_at is not None else t - 1
        snap.set_condition("Progressing", "False", "Operation complete", t)
        snap.set_condition("Ready", "True", "Ready", t)

    def _finish_failed(self, run: Run, t: float) -> None:
        snap = run.snap
        snap.phase = "Failed"
        snap.set_condition("Progressing", "False", "In error state" if snap.error else "Operation failed", t)
        snap.set_condition("Ready", "False", "Not ready", t)
        snap.set_condition("Failure", "True", "snapshot deadline exceeded", t)

    def _complete(self, actor: Actor, t: float) -> None:
        run = actor.run
        assert run is not None
        if actor.scenario.behaviour == "storage_error":
            # The CSI driver fails the VolumeSnapshot; the controller writes its own error
            # (pkg/storage/snapshot/snapshot.go:476, v1.8.0) and the snapshot fails at its deadline.
            run.snap.error = (t, messages.volume_snapshot_error(run.snap.uid))
            run.snap.set_condition("Progressing", "False", "In error state", t)
            # The content says which volume failed (:445-455, v1.8.0).
            errors: dict[str, str | None] = {"rootdisk": messages.csi_snapshot_error()}
            self._store.put("virtualmachinesnapshotcontents", content_object(run.snap, errors, at=t))
            self._put_snapshot(run)
            self._schedule(run.snap.created + run.snap.deadline, lambda at: self._fail(actor, at))
            return
        self._finish_succeeded(run, t, volumes_at=run.volumes_at)
        self._end_run(actor, t)

    def _fail(self, actor: Actor, t: float) -> None:
        run = actor.run
        assert run is not None
        self._finish_failed(run, t)
        self._end_run(actor, t)

    def _end_run(self, actor: Actor, t: float) -> None:
        assert actor.run is not None and actor.base is not None
        self._put_snapshot(actor.run)
        actor.run = None
        self._put_vm(actor)
        slots = int((t - actor.base) // self._interval) + 1
        self._schedule(actor.base + slots * self._interval, lambda at: self.start_snapshot(actor, at))

    # --- events -------------------------------------------------------------------------------

    def _warn(self, actor: Actor, t: float, reason: str, message: str) -> None:
        event = actor.events.get(message)
        if event is None:
            event = EventState(name=f"{actor.vm.name}.{int(t * 1e9):x}", uid=self._uid(), reason=reason,
                               message=message, first=t, last=t)
            actor.events[message] = event
        else:
            event.count += 1
            event.last = t
        self._store.put("events", warning_event(actor.vm, event))

    def sweep_events(self, actors: Iterable[Actor], t: float) -> None:
        """Delete Events not updated for the event TTL, as the API server's TTL does."""
        for actor in actors:
            if not actor.events:
                continue
            for message, event in list(actor.events.items()):
                if event.last + self._event_ttl <= t:
                    del actor.events[message]
                    self._store.delete("events", actor.vm.namespace, event.name)
