"""Snapshot storage failures: errors the snapshot controller writes itself, apart from freeze failures.

The controller puts three kinds of its own errors into ``status.error`` (``pkg/storage/snapshot/snapshot.go``
``updateVMSnapshotContent``): a VolumeSnapshot that reports an error, VolumeSnapshots that went missing
after the content was created, and VolumeSnapshots skipped because the VMSnapshot is being deleted. None of
them says anything about the guest, so they are counted here and never as freeze failures.

Counting is per episode: one snapshot failing for one reason counts once however often it is seen.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.state.records import SnapshotFacts, VmKey

STORAGE_REASONS = ("volume_snapshot_error", "volume_snapshots_missing", "source_deleted", "other")
EPISODES_PER_VM = 256

_PATTERNS = (
    (re.compile(r"\AVolumeSnapshot \S{1,253} error: "), "volume_snapshot_error"),
    (re.compile(r"\AVolumeSnapshots \([^()]{0,4096}\) missing\Z"), "volume_snapshots_missing"),
    (re.compile(r"\AVolumeSnapshots \([^()]{0,4096}\) skipped because vm snapshot is deleted\Z"), "source_deleted"),
)


def storage_failure_reason(message: str | None) -> str | None:
    """The storage reason of a ``status.error`` message the snapshot controller wrote, else None."""
    if not message:
        return None
    text = message.strip()
    for pattern, reason in _PATTERNS:
        if pattern.search(text):
            return reason
    return None


@dataclass(frozen=True, slots=True)
class StorageFailureSummary:
    """Per VM: episodes by reason, and when the newest one was seen."""

    counts: tuple[tuple[str, int], ...] = ()
    last_timestamp: float | None = None


NO_STORAGE_FAILURES = StorageFailureSummary()


@dataclass(slots=True)
class _VmEpisodes:
    # (snapshot uid, reason) → time first seen; insertion order is age order.
    seen: OrderedDict[tuple[str, str], float] = field(default_factory=OrderedDict)
    counts: dict[str, int] = field(default_factory=dict)
    last: float = 0.0


class StorageFailureLedger:
    """Storage failure episodes per VM. Pure: observation times are the only clock."""

    def __init__(self) -> None:
        self._vms: dict[VmKey, _VmEpisodes] = {}

    def observe(self, snapshot: SnapshotFacts) -> bool:
        """Record the storage failure a snapshot carries, if any; True when the VM's numbers changed."""
        reason = storage_failure_reason(snapshot.error_message)
        if reason is None:
            return False
        at = snapshot.error_time if snapshot.error_time is not None else snapshot.requested_at
        episodes = self._vms.setdefault(snapshot.key, _VmEpisodes())
        episode = (snapshot.uid, reason)
        if episode in episodes.seen:
            if at <= episodes.last:
                return False
            episodes.last = at
            return True
        episodes.seen[episode] = at
        if len(episodes.seen) > EPISODES_PER_VM:
            episodes.seen.popitem(last=False)
        episodes.counts[reason] = episodes.counts.get(reason, 0) + 1
        episodes.last = max(episodes.last, at)
        return True

    def summary(self, key: VmKey) -> StorageFailureSummary:
        episodes = self._vms.get(key)
        if episodes is None:
            return NO_STORAGE_FAILURES
        return StorageFailureSummary(tuple(sorted(episodes.counts.items())), episodes.last)

    def prune(self, keep: Callable[[VmKey], bool]) -> None:
        """Forget VMs that no longer exist."""
        for key in [k for k in self._vms if not keep(k)]:
            del self._vms[key]
