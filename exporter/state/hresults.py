"""Data tables for the freeze-error classifier: vocabularies, HRESULTs, message templates, advice.

Values follow vss.h and the qemu-ga requester messages; the classifier holds the logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

REASONS: Final[tuple[str, ...]] = (
    "add_volume_to_snapshot_set",
    "start_snapshot_set",
    "do_snapshot_set",
    "prepare_for_backup",
    "writer_metadata",
    "vss_init",
    "frozen_event_timeout",
    "hold_writes_timeout",
    "thaw_failed",
    "agent_timeout",
    "agent_not_connected",
    "agent_frozen_state",
    "command_disabled",
    "linux_freeze_failed",
    "fsfreeze_hook_failed",
    "migration_in_progress",
    "vm_not_running",
    "other",
)

CAUSES: Final[tuple[str, ...]] = (
    "volume_not_supported",
    "provider_not_registered",
    "provider_veto",
    "unexpected_provider_error",
    "snapshot_set_in_progress",
    "insufficient_storage",
    "max_volumes_reached",
    "max_snapshots_reached",
    "flush_writes_timeout",
    "hold_writes_timeout",
    "writer_error",
    "access_denied",
    "service_disabled",
    "bad_state",
    "unknown",
)

FREEZE: Final = "guest-fsfreeze-freeze"
THAW: Final = "guest-fsfreeze-thaw"


@dataclass(frozen=True, slots=True)
class HResult:
    """One HRESULT: its vss.h / winerror.h name, what it means, what usually causes it, its cause label."""

    value: int
    name: str
    meaning: str
    typical_cause: str
    cause: str


def _table(*rows: HResult) -> MappingProxyType[int, HResult]:
    return MappingProxyType({row.value: row for row in rows})


HRESULTS: Final[MappingProxyType[int, HResult]] = _table(
    HResult(
        0x80042301,
        "VSS_E_BAD_STATE",
        "The call is not valid in the current VSS state (calls out of order).",
        "A thaw without a matching freeze, or a stale backup session.",
        "bad_state",
    ),
    HResult(
        0x80042302,
        "VSS_E_UNEXPECTED",
        "Unexpected VSS error; details are in the Application event log.",
        "The VSS service crashed or its COM registration is damaged.",
        "unknown",
    ),
    HResult(
        0x80042303,
        "VSS_E_PROVIDER_ALREADY_REGISTERED",
        "The provider is already registered.",
        "Reinstalling the QEMU Guest Agent VSS Provider over an existing registration.",
        "unknown",
    ),
    HResult(
        0x80042304,
        "VSS_E_PROVIDER_NOT_REGISTERED",
        "The requested provider is not registered.",
        "The QEMU Guest Agent VSS Provider is not installed, was removed, or its COM+ application is broken.",
        "provider_not_registered",
    ),
    HResult(
        0x80042306,
        "VSS_E_PROVIDER_VETO",
        "The provider refused the operation; the event log has details.",
        "A third-party filter driver, or a provider that cannot create the snapshot.",
        "provider_veto",
    ),
    HResult(0x80042307, "VSS_E_PROVIDER_IN_USE", "The provider is in use.", "", "unknown"),
    HResult(
        0x80042308,
        "VSS_E_OBJECT_NOT_FOUND",
        "The volume or object was not found.",
        "A wrong name in guest-fsfreeze-freeze-list, or a volume that was removed.",
        "unknown",
    ),
    HResult(
        0x8004230C,
        "VSS_E_VOLUME_NOT_SUPPORTED",
        "No provider supports this volume.",
        "FAT, exFAT, CDFS or RAW volumes, removable media.",
        "volume_not_supported",
    ),
    HResult(0x8004230D, "VSS_E_OBJECT_ALREADY_EXISTS", "The object already exists.", "", "unknown"),
    HResult(
        0x8004230E,
        "VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER",
        "The given provider does not support this volume.",
        "A CD-ROM, removable or unsupported volume, or the QGA provider refused the volume.",
        "volume_not_supported",
    ),
    HResult(
        0x8004230F,
        "VSS_E_UNEXPECTED_PROVIDER_ERROR",
        "The provider returned an unexpected error.",
        "The QGA provider timed out waiting for thaw, or its service cannot start.",
        "unexpected_provider_error",
    ),
    HResult(0x80042310, "VSS_E_CORRUPT_XML_DOCUMENT", "An XML document is corrupt.", "", "unknown"),
    HResult(0x80042311, "VSS_E_INVALID_XML_DOCUMENT", "An XML document is not valid.", "", "unknown"),
    HResult(
        0x80042312,
        "VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED",
        "The snapshot set already holds the maximum number of volumes (64).",
        "Many volumes or mount points in the guest.",
        "max_volumes_reached",
    ),
    HResult(
        0x80042313,
        "VSS_E_FLUSH_WRITES_TIMEOUT",
        "The system could not flush I/O writes in time.",
        "Heavy I/O in the guest.",
        "flush_writes_timeout",
    ),
    HResult(
        0x80042314,
        "VSS_E_HOLD_WRITES_TIMEOUT",
        "The system could not hold I/O writes (10-second limit).",
        "Heavy I/O, or thaw more than 10 seconds after freeze.",
        "hold_writes_timeout",
    ),
    HResult(
        0x80042315,
        "VSS_E_UNEXPECTED_WRITER_ERROR",
        "A VSS writer returned an unexpected error.",
        "A failed writer (SQL Server, Exchange, WMI, ...).",
        "writer_error",
    ),
    HResult(
        0x80042316,
        "VSS_E_SNAPSHOT_SET_IN_PROGRESS",
        "Another shadow copy creation is already in progress.",
        "Another backup (Windows Server Backup, Veeam, antivirus, a restore point) running at the same time.",
        "snapshot_set_in_progress",
    ),
    HResult(
        0x80042317,
        "VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED",
        "The volume already has the maximum number of shadow copies.",
        "Many old shadow copies kept on the volume.",
        "max_snapshots_reached",
    ),
    HResult(
        0x80042318,
        "VSS_E_WRITER_INFRASTRUCTURE",
        "The writer infrastructure is not operating properly.",
        "The VSS or COM+ Event System service is stopped, or VSS/COM+ is damaged.",
        "writer_error",
    ),
    HResult(0x80042319, "VSS_E_WRITER_NOT_RESPONDING", "A writer is not responding.", "A hung writer.", "writer_error"),
    HResult(0x8004231A, "VSS_E_WRITER_ALREADY_SUBSCRIBED", "The writer is already subscribed.", "", "unknown"),
    HResult(
        0x8004231B,
        "VSS_E_UNSUPPORTED_CONTEXT",
        "The snapshot context is not supported.",
        "Client Windows editions without transportable snapshots; qemu-ga retries without them.",
        "unknown",
    ),
    HResult(0x8004231D, "VSS_E_VOLUME_IN_USE", "The volume is in use.", "", "unknown"),
    HResult(
        0x8004231E,
        "VSS_E_MAXIMUM_DIFFAREA_ASSOCIATIONS_REACHED",
        "The maximum number of shadow storage associations was reached.",
        "",
        "unknown",
    ),
    HResult(
        0x8004231F,
        "VSS_E_INSUFFICIENT_STORAGE",
        "Not enough disk space for the shadow copy storage area.",
        "Low free space or a small shadow storage limit.",
        "insufficient_storage",
    ),
    HResult(
        0x80042327,
        "VSS_E_REBOOT_REQUIRED",
        "A reboot is required.",
        "Pending reboot after updates or a driver installation.",
        "unknown",
    ),
    HResult(
        0x80042328,
        "VSS_E_TRANSACTION_FREEZE_TIMEOUT",
        "Transactional file systems could not be frozen in time.",
        "",
        "unknown",
    ),
    HResult(
        0x80042329,
        "VSS_E_TRANSACTION_THAW_TIMEOUT",
        "Transactional file systems could not be thawed in time.",
        "",
        "unknown",
    ),
    HResult(0x8004232C, "VSS_E_NESTED_VOLUME_LIMIT", "The nested volume limit was reached.", "", "unknown"),
    HResult(0x8004232F, "VSS_E_NOT_SUPPORTED", "The operation is not supported.", "", "unknown"),
    HResult(0x80042336, "VSS_E_WRITERERROR_PARTIAL_FAILURE", "Some writers failed.", "Failed writers.", "writer_error"),
    HResult(
        0x800423F0,
        "VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT",
        "A writer reports the shadow copy as inconsistent.",
        "",
        "writer_error",
    ),
    HResult(
        0x800423F1,
        "VSS_E_WRITERERROR_OUTOFRESOURCES",
        "A writer ran out of resources.",
        "Memory pressure.",
        "writer_error",
    ),
    HResult(
        0x800423F2,
        "VSS_E_WRITERERROR_TIMEOUT",
        "A writer timed out between freeze and thaw.",
        "Heavy I/O or a long freeze.",
        "writer_error",
    ),
    HResult(
        0x800423F3, "VSS_E_WRITERERROR_RETRYABLE", "A writer failed with a transient error; retry.", "", "writer_error"
    ),
    HResult(
        0x800423F4,
        "VSS_E_WRITERERROR_NONRETRYABLE",
        "A writer failed with a non-transient error.",
        "A broken writer that needs a service restart or a reboot.",
        "writer_error",
    ),
    HResult(
        0x800423F5,
        "VSS_E_WRITERERROR_RECOVERY_FAILED",
        "A writer failed to recover the shadow copy.",
        "",
        "writer_error",
    ),
    HResult(0x80042409, "VSS_E_WRITER_STATUS_NOT_AVAILABLE", "Writer status is not available.", "", "writer_error"),
    HResult(
        0x80070005,
        "E_ACCESSDENIED",
        "Access is denied: the caller lacks the privileges VSS requires.",
        "qemu-ga not running as LocalSystem, or DCOM/COM+ permissions (Event ID 8194).",
        "access_denied",
    ),
    HResult(0x80070057, "E_INVALIDARG", "An argument is not valid.", "", "unknown"),
    HResult(0x8007000E, "E_OUTOFMEMORY", "Out of memory.", "", "unknown"),
    HResult(
        0x8007007E,
        "ERROR_MOD_NOT_FOUND",
        "The specified module could not be found.",
        "qga-vss.dll or VSSAPI.DLL missing.",
        "unknown",
    ),
    HResult(
        0x8007007F,
        "ERROR_PROC_NOT_FOUND",
        "The specified procedure could not be found.",
        "VSSAPI.DLL lacks CreateVssBackupComponents, or loading it failed when qemu-ga started.",
        "unknown",
    ),
    HResult(0x80004004, "E_ABORT", "The operation was aborted.", "", "unknown"),
    HResult(
        0x80004005, "E_FAIL", "Unspecified error.", "qemu-ga uses it for its own frozen-event timeouts.", "unknown"
    ),
    HResult(
        0x80070422,
        "ERROR_SERVICE_DISABLED",
        "The service cannot be started because it is disabled.",
        "The Volume Shadow Copy (VSS) service is disabled.",
        "service_disabled",
    ),
)


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A family of guest-agent or KubeVirt messages: case-insensitive patterns and the command that emits them."""

    reason: str
    patterns: tuple[str, ...]
    command: str | None
    # What failed when the thaw command reports this message (requester_thaw's default branch).
    thaw_reason: str | None = None


