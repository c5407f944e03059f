"""The alerting rules, stated once; ``alerts/generate.py`` renders them as a Prometheus rules file
and as a ``PrometheusRule`` object.

Design rules every alert follows:

* Per-VM inputs are read through ``last_over_time(...[gap])`` and ``max by (namespace, name)``:
  a restarting or re-sharded exporter leaves a gap of a scrape or two (stale series) and may be
  scraped twice for a while; neither may resolve or duplicate an alert.
* Freeze failures are judged from the timestamp gauges, never from ``increase()`` of the
  counter: after a restart the exporter rebuilds its episode counts from what the API still holds,
  so counters restart lower, while "the newest failure is newer than the newest consistent
  snapshot" stays true until a quiesced snapshot succeeds again.
* Alerts without ``for`` may carry details of the failure as labels (joined from the ``_info``
  series); alerts with ``for`` keep only identity labels and fetch details in the description, so a
  changing detail never restarts their pending period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NAME = "kubevirt-vss-exporter"

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITIES = (CRITICAL, WARNING, INFO)


@dataclass(frozen=True)
class Settings:
    """Every tunable of the rules, in one place. Durations use Prometheus notation (``90s``, ``26h``)."""

    #: Runbooks live at ``<runbook_base_url>/<AlertName>.md``.
    runbook_base_url: str = "https://github.com/kubevirt-vss-exporter/kubevirt-vss-exporter/blob/main/alerts/runbooks"
    #: Label matchers that select the exporter's scrape targets in ``up``.
    exporter_job_selector: str = 'job=~"kubevirt-vss-exporter.*"'
    #: Recovery point objective: the longest a snapshotted VM may go without a consistent snapshot.
    rpo: str = "26h"
    #: A filesystem frozen for longer than this is stuck.
    stuck_frozen_after: str = "5m"
    #: How long the guest agent may be away (reboots, updates) before it is reported.
    agent_disconnected_for: str = "15m"
    #: How long a guest-side finding (writers, provider, services, free space) must persist.
    guest_check_for: str = "15m"
    #: How long a freeze failure other than "add volume" must stay unresolved.
    freeze_failure_for: str = "10m"
    #: Freeze failures older than this no longer alert; the RPO alert takes over.
    freeze_failure_window: str = "24h"
    #: A guest report older than this is stale (the guest script reports every 5 minutes).
    guest_report_max_age: str = "30m"
    #: How far back a vanished guest report is remembered for the staleness alert.
    guest_report_lookback: str = "6h"
    #: How long the last snapshot must stay inconsistent (absorbs an exporter's first sync).
    snapshot_not_consistent_for: str = "5m"
    #: How long the RPO must stay exceeded (absorbs an exporter's first sync).
    rpo_for: str = "15m"
    #: Gaps in per-VM series up to this long (exporter restarts) are bridged.
    series_gap_tolerance: str = "5m"
    #: How long a reflector may stay unsynced.
    exporter_not_synced_for: str = "10m"
    #: How long the exporter may be down or missing from the scrape targets.
    exporter_down_for: str = "10m"
    #: Extra labels on every alert (for example ``{"team": "platform"}``).
    extra_labels: dict[str, str] = field(default_factory=dict)


SETTINGS = Settings()

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)([smhdw])")


def seconds(duration: str) -> int:
    """Seconds in a Prometheus duration such as ``26h`` or ``1h30m``."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    expr: str
    summary: str
    description: str
    for_: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    alerts: tuple[Alert, ...]


# --- metric names, spelled once -------------------------------------------------------------------

