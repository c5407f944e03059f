"""The cast of the simulated fleet: one VM per scenario, each acting one failure or healthy case.

A larger fleet repeats this list round-robin. ``first_snapshot`` is seconds after the start of the run;
failing VMs come early so the first freeze errors appear within the first half minute, and Windows VMs
with a guest profile wait 20–40 s so a guest report can arrive before their first snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exporter.simulator.objects import Agent, Power

Behaviour = Literal["healthy", "fail_until_deadline", "hold_timeout", "transient", "storage_error"]
Failure = Literal["vss_guid", "linux_eacces", "command_disabled", "snapshot_set_in_progress"]

GUEST_PROFILES = ("healthy", "two_failed_writers", "vss_service_disabled", "provider_missing", "low_disk")


@dataclass(frozen=True, slots=True)
class Scenario:
    """What one VM is and how its snapshots go; ``first_snapshot`` None means it takes none."""

    key: str
    namespace: str
    name: str
    guest: str
    agent: Agent
    power: Power
    behaviour: Behaviour = "healthy"
    failure: Failure | None = None
    profile: str | None = None
    stuck_frozen: bool = False
    first_snapshot: float | None = None
    data_volume: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("healthy_windows", "finance", "win-ad-01", "ws2019", "connected", "running",
             profile="healthy", first_snapshot=26),
    Scenario("vss_writers_failed", "finance", "win-sql-01", "ws2022", "connected", "running",
             profile="two_failed_writers", first_snapshot=28, data_volume=True),
    Scenario("vss_volume_refused", "finance", "win-exchange-01", "ws2019", "connected", "running",
             behaviour="fail_until_deadline", failure="vss_guid", profile="healthy", first_snapshot=22,
             data_volume=True),
    Scenario("hold_writes_timeout", "finance", "win-files-01", "ws2022", "connected", "running",
             behaviour="hold_timeout", profile="low_disk", first_snapshot=32, data_volume=True),
    Scenario("snapshot_set_in_progress", "finance", "win-backup-01", "ws2019", "connected", "running",
             behaviour="transient", failure="snapshot_set_in_progress", profile="healthy", first_snapshot=24),
    Scenario("agent_unsupported", "engineering", "win-build-01", "ws2019-oldagent", "unsupported", "running",
             behaviour="fail_until_deadline", failure="command_disabled", profile="provider_missing",
             first_snapshot=34),
    Scenario("vss_service_disabled", "engineering", "win-legacy-01", "ws2019", "connected", "running",
             profile="vss_service_disabled", first_snapshot=36),
    Scenario("healthy_linux", "engineering", "linux-web-01", "fedora", "connected", "running",
             first_snapshot=45),
    Scenario("stuck_frozen", "engineering", "linux-db-01", "rhel", "connected", "running", stuck_frozen=True),
    Scenario("linux_permission_denied", "engineering", "linux-ci-01", "opensuse", "connected", "running",
             behaviour="fail_until_deadline", failure="linux_eacces", first_snapshot=20),
    Scenario("agent_disconnected", "infra", "linux-mon-01", "ubuntu", "disconnected", "running"),
    Scenario("no_guest_agent", "infra", "linux-cache-01", "ubuntu", "none", "running", first_snapshot=50),
    Scenario("paused", "infra", "linux-batch-01", "rhel", "connected", "paused", first_snapshot=55),
    Scenario("stopped", "infra", "win-archive-01", "ws2019", "none", "stopped", first_snapshot=60),
    Scenario("volume_snapshot_error", "infra", "linux-store-01", "rhel", "connected", "running",
             behaviour="storage_error", first_snapshot=42),
)


def loopback_ip(index: int) -> str:
    """The loopback address of VM ``index``: 127.0.0.2 upwards, skipping host numbers 0 and 255."""
    j = index + 1
    block, host = divmod(j, 254)
    return f"127.{(block >> 8) & 255}.{block & 255}.{host + 1}"
