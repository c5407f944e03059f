"""The alerting rules, stated once; ``alerts/generate.py`` renders them as a Prometheus rules file
and as a ``PrometheusRule`` object.

Design rules every alert follows:

* **Identity.** An alert's labels say which problem it is: ``namespace``, ``name`` and, where one VM
  can have several different problems of the same kind, ``reason`` or ``check``. Details that
  change while the problem stays the same — cause, HRESULT, volume, mount point, snapshot name,
  error text — are looked up in the annotations from the ``_info`` series, so a cause that becomes
  known later or a retry never resolves and re-opens a page.
* **Restarts.** Per-VM inputs are read through ``last_over_time(...[gap])`` and
  ``max by (namespace, name)``: a restarting or re-sharded exporter leaves a gap of a scrape or two
  and may be scraped twice for a while; neither may resolve or duplicate an alert. Freeze failures
  are judged from the timestamp gauges, never from ``increase()`` of the counter.
* **Causes before symptoms.** Alertmanager inhibits a symptom only while its cause is firing, so
  every cause has a shorter ``for`` than the symptoms it explains (see ``alerts/routing.py`` and
  ``test_causes_fire_before_their_symptoms``).
* **Words.** Every description says what is wrong, since when, what it risks and the first command
  to run (``Alert.what``, ``since``, ``risk``, ``command``).
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
    #: A filesystem frozen for longer than this (as Prometheus saw it) is stuck.
    stuck_frozen_after: str = "5m"
    #: How long the guest agent may be away (reboots, updates) before it is reported. A cause.
    agent_disconnected_for: str = "15m"
    #: How long KubeVirt must flag the agent as unsupported. A cause.
    agent_unsupported_for: str = "5m"
    #: How long the freeze command must stay disabled. A cause (and a symptom of an unsupported agent).
    freeze_unavailable_for: str = "10m"
    #: How long a guest-side finding (writers, provider, services, free space) must persist. A cause;
    #: guests report every 5 minutes, so this spans at least two reports.
    guest_check_for: str = "10m"
    #: How long a freeze failure must stay unresolved. A symptom of the agent and guest causes; a
    #: retry that succeeds within this time pages nobody.
    freeze_failure_for: str = "20m"
    #: Freeze failures older than this no longer alert; the RPO alert takes over.
    freeze_failure_window: str = "24h"
    #: A guest report older than this is stale (the guest script reports every 5 minutes).
    guest_report_max_age: str = "30m"
    #: How far back a vanished guest report is remembered for the staleness alert.
    guest_report_lookback: str = "6h"
    #: How long a snapshot storage failure must stay unresolved. A cause of a failed newest snapshot.
    storage_failure_for: str = "10m"
    #: How long the last snapshot must stay inconsistent. A symptom of freeze failures and their causes.
    snapshot_not_consistent_for: str = "25m"
    #: How long the RPO must stay exceeded. A symptom of everything above.
    rpo_for: str = "30m"
    #: Gaps in per-VM series up to this long (exporter restarts) are bridged.
    series_gap_tolerance: str = "5m"
    #: How long a reflector may stay unsynced (or stale).
    exporter_not_synced_for: str = "10m"
    #: A resource the API has not answered about for this long is stale. A healthy reflector hears at
    #: least once per watch timeout (5m by default): a reopened watch, an event or a bookmark.
    exporter_stale_after: str = "7m"
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
    """One alerting rule. The description is built from four sentences a person needs at night."""

    name: str
    severity: str
    expr: str
    summary: str
    #: What is wrong, naming the VM.
    what: str
    #: Since when.
    since: str
    #: What it risks.
    risk: str
    #: The first command to run.
    command: str
    for_: str | None = None

    @property
    def description(self) -> str:
        return f"{self.what} {self.since} {self.risk} First: {self.command}"


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
LAST_SNAPSHOT_TS = "kubevirt_vss_last_snapshot_timestamp_seconds"
LAST_CONSISTENT_TS = "kubevirt_vss_last_consistent_snapshot_timestamp_seconds"
FREEZE_ERROR_TS = "kubevirt_vss_last_freeze_error_timestamp_seconds"
FREEZE_ERROR_INFO = "kubevirt_vss_last_freeze_error_info"
STORAGE_FAILURES = "kubevirt_vss_snapshot_storage_failures_total"
STORAGE_FAILURE_TS = "kubevirt_vss_last_snapshot_storage_failure_timestamp_seconds"
EXPORTER_SYNCED = "kubevirt_vss_exporter_synced"
EXPORTER_LAST_CONTACT = "kubevirt_vss_exporter_last_contact_timestamp_seconds"
#: Prometheus' own series: the value is the time an alert with a ``for`` became active.
ALERTS_FOR_STATE = "ALERTS_FOR_STATE"

RUNNING = f'{VM_INFO}{{phase="Running"}}'
STOPPED = f'{VM_INFO}{{phase="Stopped"}}'
GUEST_OS_KNOWN = f'{VM_INFO}{{guest_os!=""}}'

ADD_VOLUME = "add_volume_to_snapshot_set"

VM_REF = "{{ $labels.namespace }}/{{ $labels.name }}"
DIAGNOSE = f"`kubevirt-vss-exporter diagnose {VM_REF}`."

#: ``printf`` matchers and arguments selecting this alert's VM in a template query.
_VM_MATCHERS = "namespace=%q,name=%q"
_VM_ARGS = "$labels.namespace $labels.name"


def _last(selector: str, s: Settings) -> str:
    return f"last_over_time({selector}[{s.series_gap_tolerance}])"


def _per_vm(selector: str, s: Settings, *extra: str) -> str:
    """The newest value per VM (and per ``extra`` labels), bridging short gaps and duplicate targets."""
    by = ", ".join(("namespace", "name", *extra))
    return f"max by ({by}) ({_last(selector, s)})"


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _query(expr: str, *labels: str) -> str:
    """A template pipeline running ``expr`` for this alert's VM: every ``@vm`` in ``expr`` becomes
    the VM's matchers, followed by ``=%q`` matchers for ``labels`` (taken from the alert)."""
    matchers = ",".join((_VM_MATCHERS, *(f"{label}=%q" for label in labels)))
    args = " ".join((_VM_ARGS, *(f"$labels.{label}" for label in labels)))
    return f"printf `{expr.replace('@vm', matchers)}` {' '.join([args] * expr.count('@vm'))} | query"