VM_INFO = "kubevirt_vss_vm_info"
AGENT_CONNECTED = "kubevirt_vss_agent_connected"
AGENT_SUPPORTED = "kubevirt_vss_agent_supported"
FSFREEZE_AVAILABLE = "kubevirt_vss_fsfreeze_available"
FS_FROZEN = "kubevirt_vss_fs_frozen"
FS_FROZEN_SINCE = "kubevirt_vss_fs_frozen_since_timestamp_seconds"
WRITERS_FAILED = "kubevirt_vss_writers_failed"
WRITER_FAILED_INFO = "kubevirt_vss_writer_failed_info"
GUEST_VOLUME_FREE = "kubevirt_vss_guest_volume_free_bytes"
GUEST_REPORT_TS = "kubevirt_vss_guest_report_timestamp_seconds"
CHECK_OK = "kubevirt_vss_check_ok"
SNAPSHOTS_OLDEST_TS = "kubevirt_vss_oldest_snapshot_timestamp_seconds"
SNAPSHOTS = "kubevirt_vss_snapshots"
LAST_SNAPSHOT_CONSISTENCY = "kubevirt_vss_last_snapshot_consistency"
LAST_SNAPSHOT_INFO = "kubevirt_vss_last_snapshot_info"
LAST_CONSISTENT_TS = "kubevirt_vss_last_consistent_snapshot_timestamp_seconds"
FREEZE_ERROR_TS = "kubevirt_vss_last_freeze_error_timestamp_seconds"
FREEZE_ERROR_INFO = "kubevirt_vss_last_freeze_error_info"
EXPORTER_SYNCED = "kubevirt_vss_exporter_synced"

RUNNING = f'{VM_INFO}{{phase="Running"}}'
STOPPED = f'{VM_INFO}{{phase="Stopped"}}'
GUEST_OS_KNOWN = f'{VM_INFO}{{guest_os!=""}}'

ADD_VOLUME = "add_volume_to_snapshot_set"
FREEZE_DETAILS = ("cause", "hresult", "hresult_name", "volume", "mount_point")

VM_REF = "{{ $labels.namespace }}/{{ $labels.name }}"


def _last(selector: str, s: Settings) -> str:
    return f"last_over_time({selector}[{s.series_gap_tolerance}])"


def _per_vm(selector: str, s: Settings, *extra: str) -> str:
    """The newest value per VM (and per ``extra`` labels), bridging short gaps and duplicate targets."""
    by = ", ".join(("namespace", "name", *extra))
    return f"max by ({by}) ({_last(selector, s)})"


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _lookup(metric: str, *labels: str) -> str:
    """A template fragment: ``printf`` of a selector for this alert's VM (and ``labels``), piped to query."""
    matchers = ",".join(f"{label}=%q" for label in ("namespace", "name", *labels))
    args = " ".join(f"$labels.{label}" for label in ("namespace", "name", *labels))
    return f"printf `{metric}{{{matchers}}}` {args} | query"


# --- freeze failures ------------------------------------------------------------------------------


def _freeze_failing(reason_matcher: str, s: Settings) -> str:
    """Newest failure (per VM and reason) that is newer than the newest consistent snapshot — or the
    VM has none — and younger than the failure window. The value is the failure's timestamp."""
    failures = f"{FREEZE_ERROR_TS}{{{reason_matcher}}}"
    return (
        "(\n"
        f"  {_per_vm(failures, s, 'reason')}\n"
        "  > on (namespace, name) group_left ()\n"
        "  (\n"
        f"    {_per_vm(LAST_CONSISTENT_TS, s)}\n"
        "    or on (namespace, name)\n"
        f"    0 * {_per_vm(failures, s)}\n"
        "  )\n"
        ")\n"
        f"> time() - {seconds(s.freeze_failure_window)}"
    )


def _add_volume_details(s: Settings) -> str:
    """Details of the newest add-volume failure, one series per VM: the current ``_info`` series wins
    over ones remembered from before a gap (which exist briefly when the details just changed)."""
    info = f'{FREEZE_ERROR_INFO}{{reason="{ADD_VOLUME}"}}'
    by = ", ".join(("namespace", "name", *FREEZE_DETAILS))
    return (
        "topk by (namespace, name) (1,\n"
        f"    2 * max by ({by}) ({info})\n"
        "  or\n"
        f"    max by ({by}) ({_last(info, s)})\n"
        ")"
    )