# The template matching earliest in the message wins; at the same position the earlier entry wins, so the
# more specific come first and start where the general ones do.
MESSAGE_TEMPLATES: Final[tuple[MessageTemplate, ...]] = (
    MessageTemplate(
        "agent_frozen_state", (r"\bcommand \S{1,64} has been disabled: the agent is in frozen state",), None
    ),
    MessageTemplate(
        "command_disabled",
        (
            r"\bcommand \S{1,64} has been disabled",
            r"the command is not allowed",
            # libvirt's text for the CommandDisabled class when qemu-ga sent no description.
            r"The command has been disabled for this instance",
        ),
        None,
    ),
    MessageTemplate(
        "hold_writes_timeout",
        (
            r"couldn't hold writes",
            r"fsfreeze is limited",
            # virt-freezer prints this only after the thaw reported the 10-second limit.
            r"stop the VM and backup while down",
        ),
        THAW,
    ),
    MessageTemplate(
        "frozen_event_timeout",
        (
            r"timeout when try to receive Frozen event",
            r"DoSnapshotSet exited without Frozen event",
            r"couldn't receive Frozen event",
        ),
        FREEZE,
    ),
    MessageTemplate(
        "vss_init",
        (
            r"fsfreeze not possible as VSS failed to initiali[sz]e",
            r"this feature or command is not currently supported",
            r"failed to create VSS backup components",
            r"CreateVssBackupComponents proc address absent",
            r"failed to initiali[sz]e for backup",
            r"failed to set backup state",
            r"failed to set backup context",
            r"failed to load [^\r\n]{0,300}?qga-vss\.dll",
            r"failed to load VSSAPI\.DLL",
            r"failed to get proc address from VSSAPI\.DLL",
            r"failed to CoInitializeSecurity",
            r"VSS provider is not supported in this OS version",
            r"failed to create event",
        ),
        FREEZE,
    ),
    MessageTemplate(
        "thaw_failed",
        (
            # requester_thaw: VSS_E_UNEXPECTED_PROVIDER_ERROR while the provider's timeout event is not set,
            # so not the hold limit.
            r"unexpected error in VSS provider",
            r"failed to complete backup",
            r"Did you freeze the volumes\?",
            r"failed to thaw /",
        ),
        THAW,
    ),
    MessageTemplate(
        "writer_metadata",
        (
            r"failed to gather writer (?:metadata|status)",
            r"failed to get writer metadata",
            r"failed to get identity of writer",
            r"failed to get file counts of",
            r"failed to get component",
            r"failed to add component",
        ),
        FREEZE,
    ),
    MessageTemplate("start_snapshot_set", (r"failed to start snapshot set",), FREEZE),
    MessageTemplate(
        "add_volume_to_snapshot_set",
        (
            r"failed to add .{1,4096}? to snapshot\b",
            r"failed to find first volume",
        ),
        FREEZE,
    ),
    MessageTemplate("prepare_for_backup", (r"failed to prepare for backup",), FREEZE),
    MessageTemplate("do_snapshot_set", (r"failed to do snapshot set",), FREEZE, thaw_reason="thaw_failed"),
    MessageTemplate("migration_in_progress", (r"VMI is currently during migration",), FREEZE),
    MessageTemplate(
        "fsfreeze_hook_failed",
        (
            r"fsfreeze[ -]hook",
            r"child process has terminated abnormally",
        ),
        None,
    ),
    MessageTemplate(
        "linux_freeze_failed",
        (
            r"failed to freeze /",
            r"failed to open /",
            r"failed to open mtab file",
            r"Mount point '[^']{0,4096}' not found",
        ),
        FREEZE,
    ),
    MessageTemplate(
        "agent_timeout",
        (
            r"Guest agent not available for now",
            # libvirt >= 8.x: VIR_ERR_AGENT_COMMAND_TIMEOUT and the sync timeout.
            r"guest agent didn't respond to (?:command|synchronization) within",
            r"guest agent command timed out",
            # virt-api gives up on virt-handler after 10 s; the freeze may still complete in the guest.
            r"context deadline exceeded",
            r"Client\.Timeout exceeded",
            # virt-freezer prints this only when the error was "Guest agent not available for now".
            r"please make sure guest agent (?:and VSS )?(?:is|are) run{1,3}ing",
        ),
        FREEZE,
    ),
    MessageTemplate(
        "agent_not_connected",
        (
            r"QEMU guest agent is not connected",
            r"Guest agent disappeared while executing command",
            r"error opening path \S{0,64}org\.qemu\.guest_agent",
            r"VMI does not have guest agent connected",
            r"QEMU guest agent is not configured",
            r"No guest agent, exiting",
        ),
        None,
    ),
    MessageTemplate(
        "vm_not_running",
        (
            r"\bVMI? is not running",
            r"\bVM domain not running",
            r"\bdomain is not running",
        ),
        None,
    ),
)