def _current(metric: str, s: Settings) -> str:
    """The current ``_info`` series, or the newest one remembered across a short gap (a restart)."""
    return f"topk(1, 2 * {metric}{{@vm}} or {_last(f'{metric}{{@vm}}', s)})"


def _timestamp(expr: str, *labels: str, otherwise: str = "", found: str = "{}") -> str:
    """A template fragment: ``found`` with the value of ``expr`` for this VM as a date in place of
    ``{}``, else ``otherwise``."""
    value = found.format("{{ . | first | value | humanizeTimestamp }}")
    fallback = f"{{{{ else }}}}{otherwise}" if otherwise else ""
    return f"{{{{ with {_query(expr, *labels)} }}}}{value}{fallback}{{{{ end }}}}"


def _active_since(alert: str, for_: str, *labels: str) -> str:
    """``Since <when Prometheus first saw the condition>.`` for an alert with a ``for``."""
    matchers = f'alertname="{alert}",@vm'
    return _timestamp(
        f"{ALERTS_FOR_STATE}{{{matchers}}}", *labels, found="Since {}.", otherwise=f"For at least {for_}."
    )


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


def _freeze_details(s: Settings) -> str:
    """Volume and cause of the newest error of this reason, from its ``_info`` series."""
    return (
        f"{{{{ range {_query(_current(FREEZE_ERROR_INFO, s), 'reason')} }}}}"
        "{{ if .Labels.volume }} Volume {{ .Labels.volume }}"
        "{{ with .Labels.mount_point }} (mounted at {{ . }}){{ end }}.{{ end }}"
        " Cause: {{ .Labels.cause }}"
        "{{ with .Labels.hresult_name }} ({{ . }}){{ end }}"
        "{{ with .Labels.hresult }}, HRESULT {{ . }}{{ end }}."
        "{{ end }}"
    )


