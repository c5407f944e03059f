"""What the log says once running: one ``ready`` line after the first sync, one line per new freeze-failure episode."""

from __future__ import annotations

from structlog.testing import capture_logs

from tests.integration.conftest import value, vmi
from tests.integration.test_freeze_errors import NS, VM, snapshot

VMIS, SNAPSHOTS = "virtualmachineinstances", "virtualmachinesnapshots"


async def test_ready_once_after_the_first_sync_and_one_line_per_new_freeze_failure_episode(cluster) -> None:
    with capture_logs() as logs:
        running = await cluster(
            seed_objects=[
                (VMIS, vmi(VM, namespace=NS)),
                (VMIS, vmi("other", namespace=NS)),
                (SNAPSHOTS, snapshot("snap-1", "2026-11-29T10:00:00Z", "2026-11-29T10:00:05Z")),
            ]
        )
        # The same episode again (a controller retry rewrites the error): no new line.
        running.simulator.store.upsert(
            SNAPSHOTS, snapshot("snap-1", "2026-11-29T10:00:00Z", "2026-11-29T10:00:10Z")
        )
        await running.wait_for(
            lambda s: (value(s, "kubevirt_vss_exporter_watch_events_total", resource=SNAPSHOTS, type="MODIFIED") or 0)
            >= 1
        )
    ready = [e for e in logs if e["event"] == "ready"]
    assert len(ready) == 1 and ready[0]["vms"] == 2 and ready[0]["seconds"] >= 0
    failures = [e for e in logs if e["event"] == "freeze_failure"]
    assert len(failures) == 1
    (line,) = failures
    assert (line["log_level"], line["namespace"], line["name"]) == ("info", NS, VM)
    assert (line["reason"], line["episodes"]) == ("add_volume_to_snapshot_set", 1)