def freeze_add_volume_failed(s: Settings) -> Alert:
    failing = _freeze_failing(f'reason="{ADD_VOLUME}"', s)
    details = ", ".join(FREEZE_DETAILS)
    expr = (
        "(\n"
        f"{_indent(failing, 2)}\n"
        ")\n"
        f"+ on (namespace, name) group_left ({details})\n"
        "(\n"
        f"  0 * {_indent(_add_volume_details(s), 2).lstrip()}\n"
        ")\n"
        "or on (namespace, name)\n"
        "(\n"
        f"{_indent(failing, 2)}\n"
        ")"
    )
    description = (
        "Windows VSS could not add "
        "{{ with $labels.volume }}volume {{ . }}{{ else }}a volume{{ end }}"
        "{{ with $labels.mount_point }} (mount point {{ . }}){{ end }} "
        f"of VM {VM_REF} to the snapshot set, so the guest cannot be quiesced and its snapshots are "
        "at best crash-consistent."
        "{{ with $labels.cause }} Cause: {{ . }}"
        "{{ with $labels.hresult_name }} ({{ . }}{{ with $labels.hresult }} {{ . }}{{ end }}){{ end }}.{{ end }}"
        " Newest failure at {{ $value | humanizeTimestamp }}; no quiesced snapshot has succeeded since."
    )
    return Alert(
        name="KubevirtVssFreezeAddVolumeFailed",
        severity=CRITICAL,
        expr=expr,
        summary="A VM's filesystem freeze fails: VSS cannot add a volume to the snapshot set.",
        description=description,
    )


def freeze_failed(s: Settings) -> Alert:
    description = (
        f"Freezing or thawing the filesystems of VM {VM_REF} failed ({{{{ $labels.reason }}}}) at "
        "{{ $value | humanizeTimestamp }} and no quiesced snapshot has succeeded since."
        f"{{{{ range {_lookup(FREEZE_ERROR_INFO, 'reason')} }}}}"
        " Cause: {{ .Labels.cause }}"
        "{{ with .Labels.hresult_name }} ({{ . }}){{ end }}"
        "{{ with .Labels.volume }}, volume {{ . }}{{ end }}"
        "{{ with .Labels.mount_point }} ({{ . }}){{ end }}."
        "{{ end }}"
    )
    return Alert(
        name="KubevirtVssFreezeFailed",
        severity=WARNING,
        expr=_freeze_failing(f'reason!="{ADD_VOLUME}"', s),
        for_=s.freeze_failure_for,
        summary="A VM's filesystem freeze or thaw keeps failing; its snapshots are not quiesced.",
        description=description,
    )


def filesystem_stuck_frozen(s: Settings) -> Alert:
    expr = (
        f"time() - {_per_vm(FS_FROZEN_SINCE, s)} > {seconds(s.stuck_frozen_after)}\n"
        "and on (namespace, name)\n"
        f"{_per_vm(FS_FROZEN, s)} == 1"
    )
    description = (
        f"The guest filesystems of VM {VM_REF} have been reported frozen for "
        "{{ $value | humanizeDuration }}. Guest writes are held while frozen and the guest agent "
        "refuses most commands until a thaw; on Windows the state can be stale after VSS ended the "
        "hold by itself, which still needs a thaw."
    )
    return Alert(
        name="KubevirtVssFilesystemStuckFrozen",
        severity=CRITICAL,
        expr=expr,
        summary="A VM's guest filesystems have stayed frozen for minutes.",
        description=description,
    )


# --- guest agent ----------------------------------------------------------------------------------


def guest_agent_disconnected(s: Settings) -> Alert:
    # Only VMs whose agent once reported (guest OS known) or that take snapshots: a VM that never had
    # an agent and is never snapshotted has nothing to fix here.
    expr = (
        f"{_per_vm(AGENT_CONNECTED, s)} == 0\n"
        f"and on (namespace, name) {_last(RUNNING, s)}\n"
        "and on (namespace, name)\n"
        "(\n"
        f"  {_last(GUEST_OS_KNOWN, s)}\n"
        "  or on (namespace, name)\n"
        f"  {_per_vm(SNAPSHOTS, s)} > 0\n"
        ")"
    )
    description = (
        f"The QEMU guest agent of running VM {VM_REF} has been disconnected for more than "
        f"{s.agent_disconnected_for}. Snapshots taken now cannot quiesce the guest: they fail or are "
        "only crash-consistent."
    )
    return Alert(
        name="KubevirtVssGuestAgentDisconnected",
        severity=WARNING,
        expr=expr,
        for_=s.agent_disconnected_for,
        summary="A running VM's guest agent is disconnected; snapshots cannot quiesce it.",
        description=description,
    )