def _freeze_since() -> str:
    last_quiesced = _timestamp(
        f"{LAST_CONSISTENT_TS}{{@vm}}",
        found="No quiesced snapshot since {}",
        otherwise="The VM has never had a quiesced snapshot",
    )
    return last_quiesced + "; newest failure at {{ $value | humanizeTimestamp }}."


_FREEZE_RISK = (
    "Snapshots taken meanwhile are not quiesced: KubeVirt retries until the snapshot's deadline and "
    "then fails it, so a restore would start from an older or crash-consistent point."
)


def freeze_add_volume_failed(s: Settings) -> Alert:
    return Alert(
        name="KubevirtVssFreezeAddVolumeFailed",
        severity=CRITICAL,
        expr=_freeze_failing(f'reason="{ADD_VOLUME}"', s),
        for_=s.freeze_failure_for,
        summary="A VM's filesystem freeze fails: VSS cannot add a volume to the snapshot set.",
        what=(
            f"Windows VSS in VM {VM_REF} refuses to add a volume to the snapshot set, so every freeze "
            "fails." + _freeze_details(s)
        ),
        since=_freeze_since(),
        risk=_FREEZE_RISK,
        command=DIAGNOSE,
    )


#: Thaw failures that broke the hold: the snapshot completes, only crash-consistent, and
#: KubevirtVssLastSnapshotNotConsistent names them as its reason. Reporting them here as well would
#: send two messages for one problem.
THAW_FAILURES = ("hold_writes_timeout", "thaw_failed")


def freeze_failed(s: Settings) -> Alert:
    others = "|".join((ADD_VOLUME, *THAW_FAILURES))
    return Alert(
        name="KubevirtVssFreezeFailed",
        severity=WARNING,
        expr=_freeze_failing(f'reason!~"{others}"', s),
        for_=s.freeze_failure_for,
        summary="A VM's filesystem freeze keeps failing; its snapshots are not quiesced.",
        what=(
            f"Freezing the filesystems of VM {VM_REF} fails (reason {{{{ $labels.reason }}}})."
            + _freeze_details(s)
        ),
        since=_freeze_since(),
        risk=_FREEZE_RISK,
        command=DIAGNOSE,
    )