@dataclass(frozen=True, slots=True)
class TextCause:
    """Message text that names a cause when no HRESULT does; ``overrides_hresult`` when the text is decisive."""

    pattern: str
    cause: str
    overrides_hresult: bool = False


# Searched in order after the HRESULT lookup (except overriding rules, which come first).
TEXT_CAUSES: Final[tuple[TextCause, ...]] = (
    # qemu-ga prints this only after the hold limit or the provider's thaw timeout, whatever the HRESULT says.
    TextCause(
        r"couldn't hold writes|fsfreeze is limited up to 10 seconds|stop the VM and backup while down",
        "hold_writes_timeout",
        overrides_hresult=True,
    ),
    # Windows system text of E_ACCESSDENIED in common UI languages, and the Linux errno text.
    TextCause(
        r"Access is denied|Zugriff verweigert|Acc[eè]s refus[eé]|Acceso denegado|Accesso negato"
        r"|Acesso negado|De toegang is geweigerd|Odmowa dost[eę]pu|Отказано в доступе"
        r"|アクセスが拒否されました|拒绝访问|存取被拒|Permission denied",
        "access_denied",
    ),
    # ERROR_SERVICE_DISABLED system text (English, German, French).
    TextCause(r"because it is disabled|da er deaktiviert ist|parce qu'il est d[eé]sactiv[eé]", "service_disabled"),
    # The requester emits these only for one HRESULT each.
    TextCause(r"unexpected error in VSS provider", "unexpected_provider_error"),
    TextCause(r"Did you freeze the volumes\?", "bad_state"),
)