def guest_agent_unsupported(s: Settings) -> Alert:
    description = (
        f"KubeVirt reports the guest agent of VM {VM_REF} as not supported (condition "
        "AgentVersionNotSupported)"
        f"{{{{ range {_lookup(VM_INFO)} }}}}{{{{ with .Labels.agent_version }}}}; agent version {{{{ . }}}}"
        "{{ end }}{{ end }}. An agent that lacks or has disabled basic commands usually cannot freeze either."
    )
    return Alert(
        name="KubevirtVssGuestAgentUnsupported",
        severity=WARNING,
        expr=f"{_per_vm(AGENT_SUPPORTED, s)} == 0",
        for_=s.agent_disconnected_for,
        summary="A VM's guest agent is flagged as unsupported by KubeVirt.",
        description=description,
    )


def freeze_unavailable(s: Settings) -> Alert:
    # An unsupported agent is reported by its own alert; the freeze commands are usually off there too.
    expr = (
        f"{_per_vm(FSFREEZE_AVAILABLE, s)} == 0\n"
        "unless on (namespace, name)\n"
        f"{_per_vm(AGENT_SUPPORTED, s)} == 0"
    )
    description = (
        f"The guest agent of VM {VM_REF} lists guest-fsfreeze-freeze as disabled. On Windows this "
        "usually means the agent's VSS support failed to initialise (qga-vss.dll missing or not "
        "loadable); every snapshot of this VM is at best crash-consistent."
    )
    return Alert(
        name="KubevirtVssFreezeUnavailable",
        severity=WARNING,
        expr=expr,
        for_=s.agent_disconnected_for,
        summary="A VM's guest agent cannot freeze filesystems.",
        description=description,
    )


# --- snapshots ------------------------------------------------------------------------------------


def last_snapshot_not_consistent(s: Settings) -> Alert:
    description = (
        f"The newest finished snapshot of VM {VM_REF} is at consistency level {{{{ $value }}}} "
        "(0 failed, 1 crash-consistent; 2 or more is needed)."
        f"{{{{ range {_lookup(LAST_SNAPSHOT_INFO)} }}}}"
        " Snapshot {{ .Labels.snapshot }} ({{ .Labels.phase }}) is {{ .Labels.consistency }}"
        "{{ with .Labels.reason }}, reason {{ . }}{{ end }}"
        "{{ with .Labels.indications }}, indications {{ . }}{{ end }}."
        "{{ end }}"
    )
    return Alert(
        name="KubevirtVssLastSnapshotNotConsistent",
        severity=WARNING,
        expr=f"{_per_vm(LAST_SNAPSHOT_CONSISTENCY, s)} < 2",
        for_=s.snapshot_not_consistent_for,
        summary="A VM's newest snapshot failed or is only crash-consistent.",
        description=description,
    )


def no_consistent_snapshot_within_rpo(s: Settings) -> Alert:
    rpo = seconds(s.rpo)
    stopped = _last(STOPPED, s)
    # Branch 1: the newest consistent snapshot is too old. Branch 2: the VM has been taking snapshots
    # for longer than the RPO but none is consistent. A VM without snapshots matches neither; a
    # stopped VM's disks do not change, so its last snapshot does not age.
    expr = (
        "(\n"
        f"  time() - {_per_vm(LAST_CONSISTENT_TS, s)} > {rpo}\n"
        "  or on (namespace, name)\n"
        "  (\n"
        f"    time() - {_per_vm(SNAPSHOTS_OLDEST_TS, s)} > {rpo}\n"
        f"    unless on (namespace, name) {_last(LAST_CONSISTENT_TS, s)}\n"
        "  )\n"
        ")\n"
        f"unless on (namespace, name) {stopped}"
    )
    description = (
        f"VM {VM_REF} has no filesystem- or application-consistent snapshot from the last "
        f"{{{{ $value | humanizeDuration }}}} (recovery point objective {s.rpo}). A restore would start "
        "from a crash-consistent image or an older point in time."
        f"{{{{ range {_lookup(LAST_SNAPSHOT_INFO)} }}}}"
        " Newest snapshot: {{ .Labels.snapshot }}, {{ .Labels.consistency }}"
        "{{ with .Labels.reason }} ({{ . }}){{ end }}."
        "{{ end }}"
    )
    return Alert(
        name="KubevirtVssNoConsistentSnapshotWithinRPO",
        severity=WARNING,
        expr=expr,
        for_=s.rpo_for,
        summary="A VM that takes snapshots has no consistent snapshot within the recovery point objective.",
        description=description,
    )


