"""Every per-VM metric family, declared once: name, type, help and a pure "VmState → samples".

Identity labels (namespace, name) are prepended by the renderer, so each family states only
its own labels. Adding a metric means adding one spec here and one golden case in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from exporter.render.text import FamilyHeader, format_labels
from exporter.state.records import VmState

PREFIX = "kubevirt_vss_"
IDENTITY = ("namespace", "name")

Sample = tuple[tuple[str, ...], float]
SampleFn = Callable[[VmState], Iterable[Sample]]


@dataclass(frozen=True, slots=True)
class FamilySpec:
    name: str
    kind: str
    help: str
    labels: tuple[str, ...]
    samples: SampleFn

    @property
    def header(self) -> FamilyHeader:
        return FamilyHeader(self.name, self.kind, self.help)


def _flag(value: bool | None) -> Iterable[Sample]:
    if value is not None:
        yield (), 1.0 if value else 0.0


def _number(value: float | int | None) -> Iterable[Sample]:
    if value is not None:
        yield (), float(value)


def _info(state: VmState) -> Iterable[Sample]:
    yield (state.node, state.phase, state.guest_os, state.guest_os_version, state.agent_version), 1.0


def _volumes(state: VmState) -> Iterable[Sample]:
    for filesystem in state.filesystems:
        yield (filesystem.disk_name, filesystem.mount_point, filesystem.filesystem), 1.0


def _failed_writers(state: VmState) -> Iterable[Sample]:
    for writer in state.failed_writers:
        yield (writer.name, str(writer.state), writer.last_error), 1.0


def _guest_free(state: VmState) -> Iterable[Sample]:
    for volume in state.volume_free_space:
        yield (volume.volume, volume.mount_point), float(volume.free_bytes)


def _guest_size(state: VmState) -> Iterable[Sample]:
    for volume in state.volume_free_space:
        yield (volume.volume, volume.mount_point), float(volume.total_bytes)


def _checks(state: VmState) -> Iterable[Sample]:
    for check, ok in state.checks:
        yield (check,), 1.0 if ok else 0.0


def _last_snapshot_info(state: VmState) -> Iterable[Sample]:
    last = state.last_snapshot
    if last is not None:
        yield (last.snapshot, last.phase, last.consistency, last.indications, last.reason), 1.0


def _failed_volumes(state: VmState) -> Iterable[Sample]:
    last = state.last_snapshot
    if last is not None:
        for volume, reason in last.failed_volumes:
            yield (volume, reason), 1.0


def _freeze_errors(state: VmState) -> Iterable[Sample]:
    for reason, cause, count in state.freeze_error_counts:
        yield (reason, cause), float(count)


def _last_error_by_reason(state: VmState) -> Iterable[Sample]:
    for reason, timestamp in state.last_freeze_error_by_reason:
        yield (reason,), timestamp


def _last_error_info(state: VmState) -> Iterable[Sample]:
    error = state.last_freeze_error
    if error is not None:
        labels = (
            error.reason,
            error.cause,
            error.hresult,
            error.hresult_name,
            error.volume,
            error.mount_point,
            error.source,
        )
        yield labels, 1.0


def _storage_failures(state: VmState) -> Iterable[Sample]:
    for reason, count in state.storage_failure_counts:
        yield (reason,), float(count)


def _gauge(name: str, help_text: str, fn: SampleFn, labels: tuple[str, ...] = ()) -> FamilySpec:
    return FamilySpec(PREFIX + name, "gauge", help_text, labels, fn)


FAMILIES: tuple[FamilySpec, ...] = (
    _gauge(
        "vm_info",
        "VM identity and placement; node, OS and agent version live only here.",
        _info,
        ("node", "phase", "guest_os", "guest_os_version", "agent_version"),
    ),
    _gauge(
        "agent_connected",
        "1 when the Running VMI has the AgentConnected condition.",
        lambda s: _flag(s.agent_connected),
    ),
    _gauge(
        "agent_supported",
        "0 while the VMI has the AgentVersionNotSupported condition.",
        lambda s: _flag(s.agent_supported),
    ),
    _gauge(
        "fsfreeze_available",
        "1 when guestosinfo lists guest-fsfreeze-freeze as enabled (not judged while frozen).",
        lambda s: _flag(s.fsfreeze_available),
    ),
    _gauge("fs_frozen", "1 while the VMI reports its guest filesystems frozen.", lambda s: _flag(s.fs_frozen)),
    _gauge(
        "fs_frozen_since_timestamp_seconds",
        "When the filesystems were first seen frozen.",
        lambda s: _number(s.frozen_since),
    ),
    _gauge(
        "volume_info",
        "Guest volumes from guestosinfo fsInfo, mapping volume names to mount points.",
        _volumes,
        ("volume", "mount_point", "filesystem"),
    ),
    _gauge("writers", "VSS writers in the last guest report.", lambda s: _number(s.writers_total)),
    _gauge(
        "writers_failed",
        "VSS writers in a failed state (vssadmin state 6-15) in the last guest report.",
        lambda s: _number(s.writers_failed),
    ),
    _gauge(
        "writer_failed_info",
        "One series per failed VSS writer.",
        _failed_writers,
        ("writer", "state", "last_error"),
    ),
    _gauge(
        "guest_volume_free_bytes",
        "Free bytes per fixed guest volume, from the guest report, rounded down to 1/1024 of its size (min 1 MiB).",
        _guest_free,
        ("volume", "mount_point"),
    ),
    _gauge(
        "guest_volume_size_bytes",
        "Size in bytes per fixed guest volume, from the guest report.",
        _guest_size,
        ("volume", "mount_point"),
    ),
    _gauge(
        "guest_report_timestamp_seconds",
        "When the last guest report arrived.",
        lambda s: _number(s.guest_report_timestamp),
    ),
    _gauge(
        "check_ok", "Checklist results judged from outside the guest; absent without evidence.", _checks, ("check",)
    ),
    _gauge("snapshots", "VirtualMachineSnapshots that exist for the VM.", lambda s: _number(s.snapshot_count or None)),
    _gauge(
        "oldest_snapshot_timestamp_seconds",
        "Creation time of the oldest existing snapshot of the VM.",
        lambda s: _number(s.oldest_snapshot_timestamp),
    ),
    _gauge(
        "last_snapshot_consistency",
        "Consistency level of the newest finished snapshot: 0 failed, 1 crash, 2 filesystem, 3 application or offline.",
        lambda s: _number(s.last_snapshot.level if s.last_snapshot else None),
    ),
    _gauge(
        "last_snapshot_info",
        "The newest finished snapshot: its consistency class and why.",
        _last_snapshot_info,
        ("snapshot", "phase", "consistency", "indications", "reason"),
    ),
    _gauge(
        "last_snapshot_failed_volume_info",
        "Volumes of the newest finished snapshot whose storage snapshot failed, and the bounded reason of the "
        "CSI driver's error.",
        _failed_volumes,
        ("volume", "reason"),
    ),
    _gauge(
        "last_snapshot_timestamp_seconds",
        "Creation time of the newest finished snapshot.",
        lambda s: _number(s.last_snapshot.timestamp if s.last_snapshot else None),
    ),
    _gauge(
        "last_consistent_snapshot_timestamp_seconds",
        "Creation time of the newest snapshot at level 2 or above (the recovery point).",
        lambda s: _number(s.last_consistent_snapshot_timestamp),
    ),
    FamilySpec(
        PREFIX + "freeze_errors_total",
        "counter",
        "Classified freeze/thaw failure episodes.",
        ("reason", "cause"),
        _freeze_errors,
    ),
    _gauge(
        "last_freeze_error_timestamp_seconds",
        "Time of the newest freeze failure per reason, from any source.",
        _last_error_by_reason,
        ("reason",),
    ),
    _gauge(
        "last_freeze_error_info",
        "Details of the newest freeze failure of the VM.",
        _last_error_info,
        ("reason", "cause", "hresult", "hresult_name", "volume", "mount_point", "source"),
    ),
    FamilySpec(
        PREFIX + "snapshot_storage_failures_total",
        "counter",
        "Snapshots that failed in storage (errors the snapshot controller writes itself), one per snapshot and "
        "reason; never freeze failures.",
        ("reason",),
        _storage_failures,
    ),
    _gauge(
        "last_snapshot_storage_failure_timestamp_seconds",
        "When the newest snapshot storage failure of the VM was written.",
        lambda s: _number(s.last_storage_failure_timestamp),
    ),
)


def render_vm(state: VmState, families: Sequence[FamilySpec] = FAMILIES) -> tuple[bytes, ...]:
    """One VM's sample lines, one bytes object per family of ``families``, in that order."""
    # The identity labels are escaped once per VM, not once per sample.
    identity = format_labels(IDENTITY, (state.key.namespace, state.key.name))[1:-1]
    rendered: list[bytes] = []
    for family in families:
        lines = []
        for labels, value in family.samples(state):
            extra = format_labels(family.labels, labels)
            label_text = identity + ("," + extra[1:-1] if extra else "")
            lines.append(f"{family.name}{{{label_text}}} {floatToGoString(value)}\n")
        rendered.append("".join(lines).encode())
    return tuple(rendered)
