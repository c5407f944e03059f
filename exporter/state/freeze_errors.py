"""Freeze failures from every source → observations → episodes per VM.

The snapshot controller retries a failed freeze every 5 s and rewrites ``status.error``; Events
aggregate repeats into one object with a rising count; launcher logs print every attempt.
Counting is therefore by *episode*: failures of one VM with the same reason that belong to the
same snapshot, or come less than ``gap`` seconds apart, count once — whichever source they came
through. Replayed observations (relists, reconnects) are recognised by identity and ignored.

Episodes do not depend on the order observations arrive in (after a restart, Events may be listed
before or after the snapshots they belong to): an observation that links two episodes merges them,
and an episode's cause is that of its earliest observation with a known cause. The same objects
in any order give the same counts. The price: a late observation that bridges two episodes lowers
the count by one, which Prometheus reads as a counter reset — alerts use the timestamp gauges.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.state import field_readers as read
from exporter.state.classifier import Classification, classify
from exporter.state.consistency import thaw_breaks_consistency
from exporter.state.records import FreezeErrorDetail, GuestFilesystem, SnapshotFacts, VmKey
from exporter.state.storage_failures import storage_failure_reason

MAX_TEXT = 64 * 1024
SEEN_PER_VM = 512
EPISODES_PER_REASON = 16
THAW_MATCH_SLACK = 120.0
HOLD_WRITES_TIMEOUT = "hold_writes_timeout"

SNAPSHOT, EVENT, LAUNCHER_LOG, BACKUP = "snapshot", "event", "launcher_log", "backup"


@dataclass(frozen=True, slots=True)
class FreezeObservation:
    """One sighting of a freeze or thaw failure — or, with ``transition`` set, of a freeze or thaw
    that succeeded (virt-launcher's ``Freezed vmi`` / ``Unfreezed vmi``), the evidence of *when* a
    VM froze that the API keeps in the launcher pod's log."""

    key: VmKey
    at: float
    text: str
    source: str
    identity: str
    snapshot: str | None = None
    transition: str | None = None


@functools.lru_cache(maxsize=8192)
def classify_cached(text: str) -> Classification:
    """Retries repeat the same text; classify each distinct text once."""
    return classify(text)


def from_snapshot(facts: SnapshotFacts) -> FreezeObservation | None:
    """The error a VMSnapshot carries in ``status.error`` (freeze, or the thaw error of QuiesceTimeout).

    Errors the snapshot controller writes about storage are not freeze failures (``storage_failures``).
    """
    if not facts.error_message or storage_failure_reason(facts.error_message) is not None:
        return None
    at = facts.error_time if facts.error_time is not None else facts.requested_at
    return FreezeObservation(
        key=facts.key,
        at=at,
        text=facts.error_message[:MAX_TEXT],
        source=SNAPSHOT,
        identity=f"snapshot/{facts.uid}/{at}",
        snapshot=facts.uid,
    )


def from_event(raw: Any) -> FreezeObservation | None:
    """A Warning Event ``FreezeError`` on a VMI: ``Failed to freeze VMI: <err>``."""
    problems = read.Problems()
    if not isinstance(raw, Mapping) or raw.get("reason") != "FreezeError":
        return None
    involved = read.mapping(raw, "involvedObject", problems)
    if read.string(involved, "kind", problems) != "VirtualMachineInstance":
        return None
    metadata = read.mapping(raw, "metadata", problems)
    namespace = read.string(involved, "namespace", problems) or read.string(metadata, "namespace", problems)
    name = read.string(involved, "name", problems)
    message = read.string(raw, "message", problems, limit=MAX_TEXT)
    if not namespace or not name or not message:
        return None
    at = (
        read.timestamp(raw, "lastTimestamp", problems)
        or read.timestamp(raw, "eventTime", problems)
        or read.timestamp(raw, "firstTimestamp", problems)
        or read.timestamp(metadata, "creationTimestamp", problems)
    )
    if at is None:
        return None
    uid = read.string(metadata, "uid", problems) or read.string(metadata, "name", problems)
    return FreezeObservation(VmKey(namespace, name), at, message, EVENT, f"event/{uid}/{at}")


def from_backup(raw: Any) -> FreezeObservation | None:
    """A VirtualMachineBackup whose freeze failed: ``Quiesced=False`` (v1.9+), or the ``Done`` warning (v1.8)."""
    problems, identity = read.identified(raw)
    if identity is None:
        return None
    namespace, _, uid = identity
    source = read.mapping(read.mapping(raw, "spec", problems), "source", problems)
    vm = read.string(source, "name", problems)
    if read.string(source, "kind", problems) not in ("", "VirtualMachine") or not vm:
        return None
    conditions = {
        c.get("type"): c
        for c in read.sequence(read.mapping(raw, "status", problems), "conditions", problems)
        if isinstance(c, Mapping)
    }
    quiesced = conditions.get("Quiesced")
    if quiesced is None:
        return _from_backup_v18(conditions, VmKey(namespace, vm), uid, problems)
    if quiesced.get("status") != "False" or quiesced.get("reason") != "QuiesceFailed":
        return None
    at = read.timestamp(quiesced, "lastTransitionTime", problems)
    if at is None:
        return None
    complete = conditions.get("Complete") or {}
    # The freeze error itself is only in the completion warning; the Quiesced message is generic.
    text = read.string(complete, "message", problems, limit=MAX_TEXT) or read.string(quiesced, "message", problems)
    text = text.removeprefix(_BACKUP_WARNING)
    return FreezeObservation(VmKey(namespace, vm), at, text, BACKUP, f"backup/{uid}")


_BACKUP_WARNING = "Completed VirtualMachineBackup, warning: "
_BACKUP_FREEZE_FAILED = "Failed freezing guest filesystem: "


def _from_backup_v18(
    conditions: Mapping[Any, Mapping[str, Any]], key: VmKey, uid: str, problems: read.Problems
) -> FreezeObservation | None:
    """v1.8 has no Quiesced condition: a freeze failure is the warning in the reason of ``Done``."""
    done = conditions.get("Done")
    if done is None or done.get("status") != "True":
        return None
    reason = read.string(done, "reason", problems, limit=MAX_TEXT)
    if not reason.startswith(_BACKUP_WARNING + _BACKUP_FREEZE_FAILED):
        return None
    at = read.timestamp(done, "lastTransitionTime", problems)
    if at is None:
        return None
    text = reason.removeprefix(_BACKUP_WARNING + _BACKUP_FREEZE_FAILED)
    return FreezeObservation(key, at, text, BACKUP, f"backup/{uid}")


_LOG_MESSAGES = ("failed to freeze vmi", "failed to unfreeze vmi", "failed freezing guest filesystem")


#: virt-launcher's cmd-server logs these after a freeze or thaw succeeded
#: (kubevirt/kubevirt v1.8.0 pkg/virt-launcher/virtwrap/cmd-server/server.go:277 and :294).
FROZEN, THAWED = "frozen", "thawed"
_TRANSITIONS = {"Freezed vmi": FROZEN, "Unfreezed vmi": THAWED}


def from_log_line(line: str, key: VmKey, *, stream: str) -> FreezeObservation | None:
    """A virt-launcher JSON log line reporting a failed freeze or thaw, or a freeze or thaw that
    succeeded (``transition`` set); other lines give ``None``."""
    if len(line) > MAX_TEXT or '"msg"' not in line:
        return None
    try:
        decoded = json.loads(line)
    except ValueError:
        return None
    if not isinstance(decoded, Mapping):
        return None
    message = decoded.get("msg")
    reason = decoded.get("reason")
    if isinstance(message, str) and message in _TRANSITIONS:
        at = read.timestamp(decoded, "timestamp", read.Problems())
        if at is None:
            return None
        return FreezeObservation(
            key, at, message, LAUNCHER_LOG, f"log/{stream}/{at}/{message}", transition=_TRANSITIONS[message]
        )
    if not isinstance(message, str) or not message.lower().startswith(_LOG_MESSAGES):
        return None
    if not isinstance(reason, str) and "," not in message:
        return None
    at = read.timestamp(decoded, "timestamp", read.Problems())
    if at is None:
        return None
    digest = hashlib.blake2b(line.encode("utf-8", "replace"), digest_size=8).hexdigest()
    return FreezeObservation(key, at, line, LAUNCHER_LOG, f"log/{stream}/{at}/{digest}")


@dataclass(frozen=True, slots=True)
class EpisodeView:
    """One failure episode of a VM, as the status pages list it."""

    reason: str
    start: float
    last: float
    snapshots: int


@dataclass(slots=True)
class _Episode:
    reason: str
    start: float
    last: float
    snapshots: set[str]
    #: Ranks the observations for naming the cause: a known cause first, then the earliest.
    cause_rank: tuple[bool, float, str]
    cause: str

    def links(self, other: _Episode, gap: float) -> bool:
        """Whether two episodes are one: a snapshot in common, or less than ``gap`` apart."""
        if self.snapshots & other.snapshots:
            return True
        return other.start - gap <= self.last and self.start <= other.last + gap

    def absorb(self, other: _Episode) -> None:
        self.start = min(self.start, other.start)
        self.last = max(self.last, other.last)
        self.snapshots |= other.snapshots
        if other.cause_rank < self.cause_rank:
            self.cause_rank, self.cause = other.cause_rank, other.cause


#: Ranks observations of the same time for "newest": a snapshot's own error before an Event, a log
#: line or a backup, then by identity, so that arrival order never decides.
_SOURCE_RANK = {SNAPSHOT: 3, EVENT: 2, LAUNCHER_LOG: 1, BACKUP: 0}


def _newness(observation: FreezeObservation) -> tuple[float, int, str]:
    return observation.at, _SOURCE_RANK.get(observation.source, -1), observation.identity


@dataclass(slots=True)
class _VmLedger:
    episodes: dict[str, list[_Episode]] = field(default_factory=dict)
    #: Counts of episodes dropped to bound memory, by (reason, cause).
    retired: dict[tuple[str, str], int] = field(default_factory=dict)
    last_by_reason: dict[str, float] = field(default_factory=dict)
    newest: tuple[FreezeObservation, Classification] | None = None
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # Thaw failures that broke the hold: (time, snapshot uid if known, reason).
    thaw_failures: list[tuple[float, str | None, str]] = field(default_factory=list)
    #: The newest successful freeze or thaw seen in the launcher log: (time, FROZEN or THAWED).
    transition: tuple[float, str] | None = None
    #: ``vm_summary`` of this ledger until it changes: every publish of the VM asks for it.
    summary: VmFreezeErrors | None = None

    def counts(self) -> dict[tuple[str, str], int]:
        counts = dict(self.retired)
        for episodes in self.episodes.values():
            for episode in episodes:
                key = (episode.reason, episode.cause)
                counts[key] = counts.get(key, 0) + 1
        return counts


class FreezeErrorLedger:
    """Episodes and the newest error per VM. Pure: observation times are the only clock."""

    def __init__(self, *, gap: float = 600.0, classifier: Callable[[str], Classification] = classify_cached) -> None:
        self.gap = gap
        self._classify = classifier
        self._vms: dict[VmKey, _VmLedger] = {}
        self._horizon: float | None = None

    def add(self, observation: FreezeObservation) -> bool:
        """Record one observation; ``True`` when the VM's numbers changed."""
        ledger = self._vms.setdefault(observation.key, _VmLedger())
        if observation.identity in ledger.seen:
            return False
        ledger.seen[observation.identity] = None
        if len(ledger.seen) > SEEN_PER_VM:
            ledger.seen.popitem(last=False)
        ledger.summary = None  # whatever follows may change it; kept only while nothing is added
        if observation.transition is not None:
            newest = (observation.at, observation.transition)
            if ledger.transition is not None and newest <= ledger.transition:
                return False
            ledger.transition = newest
            return True
        classification = self._classify(observation.text)
        reason = classification.reason
        self._join(ledger, reason, observation, classification.cause)
        ledger.last_by_reason[reason] = max(ledger.last_by_reason.get(reason, 0.0), observation.at)
        if ledger.newest is None or _newness(observation) > _newness(ledger.newest[0]):
            ledger.newest = (observation, classification)
        if thaw_breaks_consistency(reason, classification.cause) and len(ledger.thaw_failures) < 64:
            ledger.thaw_failures.append((observation.at, observation.snapshot, reason))
        return True

    def _join(self, ledger: _VmLedger, reason: str, observation: FreezeObservation, cause: str) -> None:
        """Merge the observation with every episode it links, until no other episode links the result."""
        episode = _Episode(
            reason=reason,
            start=observation.at,
            last=observation.at,
            snapshots={observation.snapshot} if observation.snapshot else set(),
            cause_rank=(cause == "unknown", observation.at, observation.identity),
            cause=cause,
        )
        rest = ledger.episodes.get(reason, [])
        while True:
            linked = [other for other in rest if episode.links(other, self.gap)]
            if not linked:
                break
            for other in linked:
                episode.absorb(other)
            rest = [other for other in rest if other not in linked]
        rest.append(episode)
        rest.sort(key=lambda e: (e.last, e.start))
        for dropped in rest[:-EPISODES_PER_REASON]:
            key = (dropped.reason, dropped.cause)
            ledger.retired[key] = ledger.retired.get(key, 0) + 1
        ledger.episodes[reason] = rest[-EPISODES_PER_REASON:]

    def prune(self, keep: Callable[[VmKey], bool]) -> None:
        """Drop VMs that do not exist once their newest failure is older than two episode gaps.

        Observations may arrive before the VM itself (an Event listed before its VMI), so a VM
        that is not known yet is kept for a while rather than dropped at once.
        """
        if self._horizon is None:
            return
        cutoff = self._horizon - 2 * self.gap
        for key in [k for k, ledger in self._vms.items() if not keep(k) and _newest(ledger) < cutoff]:
            del self._vms[key]

    def advance(self, now: float) -> None:
        """Tell the ledger the time, for pruning only."""
        self._horizon = now

    def vm_summary(self, key: VmKey) -> VmFreezeErrors:
        """What is known of one VM's freeze failures, as a value for judging it."""
        ledger = self._vms.get(key)
        if ledger is None:
            return NO_FREEZE_ERRORS
        if ledger.summary is None:
            ledger.summary = _summarise(ledger)
        return ledger.summary

    def episodes(self, key: VmKey) -> tuple[EpisodeView, ...]:
        """The VM's remembered failure episodes, newest first."""
        ledger = self._vms.get(key)
        if ledger is None:
            return ()
        views = [
            EpisodeView(e.reason, e.start, e.last, len(e.snapshots))
            for recent in ledger.episodes.values()
            for e in recent
        ]
        return tuple(sorted(views, key=lambda v: v.last, reverse=True))

    def newest(self, key: VmKey) -> tuple[FreezeObservation, Classification] | None:
        """The newest failure of the VM with its full classification (message, meaning, advice)."""
        ledger = self._vms.get(key)
        return ledger.newest if ledger is not None else None


@dataclass(frozen=True, slots=True)
class NewestFreezeError:
    classification: Classification
    source: str
    at: float


@dataclass(frozen=True, slots=True)
class VmFreezeErrors:
    """One VM's freeze failures as the ledger summarises them: the value a VmState is judged with."""

    # (reason, cause, episodes), sorted.
    counts: tuple[tuple[str, str, int], ...] = ()
    # (reason, time of its newest failure), sorted.
    last_by_reason: tuple[tuple[str, float], ...] = ()
    newest: NewestFreezeError | None = None
    # (time, snapshot uid if known, reason) of every thaw failure that means the writes were not held.
    thaw_failures: tuple[tuple[float, str | None, str], ...] = ()
    #: When the VM froze, if the newest successful freeze or thaw in its launcher log is a freeze.
    frozen_at: float | None = None

    def thaw_failure_during(self, snapshot: SnapshotFacts) -> str | None:
        """The reason of a thaw failure during this snapshot that means the writes were not held, if any.

        The 10 s hold limit wins over other thaw failures when both were seen.
        """
        if not self.thaw_failures:
            return None  # the common case, asked for every snapshot of every VM judged
        end = (snapshot.taken_at or snapshot.requested_at) + THAW_MATCH_SLACK
        found: str | None = None
        for at, uid, reason in self.thaw_failures:
            if uid == snapshot.uid or (uid is None and snapshot.requested_at <= at <= end):
                if reason == HOLD_WRITES_TIMEOUT:
                    return reason
                found = reason if found is None else min(found, reason)
        return found

    def newest_detail(self, filesystems: Iterable[GuestFilesystem]) -> FreezeErrorDetail | None:
        """The newest error as the info series shows it, its volume mapped to a guest mount point."""
        if self.newest is None:
            return None
        c = self.newest.classification
        volume = c.volume or ""
        return FreezeErrorDetail(
            reason=c.reason,
            cause=c.cause,
            hresult=c.hresult or "",
            hresult_name=c.hresult_name or "",
            volume=volume,
            mount_point=mount_point_of(volume, filesystems),
            source=self.newest.source,
            timestamp=self.newest.at,
        )


NO_FREEZE_ERRORS = VmFreezeErrors()


def _summarise(ledger: _VmLedger) -> VmFreezeErrors:
    newest = None
    if ledger.newest is not None:
        observation, classification = ledger.newest
        newest = NewestFreezeError(classification, observation.source, observation.at)
    return VmFreezeErrors(
        counts=tuple(sorted((reason, cause, n) for (reason, cause), n in ledger.counts().items())),
        last_by_reason=tuple(sorted(ledger.last_by_reason.items())),
        newest=newest,
        thaw_failures=tuple(ledger.thaw_failures),
        frozen_at=ledger.transition[0] if ledger.transition and ledger.transition[1] == FROZEN else None,
    )


def _newest(ledger: _VmLedger) -> float:
    return max(ledger.last_by_reason.values(), default=0.0)


def _normalise_volume(name: str) -> str:
    return name.strip().rstrip("\\").lower()


def mount_point_of(volume: str, filesystems: Iterable[GuestFilesystem]) -> str:
    """Map a volume as qemu-ga named it (GUID path or drive) to the mount point guestosinfo reports."""
    if not volume:
        return ""
    wanted = _normalise_volume(volume)
    for candidate in filesystems:
        if _normalise_volume(candidate.disk_name) == wanted or _normalise_volume(candidate.mount_point) == wanted:
            return candidate.mount_point
    if len(wanted) == 2 and wanted[1] == ":":  # a drive letter names its own mount point
        return volume.rstrip("\\") + "\\"
    if volume.startswith("/"):
        return volume
    return ""