# --- in-guest VSS health (guest report) -----------------------------------------------------------


def writers_failed(s: Settings) -> Alert:
    description = (
        f"The latest guest report of VM {VM_REF} shows {{{{ $value }}}} VSS writer(s) in a failed state:"
        f"{{{{ range {_lookup(WRITER_FAILED_INFO)} | sortByLabel `writer` }}}}"
        " {{ .Labels.writer }} (state {{ .Labels.state }}{{ with .Labels.last_error }}, {{ . }}{{ end }});"
        "{{ end }}"
        " The guest agent does not check writers, so snapshots still succeed but those applications "
        "are not quiesced."
    )
    return Alert(
        name="KubevirtVssWritersFailed",
        severity=WARNING,
        expr=f"{_per_vm(WRITERS_FAILED, s)} > 0",
        for_=s.guest_check_for,
        summary="VSS writers in a Windows guest are failed; its snapshots are not application-consistent.",
        description=description,
    )


def _check(name: str, s: Settings, *extra: str) -> str:
    return f"{_per_vm(f'{CHECK_OK}{{{name}}}', s, *extra)} == 0"


def provider_missing(s: Settings) -> Alert:
    description = (
        f"The latest guest report of VM {VM_REF} does not list the QEMU Guest Agent VSS Provider "
        "{3629d4ed-ee09-4e0e-9a5c-6d8ba2872aef} among the VSS providers. The agent asks for that "
        "provider by id, so every freeze of this guest fails or quiesces nothing."
    )
    return Alert(
        name="KubevirtVssProviderMissing",
        severity=WARNING,
        expr=_check('check="qga_vss_provider"', s),
        for_=s.guest_check_for,
        summary="The QEMU guest agent VSS provider is not registered in a Windows guest.",
        description=description,
    )


def service_disabled(s: Settings) -> Alert:
    description = (
        f"The latest guest report of VM {VM_REF} shows the service behind check {{{{ $labels.check }}}} "
        "(vss_service: Volume Shadow Copy, swprv_service: Microsoft Software Shadow Copy Provider) "
        "missing or disabled. VSS cannot start on demand, so freezes of this guest fail."
    )
    return Alert(
        name="KubevirtVssServiceDisabled",
        severity=WARNING,
        expr=_check('check=~"vss_service|swprv_service"', s, "check"),
        for_=s.guest_check_for,
        summary="A VSS service is missing or disabled in a Windows guest.",
        description=description,
    )


def system_volume_low_free_space(s: Settings) -> Alert:
    description = (
        f"The latest guest report of VM {VM_REF} shows too little free space on the system volume for "
        "VSS to work reliably. Free space per volume:"
        f"{{{{ range {_lookup(GUEST_VOLUME_FREE)} | sortByLabel `mount_point` }}}}"
        " {{ with .Labels.mount_point }}{{ . }}{{ else }}{{ .Labels.volume }}{{ end }}"
        " {{ .Value | humanize1024 }}B;"
        "{{ end }}"
    )
    return Alert(
        name="KubevirtVssSystemVolumeLowFreeSpace",
        severity=WARNING,
        expr=_check('check="system_volume_free_space"', s),
        for_=s.guest_check_for,
        summary="A Windows guest's system volume is low on free space for VSS.",
        description=description,
    )


