"""The VM states behind the golden exposition files, and the command that regenerates them.

    .venv/bin/python -m tests.render.golden

rewrites tests/golden/metrics.txt (text 0.0.4) and tests/golden/metrics.openmetrics.txt from
``GOLDEN_STATES``. Every family in FAMILIES must have at least one sample here; a new family
needs a value in one of these states, then the files are regenerated and the diff reviewed.
"""

from __future__ import annotations

import math
from pathlib import Path

from exporter.render.store import MetricsStore
from exporter.render.text import EOF_LINE
from exporter.state.records import (
    FailedWriter,
    FreezeErrorDetail,
    GuestFilesystem,
    SnapshotJudgement,
    VmKey,
    VmState,
    VolumeFreeSpace,
)
from tests.render.exposition import per_vm_body

GOLDEN = Path(__file__).parent.parent / "golden"
TEXT_FILE = GOLDEN / "metrics.txt"
OPENMETRICS_FILE = GOLDEN / "metrics.openmetrics.txt"

# A label value with everything the exposition formats escape or must carry through unharmed.
AWKWARD = 'back\\slash "quoted"\nnew line, Größe 日本'
SYSTEM_RESERVED = "\\\\?\\Volume{2a1f8d64-0000-0000-0000-100000000000}\\"

WINDOWS = VmState(
    key=VmKey("finance", "win-sql-01"),
    node="node01",
    phase="Running",
    guest_os="mswindows",
    guest_os_version="Windows Server 2019 Standard",
    agent_version="100.0.0",
    agent_connected=True,
    agent_supported=True,
    fsfreeze_available=True,
    fs_frozen=True,
    frozen_since=1700000000.5,
    filesystems=(
        GuestFilesystem(SYSTEM_RESERVED, "System Reserved", "NTFS"),
        GuestFilesystem("\\\\?\\Volume{2a1f8d64-0000-0000-0000-200000000000}\\", "C:\\", "NTFS"),
    ),
    checks=(("agent_connected", True), ("not_stuck_frozen", False), ("writers_stable", False)),
    snapshot_count=3,
    oldest_snapshot_timestamp=1699990000.0,
    last_snapshot=SnapshotJudgement(
        "daily-20231114",
        "Succeeded",
        2,
        "filesystem",
        "writers_failed",
        "GuestAgent,Online",
        1.7e9,
        failed_volumes=(("sqldata", "resource_exhausted"),),
    ),
    last_consistent_snapshot_timestamp=1.7e9,
    writers_total=9,
    writers_failed=2,
    failed_writers=(FailedWriter(AWKWARD, 9, "Timed out"), FailedWriter("SqlServerWriter", 8, "Non-retryable error")),
    volume_free_space=(VolumeFreeSpace("C:\\", "C:\\", 1024, 4096), VolumeFreeSpace(SYSTEM_RESERVED, "", 0, 524288000)),
    guest_report_timestamp=1700000100.0,
    freeze_error_counts=(("add_volume_to_snapshot_set", "unknown", 2), ("hold_writes_timeout", "io_load", 1)),
    last_freeze_error_by_reason=(("add_volume_to_snapshot_set", 1700000050.0), ("hold_writes_timeout", 1699000000.0)),
    last_freeze_error=FreezeErrorDetail(
        "add_volume_to_snapshot_set",
        "unknown",
        "0x8004230c",
        "VSS_E_VOLUME_NOT_SUPPORTED",
        SYSTEM_RESERVED,
        "System Reserved",
        "snapshot",
        1.7e9,
    ),
    storage_failure_counts=(("volume_snapshot_error", 1), ("volume_snapshots_missing", 2)),
    last_storage_failure_timestamp=1700000200.0,
)

# Values no real VM produces, to pin how the formats spell them.
SPECIAL_VALUES = VmState(
    key=VmKey("lab", AWKWARD),
    phase="Running",
    frozen_since=math.inf,
    oldest_snapshot_timestamp=math.nan,
    last_consistent_snapshot_timestamp=-math.inf,
    volume_free_space=(VolumeFreeSpace(AWKWARD, AWKWARD, 0, 1),),
)

STOPPED = VmState(key=VmKey("lab", "linux-stopped"), phase="Stopped")

GOLDEN_STATES = (WINDOWS, SPECIAL_VALUES, STOPPED)


def golden_bodies() -> tuple[bytes, bytes]:
    """(text 0.0.4 body, OpenMetrics body) of the per-VM families for ``GOLDEN_STATES``."""
    store = MetricsStore()
    for state in GOLDEN_STATES:
        store.put(state.key, state)
    return per_vm_body(store, openmetrics=False), per_vm_body(store, openmetrics=True) + EOF_LINE


def main() -> None:
    text, openmetrics = golden_bodies()
    GOLDEN.mkdir(exist_ok=True)
    TEXT_FILE.write_bytes(text)
    OPENMETRICS_FILE.write_bytes(openmetrics)
    print(f"wrote {TEXT_FILE} ({len(text)} bytes) and {OPENMETRICS_FILE} ({len(openmetrics)} bytes)")


if __name__ == "__main__":
    main()