@dataclass(frozen=True, slots=True)
class Advice:
    """One-line summary and 1-3 sentences of remediation."""

    summary: str
    remediation: str


# Summaries may contain {volume} and {command}; they are replaced literally, never with str.format.
REASON_ADVICE: Final[MappingProxyType[str, Advice]] = MappingProxyType(
    {
        "add_volume_to_snapshot_set": Advice(
            "VSS refused to add {volume} to the snapshot set",
            "Check in the guest that `vssadmin list providers` shows the QEMU Guest Agent VSS Provider "
            "{3629d4ed-ee09-4e0e-9a5c-6d8ba2872aef} and that the volume is an online NTFS or ReFS fixed volume. "
            "qemu-ga stops at the first volume it cannot add, so every fixed volume must qualify.",
        ),
        "start_snapshot_set": Advice(
            "VSS could not start a new snapshot set",
            "Another shadow copy is usually being made at the same moment (Windows Server Backup, a backup agent, "
            "antivirus, a restore point): check `vssadmin list shadows` and the Application event log, and stagger "
            "schedules so they do not overlap with KubeVirt snapshots.",
        ),
        "do_snapshot_set": Advice(
            "VSS failed while creating the snapshot set",
            "Look in the guest's Application event log (source VSS) for the writer or provider that failed and run "
            "`vssadmin list writers`; shadow storage space, write-flush timeouts and provider vetoes are the usual "
            "reasons. Retry when the guest is less busy.",
        ),
        "prepare_for_backup": Advice(
            "VSS writers failed to prepare for the backup",
            "A writer vetoed or failed: run `vssadmin list writers` in the guest and restart the service behind "
            "every writer that is not `[1] Stable` (reboot if the System Writer is failed), then retry.",
        ),
        "writer_metadata": Advice(
            "VSS could not collect writer metadata or status",
            "The writer infrastructure is unhealthy: make sure the VSS and COM+ Event System services run, check "
            "`vssadmin list writers` in the guest, restart the services of failed writers, and reboot the guest if "
            "writers stay failed.",
        ),
        "vss_init": Advice(
            "The guest agent failed to set up VSS for the freeze",
            "Reinstall the guest agent from a current virtio-win release (qga-vss.dll present, 64-bit agent on "
            "64-bit Windows, running as LocalSystem) and re-register the provider with `qemu-ga.exe -s vss-install`. "
            "Older agents in this state also show the freeze commands disabled and the VMI condition "
            "AgentVersionNotSupported.",
        ),
        "frozen_event_timeout": Advice(
            "The QEMU VSS provider never signalled that writes were frozen",
            "Writers or the provider were too slow or aborted before the freeze: check `vssadmin list writers` and "
            "the Application event log, reduce I/O during snapshots, and update an old guest agent (older builds "
            "waited only 10 seconds for the frozen event).",
        ),
        "hold_writes_timeout": Advice(
            "The write hold ended before the thaw (VSS holds writes for at most 10 seconds)",
            "The disk snapshot was taken after VSS had already thawed, so it is only crash-consistent. Reduce I/O "
            "during snapshots, make the storage snapshot faster, and use a KubeVirt release that marks such "
            "snapshots QuiesceTimeout (1.6.4, 1.7.2, 1.8 or newer).",
        ),
        "thaw_failed": Advice(
            "Thawing the guest file systems failed",
            "Check whether the guest is still frozen (VMI `status.fsFreezeStatus`, or `guest-fsfreeze-status`) and "
            "run `virtctl unfreeze <vm>` if it is. Treat the snapshot taken during this freeze as crash-consistent.",
        ),
        "agent_timeout": Advice(
            "The freeze call timed out waiting for the guest agent; the guest may in fact have frozen",
            "Check the VMI `status.fsFreezeStatus` (or `guest-fsfreeze-status`) and run `virtctl unfreeze <vm>` if "
            "it says frozen. A Windows VSS freeze can outlast the 5-second agent timeout of KubeVirt before 1.6, "
            "so upgrade KubeVirt and make sure the guest agent and the VSS service are running.",
        ),
        "agent_not_connected": Advice(
            "The guest agent is not connected, so nothing was frozen",
            "Install and start the QEMU guest agent in the guest (virtio-win guest tools on Windows, the "
            "qemu-guest-agent package on Linux) and check that the VMI shows the AgentConnected condition; until "
            "then snapshots are only crash-consistent.",
        ),
        "agent_frozen_state": Advice(
            "The guest agent is still in frozen state and refuses the command",
            "A previous freeze was never thawed, or VSS thawed on its own while the agent still believes it is "
            "frozen: run `virtctl unfreeze <vm>`, and check that no backup hook or virt-freezer run froze the guest "
            "and exited without thawing.",
        ),
        "command_disabled": Advice(
            "The guest agent has {command} disabled",
            "Either the agent is frozen (check `status.fsFreezeStatus`, thaw with `virtctl unfreeze <vm>`) or the "
            "command is blocked by the agent's `block-rpcs`/`allow-rpcs` configuration or, before qemu-ga 9.1, by "
            "a failed VSS initialisation; remove the block and restart the agent.",
        ),
        "linux_freeze_failed": Advice(
            "The Linux guest agent could not freeze {volume}",
            "Check that mount in the guest: SELinux or AppArmor denials (`Permission denied`), FUSE, NFS or overlay "
            "mounts and btrfs subvolumes such as /.snapshots are the usual culprits. Adjust the policy for qemu-ga "
            "or fix the mount, then retry.",
        ),
        "fsfreeze_hook_failed": Advice(
            "The guest's fsfreeze hook script failed",
            "Run the hook by hand in the guest (`/etc/qemu/fsfreeze-hook freeze`), fix the failing script in "
            "fsfreeze-hook.d, and retry; the agent aborts the freeze while a hook fails.",
        ),
        "migration_in_progress": Advice(
            "The VM was migrating, so the freeze was refused",
            "This is transient: retry the snapshot once the live migration has finished.",
        ),
        "vm_not_running": Advice(
            "The VM is not running, so there was nothing to freeze",
            "Nothing to fix in the guest: a stopped VM is snapshotted offline. If it should be running, find out "
            "why it stopped.",
        ),
        "other": Advice(
            "Unrecognised freeze error",
            "Read the message and the guest's Application event log (sources VSS and qemu-ga); the classifier does "
            "not know this text yet.",
        ),
    }
)