def guest_report_stale(s: Settings) -> Alert:
    # max_over_time over the lookback remembers the newest report even after the exporter dropped the
    # series for being older than its maximum age; running VMs only (a stopped guest cannot report).
    expr = (
        f"time() - max by (namespace, name) (max_over_time({GUEST_REPORT_TS}[{s.guest_report_lookback}]))"
        f" > {seconds(s.guest_report_max_age)}\n"
        f"and on (namespace, name) {_last(RUNNING, s)}"
    )
    description = (
        f"No guest report has arrived from VM {VM_REF} for {{{{ $value | humanizeDuration }}}}. Writer, "
        "provider, service and free-space findings for this VM are unknown until the reporting task "
        "runs again."
    )
    return Alert(
        name="KubevirtVssGuestReportStale",
        severity=INFO,
        expr=expr,
        summary="A Windows guest stopped sending VSS health reports.",
        description=description,
    )


# --- the exporter itself --------------------------------------------------------------------------


def exporter_not_synced(s: Settings) -> Alert:
    description = (
        "The exporter {{ $labels.instance }} has not completed a list of {{ $labels.resource }} for "
        f"more than {s.exporter_not_synced_for}; the VM metrics it serves are incomplete or outdated."
    )
    return Alert(
        name="KubevirtVssExporterNotSynced",
        severity=WARNING,
        expr=f"{EXPORTER_SYNCED} == 0",
        for_=s.exporter_not_synced_for,
        summary="kubevirt-vss-exporter cannot sync a resource from the Kubernetes API.",
        description=description,
    )


def exporter_down(s: Settings) -> Alert:
    up = f"up{{{s.exporter_job_selector}}}"
    description = (
        "Prometheus has not scraped kubevirt-vss-exporter "
        "{{ with $labels.instance }}{{ . }} {{ end }}successfully for "
        f"{s.exporter_down_for} (target down, or no target matches {s.exporter_job_selector}). Freeze "
        "failures and snapshot consistency go unreported."
    )
    return Alert(
        name="KubevirtVssExporterDown",
        severity=WARNING,
        expr=f"{up} == 0\nor\nabsent({up})",
        for_=s.exporter_down_for,
        summary="kubevirt-vss-exporter is down or not scraped.",
        description=description,
    )


def groups(s: Settings = SETTINGS) -> tuple[Group, ...]:
    """Every alert, in its group, built with the given settings."""
    return (
        Group(
            f"{NAME}.freeze",
            (freeze_add_volume_failed(s), freeze_failed(s), filesystem_stuck_frozen(s)),
        ),
        Group(
            f"{NAME}.guest-agent",
            (guest_agent_disconnected(s), guest_agent_unsupported(s), freeze_unavailable(s)),
        ),
        Group(
            f"{NAME}.snapshots",
            (last_snapshot_not_consistent(s), no_consistent_snapshot_within_rpo(s)),
        ),
        Group(
            f"{NAME}.guest-vss",
            (
                writers_failed(s),
                provider_missing(s),
                service_disabled(s),
                system_volume_low_free_space(s),
                guest_report_stale(s),
            ),
        ),
        Group(f"{NAME}.exporter", (exporter_not_synced(s), exporter_down(s))),
    )


def rule_dict(alert: Alert, s: Settings) -> dict[str, object]:
    """One alerting rule in the Prometheus rule-file layout."""
    rule: dict[str, object] = {"alert": alert.name, "expr": alert.expr}
    if alert.for_:
        rule["for"] = alert.for_
    rule["labels"] = {"severity": alert.severity, **s.extra_labels}
    rule["annotations"] = {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": f"{s.runbook_base_url.rstrip('/')}/{alert.name}.md",
    }
    return rule


def group_dicts(s: Settings = SETTINGS) -> list[dict[str, object]]:
    """The ``groups`` list shared by the rules file and the PrometheusRule."""
    return [{"name": g.name, "rules": [rule_dict(a, s) for a in g.alerts]} for g in groups(s)]


def alert_names(s: Settings = SETTINGS) -> list[str]:
    return [alert.name for group in groups(s) for alert in group.alerts]