def filesystem_stuck_frozen(s: Settings) -> Alert:
    # Measured from Prometheus' own history (``for``), which neither an exporter restart nor a
    # rollout resets; the exporter's frozen-since time is shown, not judged.
    frozen_since = _timestamp(
        f"{FS_FROZEN_SINCE}{{@vm}}", found="Frozen since {}.", otherwise=f"Frozen for at least {s.stuck_frozen_after}."
    )
    return Alert(
        name="KubevirtVssFilesystemStuckFrozen",
        severity=CRITICAL,
        expr=f"{_per_vm(FS_FROZEN, s)} == 1",
        for_=s.stuck_frozen_after,
        summary="A VM's guest filesystems have stayed frozen for minutes.",
        what=(
            f"The guest filesystems of VM {VM_REF} are frozen: guest writes are held and the guest agent "
            "refuses most commands until a thaw. On Windows the state can be stale after VSS ended the "
            "hold by itself; it still needs a thaw."
        ),
        since=frozen_since,
        risk="Applications in the guest stall on writes, and every further snapshot or backup of this VM fails.",
        command=DIAGNOSE,
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
    # KubeVirt keeps status.guestOSInfo after a disconnect, so a known guest OS means the agent
    # connected at some time; Prometheus' history says when it was last seen connected.
    once_connected = _query(f'{VM_INFO}{{@vm,guest_os!=""}}')
    last_connected = _timestamp(
        f"max_over_time(timestamp({AGENT_CONNECTED}{{@vm}} == 1)[1d:1m])",
        found="Last seen connected at {}.",
        otherwise="Not seen connected in the last day.",
    )
    what = (
        f"{{{{ if {once_connected} }}}}"
        f"The QEMU guest agent of running VM {VM_REF} is disconnected."
        "{{ else }}"
        f"The QEMU guest agent of running VM {VM_REF} has never connected: it is not installed, not "
        "running, or the VM has no guest-agent channel."
        "{{ end }}"
    )
    since = (
        f"{{{{ if {once_connected} }}}}{last_connected}"
        f"{{{{ else }}}}{_active_since('KubevirtVssGuestAgentDisconnected', s.agent_disconnected_for)}{{{{ end }}}}"
    )
    return Alert(
        name="KubevirtVssGuestAgentDisconnected",
        severity=WARNING,
        expr=expr,
        for_=s.agent_disconnected_for,
        summary="A running VM's guest agent is disconnected; snapshots cannot quiesce it.",
        what=what,
        since=since,
        risk="Snapshots taken now cannot quiesce the guest: they fail or are only crash-consistent.",
        command="`virtctl guestosinfo {{ $labels.name }} -n {{ $labels.namespace }}`.",
    )


def guest_agent_unsupported(s: Settings) -> Alert:
    version = (
        f"{{{{ range {_query(f'{VM_INFO}{{@vm}}')} }}}}{{{{ with .Labels.agent_version }}}}; agent version {{{{ . }}}}"
        "{{ end }}{{ end }}"
    )
    return Alert(
        name="KubevirtVssGuestAgentUnsupported",
        severity=WARNING,
        expr=f"{_per_vm(AGENT_SUPPORTED, s)} == 0",
        for_=s.agent_unsupported_for,
        summary="A VM's guest agent is flagged as unsupported by KubeVirt.",
        what=(
            f"KubeVirt reports the guest agent of VM {VM_REF} as not supported (condition "
            f"AgentVersionNotSupported{version})."
        ),
        since=_active_since("KubevirtVssGuestAgentUnsupported", s.agent_unsupported_for),
        risk="An agent that lacks or has disabled basic commands usually cannot freeze either: snapshots "
        "of this VM are at best crash-consistent.",
        command=(
            "`kubectl get vmi {{ $labels.name }} -n {{ $labels.namespace }} -o "
            "jsonpath='{.status.conditions[?(@.type==\"AgentVersionNotSupported\")].message}'`."
        ),
    )


def freeze_unavailable(s: Settings) -> Alert:
    # An unsupported agent is reported by its own alert; the freeze commands are usually off there too.
    expr = (
        f"{_per_vm(FSFREEZE_AVAILABLE, s)} == 0\n"
        "unless on (namespace, name)\n"
        f"{_per_vm(AGENT_SUPPORTED, s)} == 0"
    )
    return Alert(
        name="KubevirtVssFreezeUnavailable",
        severity=WARNING,
        expr=expr,
        for_=s.freeze_unavailable_for,
        summary="A VM's guest agent cannot freeze filesystems.",
        what=(
            f"The guest agent of VM {VM_REF} lists guest-fsfreeze-freeze as disabled. On Windows this "
            "usually means the agent's VSS support failed to initialise (qga-vss.dll missing or not "
            "loadable)."
        ),
        since=_active_since("KubevirtVssFreezeUnavailable", s.freeze_unavailable_for),
        risk="Every snapshot of this VM is at best crash-consistent.",
        command="`virtctl guestosinfo {{ $labels.name }} -n {{ $labels.namespace }}`.",
    )


# --- snapshots ------------------------------------------------------------------------------------


_CONSISTENCY_WORDS = (
    "{{ if eq .Labels.consistency \"failed\" }}failed"
    "{{ else if eq .Labels.consistency \"crash\" }}only crash-consistent"
    "{{ else }}{{ .Labels.consistency }}{{ end }}"
)


def last_snapshot_not_consistent(s: Settings) -> Alert:
    snapshot = (
        f"{{{{ range {_query(_current(LAST_SNAPSHOT_INFO, s))} }}}}"
        f" Snapshot {{{{ .Labels.snapshot }}}} ({{{{ .Labels.phase }}}}) is {_CONSISTENCY_WORDS}"
        "{{ with .Labels.reason }} (reason {{ . }}){{ end }}"
        "{{ with .Labels.indications }}; KubeVirt indications {{ . }}{{ end }}."
        "{{ end }}"
    )
    return Alert(
        name="KubevirtVssLastSnapshotNotConsistent",
        severity=WARNING,
        expr=f"{_per_vm(LAST_SNAPSHOT_CONSISTENCY, s)} < 2",
        for_=s.snapshot_not_consistent_for,
        summary="A VM's newest snapshot failed or is only crash-consistent.",
        what=f"The newest finished snapshot of VM {VM_REF} did not quiesce the guest." + snapshot,
        since=(
            _timestamp(f"{LAST_SNAPSHOT_TS}{{@vm}}", found="It was taken at {}", otherwise="Its time is unknown")
            + _timestamp(
                f"{LAST_CONSISTENT_TS}{{@vm}}",
                found="; the last quiesced snapshot is from {}.",
                otherwise="; the VM has never had a quiesced snapshot.",
            )
        ),
        risk="A crash-consistent snapshot restores like after a power cut (filesystem checks, database "
        "recovery, lost writes); a failed one cannot be restored at all.",
        command=DIAGNOSE,
    )


def snapshot_storage_failed(s: Settings) -> Alert:
    # Same shape as the freeze rules: the newest storage failure is newer than the newest consistent
    # snapshot (or the VM has none) and inside the window; the value is the failure's time.
    failures = _per_vm(STORAGE_FAILURE_TS, s)
    expr = (
        f"(\n  {failures}\n  > on (namespace, name)\n  (\n    {_per_vm(LAST_CONSISTENT_TS, s)}\n"
        f"    or on (namespace, name)\n    0 * {failures}\n  )\n)\n> time() - {seconds(s.freeze_failure_window)}"
    )
    reasons = (
        f"{{{{ range $i, $r := {_query(f'max by (reason) ({STORAGE_FAILURES}{{@vm}})')} | sortByLabel `reason` }}}}"
        "{{ if $i }},{{ else }} Failed snapshots by reason:{{ end }} {{ $r.Labels.reason }} {{ $r.Value }}"
        "{{ end }}."
    )
    return Alert(
        name="KubevirtVssSnapshotStorageFailed",
        severity=WARNING,
        expr=expr,
        for_=s.storage_failure_for,
        summary="A VM's snapshot failed in storage: the volume snapshots errored or are missing.",
        what=(
            f"A snapshot of VM {VM_REF} failed in storage, not in the guest: KubeVirt reports a VolumeSnapshot "
            "error, missing VolumeSnapshots, or a snapshot skipped because it was deleted." + reasons
        ),
        since=_timestamp(
            f"{LAST_CONSISTENT_TS}{{@vm}}",
            found="No consistent snapshot since {}",
            otherwise="The VM has never had a consistent snapshot",
        )
        + "; newest storage failure at {{ $value | humanizeTimestamp }}.",
        risk="There is no usable snapshot from that run (a snapshot whose VolumeSnapshots are missing "
        "cannot be restored); the next ones fail the same way until the storage is fixed.",
        command="`kubectl get vmsnapshot,volumesnapshot -n {{ $labels.namespace }}`.",
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
    newest = (
        f"{{{{ range {_query(_current(LAST_SNAPSHOT_INFO, s))} }}}}"
        f" Its newest snapshot, {{{{ .Labels.snapshot }}}}, is {_CONSISTENCY_WORDS}"
        "{{ with .Labels.reason }} ({{ . }}){{ end }}."
        "{{ end }}"
    )
    return Alert(
        name="KubevirtVssNoConsistentSnapshotWithinRPO",
        severity=WARNING,
        expr=expr,
        for_=s.rpo_for,
        summary="A VM that takes snapshots has no consistent snapshot within the recovery point objective.",
        what=(
            f"VM {VM_REF} has no filesystem- or application-consistent snapshot within its recovery point "
            f"objective of {s.rpo}." + newest
        ),
        since=_timestamp(
            f"{LAST_CONSISTENT_TS}{{@vm}}",
            found="The last consistent snapshot is from {}.",
            otherwise="It has never had one; its oldest snapshot is {{ $value | humanizeDuration }} old.",
        ),
        risk="A restore would start from a crash-consistent image or from further back than the RPO allows.",
        command=DIAGNOSE,
    )


# --- in-guest VSS health (guest report) -----------------------------------------------------------


def _in_guest(command: str) -> str:
    return f"in the guest, `{command}`."


def writers_failed(s: Settings) -> Alert:
    # vssadmin prints every state from 6 to 15 as "Failed"; the last error says why.
    writers = (
        f"{{{{ range $i, $w := {_query(f'{WRITER_FAILED_INFO}{{@vm}}')} | sortByLabel `writer` }}}}"
        "{{ if $i }};{{ end }} {{ $w.Labels.writer }}: Failed"
        "{{ with $w.Labels.last_error }} ({{ . | toLower }}){{ end }}"
        "{{ end }}."
    )
    return Alert(
        name="KubevirtVssWritersFailed",
        severity=WARNING,
        expr=f"{_per_vm(WRITERS_FAILED, s)} > 0",
        for_=s.guest_check_for,
        summary="VSS writers in a Windows guest are failed; its snapshots are not application-consistent.",
        what=f"The latest guest report of VM {VM_REF} shows {{{{ $value }}}} VSS writer(s) failed:" + writers,
        since=_active_since("KubevirtVssWritersFailed", s.guest_check_for),
        risk="The guest agent does not check writers: snapshots still succeed, but those applications are "
        "not quiesced and restore like after a power cut.",
        command=_in_guest("vssadmin list writers"),
    )


def _check(name: str, s: Settings, *extra: str) -> str:
    return f"{_per_vm(f'{CHECK_OK}{{{name}}}', s, *extra)} == 0"


def provider_missing(s: Settings) -> Alert:
    return Alert(
        name="KubevirtVssProviderMissing",
        severity=WARNING,
        expr=_check('check="qga_vss_provider"', s),
        for_=s.guest_check_for,
        summary="The QEMU guest agent VSS provider is not registered in a Windows guest.",
        what=(
            f"The latest guest report of VM {VM_REF} does not list the QEMU Guest Agent VSS Provider "
            "{3629d4ed-ee09-4e0e-9a5c-6d8ba2872aef} among the VSS providers."
        ),
        since=_active_since("KubevirtVssProviderMissing", s.guest_check_for),
        risk="The agent asks for that provider by id, so every freeze of this guest fails or quiesces nothing.",
        command=_in_guest("vssadmin list providers"),
    )


def service_disabled(s: Settings) -> Alert:
    service = (
        '{{ if eq $labels.check "vss_service" }}Volume Shadow Copy service (VSS)'
        "{{ else }}Microsoft Software Shadow Copy Provider service (swprv){{ end }}"
    )
    command = '{{ if eq $labels.check "vss_service" }}sc.exe qc VSS{{ else }}sc.exe qc swprv{{ end }}'
    return Alert(
        name="KubevirtVssServiceDisabled",
        severity=WARNING,
        expr=_check('check=~"vss_service|swprv_service"', s, "check"),
        for_=s.guest_check_for,
        summary="A VSS service is missing or disabled in a Windows guest.",
        what=f"The latest guest report of VM {VM_REF} shows the {service} missing or disabled.",
        since=_active_since("KubevirtVssServiceDisabled", s.guest_check_for, "check"),
        risk="VSS cannot start on demand, so freezes of this guest fail or its snapshots are only "
        "crash-consistent.",
        command=_in_guest(command),
    )


def system_volume_low_free_space(s: Settings) -> Alert:
    volumes = (
        f"{{{{ range $i, $v := {_query(f'{GUEST_VOLUME_FREE}{{@vm}}')} | sortByLabel `mount_point` }}}}"
        "{{ if $i }};{{ end }} {{ with $v.Labels.mount_point }}{{ . }}{{ else }}{{ $v.Labels.volume }}{{ end }}"
        " {{ $v.Value | humanize1024 }}B"
        "{{ end }}."
    )
    return Alert(
        name="KubevirtVssSystemVolumeLowFreeSpace",
        severity=WARNING,
        expr=_check('check="system_volume_free_space"', s),
        for_=s.guest_check_for,
        summary="A Windows guest's system volume is low on free space for VSS.",
        what=(
            f"The latest guest report of VM {VM_REF} shows too little free space on the system volume for "
            "VSS to work reliably. Free space per volume:" + volumes
        ),
        since=_active_since("KubevirtVssSystemVolumeLowFreeSpace", s.guest_check_for),
        risk="VSS needs free space for its shadow copy storage: freezes start failing or shadow copies are "
        "deleted early.",
        command=_in_guest("vssadmin list shadowstorage"),
    )


def guest_report_stale(s: Settings) -> Alert:
    # max_over_time over the lookback remembers the newest report even after the exporter dropped the
    # series for being older than its maximum age; running VMs only (a stopped guest cannot report).
    newest = f"max by (namespace, name) (max_over_time({GUEST_REPORT_TS}[{s.guest_report_lookback}]))"
    expr = f"time() - {newest} > {seconds(s.guest_report_max_age)}\nand on (namespace, name) {_last(RUNNING, s)}"
    return Alert(
        name="KubevirtVssGuestReportStale",
        severity=INFO,
        expr=expr,
        summary="A Windows guest stopped sending VSS health reports.",
        what=f"No guest report has arrived from VM {VM_REF} for {{{{ $value | humanizeDuration }}}}.",
        since=_timestamp(
            f"max_over_time({GUEST_REPORT_TS}{{@vm}}[{s.guest_report_lookback}])",
            found="The last one arrived at {}.",
            otherwise=f"None arrived in the last {s.guest_report_lookback}.",
        ),
        risk="Writer, provider, service and free-space findings for this VM are unknown until the reporting "
        "task runs again.",
        command=_in_guest(
            "Get-ScheduledTaskInfo -TaskPath '\\kubevirt-vss-exporter\\' -TaskName 'Send VSS guest report'"
        ),
    )


# --- the exporter itself --------------------------------------------------------------------------


def exporter_not_synced(s: Settings) -> Alert:
    return Alert(
        name="KubevirtVssExporterNotSynced",
        severity=WARNING,
        # Unsynced: the list keeps failing. Stale: the API has not answered for this resource in a while,
        # although the exporter still serves (and stays ready with) the last state it listed.
        expr=f"{EXPORTER_SYNCED} == 0\nor\ntime() - {EXPORTER_LAST_CONTACT} > {seconds(s.exporter_stale_after)}",
        for_=s.exporter_not_synced_for,
        summary="kubevirt-vss-exporter cannot sync a resource from the Kubernetes API.",
        what=(
            "The exporter {{ $labels.instance }} has not completed a list of {{ $labels.resource }}, or has "
            f"heard nothing about it from the API for more than {s.exporter_stale_after}."
        ),
        since=f"For more than {s.exporter_not_synced_for}.",
        risk="The VM metrics it serves are incomplete or outdated, so VM alerts may be missing or stale.",
        command="`kubectl -n kubevirt-vss-exporter logs deploy/kubevirt-vss-exporter`.",
    )


def exporter_down(s: Settings) -> Alert:
    up = f"up{{{s.exporter_job_selector}}}"
    return Alert(
        name="KubevirtVssExporterDown",
        severity=WARNING,
        expr=f"{up} == 0\nor\nabsent({up})",
        for_=s.exporter_down_for,
        summary="kubevirt-vss-exporter is down or not scraped.",
        what=(
            "Prometheus cannot scrape kubevirt-vss-exporter {{ with $labels.instance }}{{ . }} {{ end }}"
            f"(target down, or no target matches {s.exporter_job_selector})."
        ),
        since=f"For more than {s.exporter_down_for}.",
        risk="Freeze failures and snapshot consistency go unreported; VM alerts resolve as their series go stale.",
        command="`kubectl -n kubevirt-vss-exporter get pods -l app.kubernetes.io/name=kubevirt-vss-exporter`.",
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
            (last_snapshot_not_consistent(s), snapshot_storage_failed(s), no_consistent_snapshot_within_rpo(s)),
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
