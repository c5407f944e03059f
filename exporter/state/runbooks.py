"""Where the runbooks live: the same base URL as the alert rules, one page per alert."""

from __future__ import annotations

RUNBOOK_BASE_URL = "https://github.com/kubevirt-vss-exporter/kubevirt-vss-exporter/blob/main/alerts/runbooks"

AGENT_DISCONNECTED = "KubevirtVssGuestAgentDisconnected"
AGENT_UNSUPPORTED = "KubevirtVssGuestAgentUnsupported"
FREEZE_UNAVAILABLE = "KubevirtVssFreezeUnavailable"
STUCK_FROZEN = "KubevirtVssFilesystemStuckFrozen"
SERVICE_DISABLED = "KubevirtVssServiceDisabled"
PROVIDER_MISSING = "KubevirtVssProviderMissing"
WRITERS_FAILED = "KubevirtVssWritersFailed"
LOW_FREE_SPACE = "KubevirtVssSystemVolumeLowFreeSpace"
ADD_VOLUME_FAILED = "KubevirtVssFreezeAddVolumeFailed"
FREEZE_FAILED = "KubevirtVssFreezeFailed"
SNAPSHOT_NOT_CONSISTENT = "KubevirtVssLastSnapshotNotConsistent"
NO_CONSISTENT_SNAPSHOT = "KubevirtVssNoConsistentSnapshotWithinRPO"
GUEST_REPORT_STALE = "KubevirtVssGuestReportStale"


def runbook_url(alert: str, base_url: str = RUNBOOK_BASE_URL) -> str:
    """The runbook page of one alert."""
    return f"{base_url.rstrip('/')}/{alert}.md"
