"""A restarted exporter keeps the verdict a guest report gave a Windows snapshot taken before the restart.

Guest reports live in memory only. Before the restart the VM reported VSS disabled, so its snapshot is
crash-consistent. After the restart, until the probe's first report arrives, the verdict is unknown
(the last-snapshot series are absent, which the alert rules bridge); the first report stands in for
the snapshot's time and the series come back exactly as they were.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from exporter.settings import Address
from exporter.simulator.guest_reporter import build_report_document
from tests.conftest import load_json
from tests.integration.conftest import Samples, value
from tests.integration.test_guest_reports import TOKEN, post, windows_vmi

ADDRESS = "127.0.0.42"
LAST_SNAPSHOT = "kubevirt_vss_last_snapshot_"
LAST_CONSISTENT = "kubevirt_vss_last_consistent_snapshot_timestamp_seconds"


def snapshot_now(name: str) -> dict:
    raw = load_json("kubevirt/vmsnapshot-succeeded-online-guestagent.json")
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw["metadata"].update(namespace="ns", creationTimestamp=when)
    raw["metadata"].pop("resourceVersion", None)
    raw["spec"]["source"]["name"] = name
    raw["status"]["creationTime"] = when
    return raw


def last_snapshot_series(samples: Samples) -> Samples:
    return {
        key: sample
        for key, sample in samples.items()
        if key[0].startswith((LAST_SNAPSHOT, LAST_CONSISTENT)) and ("name", "win-sql") in key[1]
    }


async def report_vss_disabled(url: str) -> None:
    document = build_report_document("vss_service_disabled", hostname="WIN-SQL", generated_at=1.7e9)
    assert await post(url, json.dumps(document).encode(), source=ADDRESS) == 202


async def test_a_restart_keeps_a_windows_snapshot_verdict_from_guest_evidence(cluster) -> None:
    settings = {
        "guest_report_listen": Address("127.0.0.1", 0),
        "guest_report_token": TOKEN,
        "guest_report_grace": 300.0,
    }
    first = await cluster(seed_objects=[("virtualmachineinstances", windows_vmi("win-sql", ADDRESS))], **settings)
    await report_vss_disabled(first.exporter.bound_urls["guest_reports"] + "/api/v1/guest-reports")
    await first.wait_for(
        lambda s: value(s, "kubevirt_vss_check_ok", namespace="ns", name="win-sql", check="vss_service") == 0
    )
    first.simulator.store.upsert("virtualmachinesnapshots", snapshot_now("win-sql"))
    before = last_snapshot_series(
        await first.wait_for(
            lambda s: value(s, "kubevirt_vss_last_snapshot_consistency", namespace="ns", name="win-sql") is not None
        )
    )
    assert value(before, "kubevirt_vss_last_snapshot_consistency", namespace="ns", name="win-sql") == 1
    assert any(("reason", "vss_service_disabled") in key[1] for key in before), before
    await cluster.stop_exporter(first)

    second = await cluster(simulator=first.simulator, **settings)
    await second.wait_for(lambda s: value(s, "kubevirt_vss_snapshots", namespace="ns", name="win-sql") == 1)
    during_grace = last_snapshot_series(await second.scrape())
    assert during_grace == {}  # unknown, not "application"

    await report_vss_disabled(second.exporter.bound_urls["guest_reports"] + "/api/v1/guest-reports")
    after = last_snapshot_series(await second.wait_for(lambda s: bool(last_snapshot_series(s))))
    assert after == before
