"""VirtualMachineSnapshot objects → facts, and the choice of a VM's last finished snapshot."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any

from exporter.state import field_readers as read
from exporter.state.records import SnapshotFacts, VmKey
from exporter.state.shared import SharedValues

MAX_INDICATIONS = 16
MAX_ERROR_MESSAGE = 64 * 1024
_INDICATION = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,47}$")
DEFAULT_FAILURE_DEADLINE = 300.0
MAX_VOLUMES = 64
MAX_VOLUME_NAME = 253
MAX_INDICATION_MESSAGE = 512

# Every snapshot of a kind carries the same indications with the same messages: the fleet's
# snapshots hold one tuple of each.
_SHARED_INDICATIONS: SharedValues = SharedValues()
_SHARED_MESSAGES: SharedValues = SharedValues()
_SHARED_EXCLUDED: SharedValues = SharedValues()


def parse_snapshot(raw: Any) -> tuple[SnapshotFacts | None, list[str]]:
    """Read a VMSnapshot whose source is a VirtualMachine; other sources give ``None``."""
    problems, identity = read.identified(raw)
    if identity is None:
        return None, problems.items
    namespace, name, uid = identity
    spec = read.mapping(raw, "spec", problems)
    source = read.mapping(spec, "source", problems)
    if read.string(source, "kind", problems) != "VirtualMachine" or not read.string(source, "name", problems):
        problems.add("source_not_vm")
        return None, problems.items
    metadata = read.mapping(raw, "metadata", problems)
    requested_at = read.timestamp(metadata, "creationTimestamp", problems)
    status = read.mapping(raw, "status", problems)
    indications: list[str] = []
    for value in read.sequence(status, "indications", problems)[:MAX_INDICATIONS]:
        if isinstance(value, str) and _INDICATION.match(value):
            indications.append(value)
        else:
            problems.add("indication_malformed")
    error = read.mapping(status, "error", problems)
    message = read.string(error, "message", problems, limit=MAX_ERROR_MESSAGE) or None
    deadline: float | None = DEFAULT_FAILURE_DEADLINE
    if "failureDeadline" in spec:
        deadline = read.duration_seconds(spec.get("failureDeadline"))
        if deadline is None:
            problems.add("failureDeadline_malformed")
            deadline = DEFAULT_FAILURE_DEADLINE
    deadline_exceeded = any(
        isinstance(c, dict) and c.get("type") == "Failure" and c.get("status") == "True"
        for c in read.sequence(status, "conditions", problems)
    )
    messages = _indication_messages(status, problems)
    if not indications:
        # v1.7+ writes both; read sourceIndications when the deprecated list is missing.
        indications = [name for name, _ in messages]
    excluded = [
        v
        for v in read.sequence(read.mapping(status, "snapshotVolumes", problems), "excludedVolumes", problems)
        if isinstance(v, str) and v
    ][:MAX_VOLUMES]
    facts = SnapshotFacts(
        key=VmKey(namespace, read.string(source, "name", problems)),
        uid=uid or f"{namespace}/{name}",
        name=name,
        requested_at=requested_at if requested_at is not None else 0.0,
        phase=read.string(status, "phase", problems, limit=32),
        indications=_SHARED_INDICATIONS(tuple(map(sys.intern, indications))),
        taken_at=read.timestamp(status, "creationTime", problems),
        error_message=message,
        error_time=read.timestamp(error, "time", problems),
        failure_deadline=deadline,
        deadline_exceeded=deadline_exceeded,
        indication_messages=_SHARED_MESSAGES(messages),
        excluded_volumes=_SHARED_EXCLUDED(tuple(sys.intern(v[:MAX_VOLUME_NAME]) for v in excluded)),
    )
    return facts, problems.items


def _indication_messages(status: Any, problems: read.Problems) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for entry in read.sequence(status, "sourceIndications", problems)[:MAX_INDICATIONS]:
        name = entry.get("indication") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _INDICATION.match(name):
            problems.add("source_indication_malformed")
            continue
        message = entry.get("message")
        text = message[:MAX_INDICATION_MESSAGE] if isinstance(message, str) else ""
        found.append((sys.intern(name), sys.intern(text)))  # the same few messages on every snapshot
    return tuple(found)


def last_finished(snapshots: Iterable[SnapshotFacts], now: float) -> SnapshotFacts | None:
    """The newest snapshot by creation timestamp that has finished (ties broken by name)."""
    finished = [s for s in snapshots if s.finished(now)]
    if not finished:
        return None
    return max(finished, key=lambda s: (s.requested_at, s.name))