# For a volume named by GUID: qemu-ga prints the GUID only when the volume has no drive letter or mount folder.
GUID_VOLUME_REMEDIATION: Final = (
    "{volume} is a fixed volume without a drive letter or mount folder that the QEMU VSS provider refused: "
    "find it in the VMI's guestosinfo fsInfo (diskName) or in the guest with `mountvol` or "
    "`Get-Volume | Format-List UniqueId,DriveLetter,FileSystem,HealthStatus`. Give it a drive letter and bring "
    "it online if it holds data, or remove, format or detach it if it is an unused, RAW or offline disk."
)

CAUSE_ADVICE: Final[MappingProxyType[str, Advice]] = MappingProxyType(
    {
        "volume_not_supported": Advice(
            "the volume is not supported by the QEMU VSS provider",
            "CD-ROM, removable, RAW, FAT or offline volumes cannot join the snapshot set: eject or detach such "
            "drives, or format the volume NTFS and bring it online.",
        ),
        "provider_not_registered": Advice(
            "the QEMU Guest Agent VSS Provider is not registered",
            "Re-register it from an elevated prompt in the guest with `qemu-ga.exe -s vss-install` (run "
            "`-s vss-uninstall` first if it claims to be installed already) or reinstall the virtio-win guest "
            "tools; `vssadmin list providers` must then list it.",
        ),
        "provider_veto": Advice(
            "the VSS provider vetoed the snapshot",
            "Find the provider or filter driver that refused in the guest's System and Application event logs "
            "(third-party filter drivers are typical) and retry after about ten minutes.",
        ),
        "unexpected_provider_error": Advice(
            "the VSS provider failed unexpectedly",
            "Check that the 'QEMU Guest Agent VSS Provider' service is not disabled and look for provider errors "
            "in the Application event log; re-register it with `qemu-ga.exe -s vss-install` if it keeps failing.",
        ),
        "snapshot_set_in_progress": Advice(
            "another shadow copy was being created at the same time",
            "Another backup was running in the guest (Windows Server Backup, Veeam or another agent, antivirus, a "
            "System Restore point): stagger the schedules so they do not overlap with KubeVirt snapshots.",
        ),
        "insufficient_storage": Advice(
            "there is not enough shadow copy storage",
            "Free disk space on the volume or enlarge the shadow storage with `vssadmin resize shadowstorage "
            "/for=C: /on=C: /maxsize=<size>`, and delete old shadow copies with `vssadmin delete shadows`.",
        ),
        "max_volumes_reached": Advice(
            "the snapshot set already holds the maximum number of volumes",
            "VSS takes at most 64 volumes per snapshot set: reduce volumes and mount points in the guest or detach "
            "unused disks.",
        ),
        "max_snapshots_reached": Advice(
            "the volume already has the maximum number of shadow copies",
            "Delete old shadow copies (`vssadmin delete shadows /for=<volume> /oldest`) and find the tool that "
            "keeps creating them with `vssadmin list shadows`.",
        ),
        "flush_writes_timeout": Advice(
            "Windows could not flush pending writes in time",
            "The guest is too busy to flush its I/O: take the snapshot at a quieter time and retry (VSS suggests "
            "waiting about ten minutes, up to three times).",
        ),
        "hold_writes_timeout": Advice(
            "Windows could not hold writes for the whole snapshot (10-second limit)",
            "Writes were released before the storage snapshot finished, so it is only crash-consistent: reduce "
            "I/O during snapshots, make the storage snapshot faster, and use a KubeVirt release that reports "
            "QuiesceTimeout (1.6.4, 1.7.2, 1.8 or newer).",
        ),
        "writer_error": Advice(
            "a VSS writer failed",
            "Run `vssadmin list writers` in the guest and restart the service behind each writer that is not "
            "`[1] Stable` (for example SQL Server VSS Writer, or Winmgmt for the WMI Writer); reboot if the System "
            "Writer stays failed.",
        ),
        "access_denied": Advice(
            "access was denied",
            'The QEMU Guest Agent service must run as LocalSystem (check `sc qc "QEMU Guest Agent"`); also look '
            "for DCOM/COM+ permission errors (Event ID 8194) in the Application event log.",
        ),
        "service_disabled": Advice(
            "a Windows service VSS needs is disabled",
            "Set the Volume Shadow Copy service back to manual start with `Set-Service VSS -StartupType Manual` "
            "(likewise `swprv`) and retry; with VSS disabled every freeze fails.",
        ),
        "bad_state": Advice(
            "VSS was called out of order (no freeze in progress, or a stale backup session)",
            "Usually a thaw without a matching freeze: check `status.fsFreezeStatus`, thaw with "
            "`virtctl unfreeze <vm>` if needed, and restart the QEMU Guest Agent service if it repeats.",
        ),
    }
)
