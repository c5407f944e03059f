"""The mutable facts the fleet holds per VM, and the rules for updating them.

A record gathers what every source said about one VM — its VirtualMachine, the current VMI life,
guestosinfo, guest reports and snapshots — plus the short histories that outlive one object, so a
snapshot can be judged by what was true when it was taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.state.consistency import GuestEvidence
from exporter.state.guest_report import GuestReport, vss_could_not_run
from exporter.state.records import GuestInfo, SnapshotFacts, VmFacts, VmiFacts, VmKey
from exporter.state.shared import SharedValues
from exporter.state.snapshot_contents import ContentFacts, VolumeFailure

FSFREEZE_HISTORY = 16
GUEST_REPORT_HISTORY = 12
FROZEN_INTERVALS = 16
# Windows releases a VSS write hold after 10 s (VSS_E_HOLD_WRITES_TIMEOUT).
VSS_HOLD_LIMIT = 10.0

# A record is kept for every VM, and most never see a failed snapshot content, a freeze or a
# change of freeze availability: those start as shared empty values and are built on first use.
# Guests of one fleet mostly say the same about VSS: their reports' evidence is one shared instance.
_NO_CONTENTS: Mapping[str, ContentFacts] = MappingProxyType({})
_SHARED_EVIDENCE: SharedValues = SharedValues()


@dataclass(slots=True)
class VmRecord:
    """Mutable per-VM facts held by the fleet; judged into a VmState on every change."""

    key: VmKey
    vm: VmFacts | None = None
    vmi: VmiFacts | None = None
    guest: GuestInfo | None = None
    frozen_since: float | None = None
    # Snapshot facts by name of the VirtualMachineSnapshot (it lives in the VM's namespace).
    snapshots: dict[str, SnapshotFacts] = field(default_factory=dict)
    # Failed volumes by name of the VirtualMachineSnapshotContent (only contents with failures).
    snapshot_contents: Mapping[str, ContentFacts] = field(default_factory=lambda: _NO_CONTENTS)
    # Evidence that outlives a single object: (observed_at, freeze available?) transitions.
    fsfreeze_history: tuple[tuple[float, bool], ...] = ()
    # The newest guest report in full, and what the last few said about VSS, oldest first, so a
    # snapshot is judged by the report current at its creation time (full reports are large).
    guest_report: GuestReport | None = None
    report_evidence: tuple[tuple[float, GuestEvidence], ...] = ()
    # When the first report since the exporter started arrived: a snapshot after it had its own report.
    first_report_at: float | None = None
    # When the VMI said frozen: (first seen, thawed at or None), oldest first, for judging snapshot starts.
    frozen_intervals: tuple[tuple[float, float | None], ...] = ()

    def set_content(self, name: str, content: ContentFacts) -> None:
        """Keep the failed volumes of the VirtualMachineSnapshotContent named ``name``."""
        self.snapshot_contents = {**self.snapshot_contents, name: content}

    def drop_content(self, name: str) -> None:
        if name in self.snapshot_contents:
            remaining = {n: c for n, c in self.snapshot_contents.items() if n != name}
            self.snapshot_contents = remaining or _NO_CONTENTS

    def volume_failures(self, snapshot: str) -> tuple[VolumeFailure, ...]:
        """The failed volumes the content of the VMSnapshot named ``snapshot`` reports."""
        for content in self.snapshot_contents.values():
            if content.snapshot == snapshot:
                return content.failures
        return ()

    @property
    def exists(self) -> bool:
        return self.vm is not None or self.vmi is not None

    def set_vmi(self, vmi: VmiFacts, now: float) -> None:
        """A new or changed VMI; a new life of the VM drops what belonged to the old one."""
        if self.vmi is not None and self.vmi.uid != vmi.uid:
            self._forget_vmi_life()
        if vmi.fs_frozen and vmi.running:
            if self.frozen_since is None:
                self.frozen_since = now
                self.note_frozen(now)
        else:
            if self.frozen_since is not None:
                self.note_thawed(now)
            self.frozen_since = None
        self.vmi = vmi

    def clear_vmi(self) -> None:
        """The VMI is gone."""
        self._forget_vmi_life()
        self.vmi = None

    def _forget_vmi_life(self) -> None:
        self.note_thawed()
        self.frozen_since = None
        self.guest = None
        self.guest_report = None
        self.report_evidence = ()

    def note_frozen(self, at: float) -> None:
        self.frozen_intervals = (*self.frozen_intervals, (at, None))[-FROZEN_INTERVALS:]

    def note_thawed(self, at: float | None = None) -> None:
        """Close the open frozen interval; without a time (the VMI went away) it claims nothing."""
        if self.frozen_intervals and self.frozen_intervals[-1][1] is None:
            start = self.frozen_intervals[-1][0]
            self.frozen_intervals = (*self.frozen_intervals[:-1], (start, start if at is None else at))

    def frozen_long_before(self, moment: float) -> bool:
        """Whether the VMI had said frozen for longer than the VSS hold limit at ``moment``.

        The snapshot controller skips the freeze while the VMI says frozen; a freeze older than the
        10 s hold limit was released by Windows long before, so nothing held the writes.
        """
        return any(
            start <= moment - VSS_HOLD_LIMIT and (end is None or end >= moment) for start, end in self.frozen_intervals
        )

    def set_guest(self, info: GuestInfo) -> None:
        """A guestosinfo answer; freeze availability is recorded only while nothing is frozen."""
        self.guest = info
        if info.fsfreeze_enabled is not None and not info.fs_frozen and not (self.vmi and self.vmi.fs_frozen):
            history = self.fsfreeze_history
            if not history or history[-1][1] != info.fsfreeze_enabled:
                self.fsfreeze_history = (*history, (info.observed_at, info.fsfreeze_enabled))[-FSFREEZE_HISTORY:]

    def add_guest_report(self, report: GuestReport) -> None:
        """Keep the newest report in full and what each recent one said about VSS."""
        if self.guest_report is None or report.received_at >= self.guest_report.received_at:
            self.guest_report = report
        if self.first_report_at is None or report.received_at < self.first_report_at:
            self.first_report_at = report.received_at
        history = [*self.report_evidence, (report.received_at, report_evidence(report))]
        history.sort(key=lambda item: item[0])
        self.report_evidence = tuple(history[-GUEST_REPORT_HISTORY:])

    def evidence_at(self, moment: float, max_age: float) -> GuestEvidence | None:
        """What the guest report current at ``moment`` said: the newest one received before it, if fresh then."""
        for received_at, evidence in reversed(self.report_evidence):
            if received_at <= moment:
                return evidence if moment - received_at <= max_age else None
        return None

    def evidence_standing_in_for(self, moment: float, max_age: float) -> GuestEvidence | None:
        """The earliest report held, for a moment before every report this exporter received.

        After a restart (or when the probe was installed later) nothing received before ``moment`` is
        known; the first report after it, if it came within ``max_age``, describes the same guest
        configuration. A moment that had its own earlier report gets nothing here, even if it was trimmed.
        """
        if not self.report_evidence or self.first_report_at is None or self.first_report_at <= moment:
            return None
        received_at, evidence = self.report_evidence[0]
        return evidence if received_at - moment <= max_age else None

    def fsfreeze_unavailable_at(self, moment: float) -> bool:
        """Whether the last guestosinfo answer before ``moment`` showed the freeze command disabled."""
        known = [available for observed, available in self.fsfreeze_history if observed <= moment]
        return bool(known) and known[-1] is False


def report_evidence(report: GuestReport) -> GuestEvidence:
    """What a guest report says about whether VSS could quiesce the guest."""
    return _SHARED_EVIDENCE(GuestEvidence(writers_failed=report.writers_failed, vss_blocker=vss_could_not_run(report)))
