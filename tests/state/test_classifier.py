"""classify(): every qemu-ga message template, in every message shape, inside every KubeVirt layer."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from exporter.state.classifier import CAUSES, REASONS, Classification, classify

DATA = Path(__file__).parent.parent / "data" / "freeze_errors"
FREEZE = "guest-fsfreeze-freeze"
THAW = "guest-fsfreeze-thaw"
GUID_VOLUME = "\\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\"

# English system texts that g_win32_error_message() appends for Win32-derived HRESULTs, and the cause each names.
WINDOWS_TEXT: dict[int, tuple[str, str | None]] = {
    0x80070005: ("Access is denied.", "access_denied"),
    0x80070422: (
        "The service cannot be started, either because it is disabled or because it has no enabled "
        "devices associated with it.",
        "service_disabled",
    ),
    0x80004005: ("Unspecified error", None),
    0x7F: ("The specified procedure could not be found.", None),  # ERROR_PROC_NOT_FOUND, a bare Win32 code
}
# The cause vocabulary's HRESULTs, straight from the product spec.
HRESULT_CAUSE: dict[int, str] = {
    0x8004230C: "volume_not_supported",
    0x8004230E: "volume_not_supported",
    0x80042304: "provider_not_registered",
    0x80042306: "provider_veto",
    0x8004230F: "unexpected_provider_error",
    0x80042316: "snapshot_set_in_progress",
    0x8004231F: "insufficient_storage",
    0x80042312: "max_volumes_reached",
    0x80042317: "max_snapshots_reached",
    0x80042313: "flush_writes_timeout",
    0x80042314: "hold_writes_timeout",
    0x80042315: "writer_error",
    0x80042318: "writer_error",
    0x80042319: "writer_error",
    0x800423F0: "writer_error",
    0x800423F1: "writer_error",
    0x800423F2: "writer_error",
    0x800423F3: "writer_error",
    0x800423F4: "writer_error",
    0x800423F5: "writer_error",
    0x80070005: "access_denied",
    0x80070422: "service_disabled",
    0x80042301: "bad_state",
}


@dataclass(frozen=True)
class Template:
    """One qemu-ga message with sample arguments and what the classifier must make of it."""

    id: str
    message: str
    reason: str
    direction: str = FREEZE
    volume: str | None = None
    hresults: tuple[int, ...] = ()  # typical HRESULTs; the err_set shapes are generated for each
    bare_cause: str = "unknown"  # cause when the message carries no HRESULT and no Windows text
    decisive_cause: str | None = None  # cause the text names whatever the HRESULT says
    default_command: str | None = FREEZE  # command when no layer names one
    agent_command: str | None = None  # command libvirt names in its wrapper (default: the direction's)
    thaw_reason: str | None = None  # reason when a layer says the thaw command reported it

    @property
    def libvirt_command(self) -> str:
        return self.agent_command or self.direction


# qga/vss-win32/requester.cpp err_set() messages (reference/qga-vss.md 1.2 and 1.4): every shape applies.
# Each cites the line of qemu/qemu qga/vss-win32/requester.cpp at commit 7dfce9bd that raises it; the three
# messages that replaced assert()s cite blob bc260abb96, the file after qemu commit "qga-vss: Replace asserts
# with condition and report error" (August 2025; its hunks start at lines 347 and 584).
VSS_TEMPLATES = (
    # requester.cpp:306
    Template("create-event", "failed to create event Global\\QGAVSSEvent-frozen", "vss_init", hresults=(0x80070005,)),
    # requester.cpp@bc260abb96:351-352 passes (HRESULT)ERROR_PROC_NOT_FOUND, a Win32 code, not an HRESULT
    Template(
        "proc-address-absent",
        "CreateVssBackupComponents proc address absent. Did you call requester_init()?",
        "vss_init",
        hresults=(0x7F,),
    ),
    # requester.cpp:326
    Template("create-backup-components", "failed to create VSS backup components", "vss_init", hresults=(0x80070005,)),
    # requester.cpp:332
    Template("initialize-for-backup", "failed to initialize for backup", "vss_init", hresults=(0x80070422, 0x80042301)),
    # requester.cpp:338
    Template("set-backup-state", "failed to set backup state", "vss_init", hresults=(0x80042301, 0x80070005)),
    # requester.cpp:356
    Template("set-backup-context", "failed to set backup context", "vss_init", hresults=(0x8004231B, 0x80070005)),
    # requester.cpp:365
    Template(
        "gather-writer-metadata",
        "failed to gather writer metadata",
        "writer_metadata",
        hresults=(0x80042318, 0x80070005),
    ),
    # requester.cpp:169
    Template("writer-metadata-count", "failed to get writer metadata count", "writer_metadata", hresults=(0x80042319,)),
    # requester.cpp:176
    Template("writer-metadata-of", "failed to get writer metadata of 2/7", "writer_metadata", hresults=(0x800423F4,)),
    # requester.cpp:184
    Template("identity-of-writer", "failed to get identity of writer 3/7", "writer_metadata", hresults=(0x800423F0,)),
    # requester.cpp:191
    Template("file-counts", "failed to get file counts of SqlServerWriter", "writer_metadata", hresults=(0x800423F1,)),
    # requester.cpp:199-200
    Template("component", "failed to get component 1/4 of SqlServerWriter", "writer_metadata", hresults=(0x800423F2,)),
    # requester.cpp:207-208
    Template(
        "component-info",
        "failed to get component info 1/4 of SqlServerWriter",
        "writer_metadata",
        hresults=(0x800423F3,),
    ),
    # requester.cpp:219
    Template(
        "add-component", "failed to add component master(SqlServerWriter)", "writer_metadata", hresults=(0x800423F5,)
    ),
    # requester.cpp:463
    Template("gather-writer-status", "failed to gather writer status", "writer_metadata", hresults=(0x80042315,)),
    # requester.cpp:376
    Template(
        "start-snapshot-set", "failed to start snapshot set", "start_snapshot_set", hresults=(0x80042316, 0x80042301)
    ),
    # requester.cpp:430
    Template(
        "add-volume-guid",
        f"failed to add {GUID_VOLUME} to snapshot set",
        "add_volume_to_snapshot_set",
        volume=GUID_VOLUME,
        hresults=(0x8004230E, 0x8004230C, 0x80070005),
    ),
    # requester.cpp:430
    Template(
        "add-volume-drive",
        "failed to add C:\\ to snapshot set",
        "add_volume_to_snapshot_set",
        volume="C:\\",
        hresults=(0x80042304, 0x80042312),
    ),
    # requester.cpp:394
    Template(
        "add-volume-freeze-list",
        "failed to add D: to snapshot set",
        "add_volume_to_snapshot_set",
        volume="D:",
        hresults=(0x8004230E,),
        agent_command="guest-fsfreeze-freeze-list",
    ),
    # requester.cpp:430
    Template(
        "add-volume-mount-folder",
        "failed to add E:\\mnt\\data\\ to snapshot set",
        "add_volume_to_snapshot_set",
        volume="E:\\mnt\\data\\",
        hresults=(0x8004230E,),
    ),
    # requester.cpp:413
    Template("find-first-volume", "failed to find first volume", "add_volume_to_snapshot_set", hresults=(0x80070005,)),
    # requester.cpp:454
    Template(
        "prepare-for-backup", "failed to prepare for backup", "prepare_for_backup", hresults=(0x80042315, 0x800423F3)
    ),
    # requester.cpp:474, 482
    Template(
        "do-snapshot-set",
        "failed to do snapshot set",
        "do_snapshot_set",
        hresults=(0x8004231F, 0x80042313, 0x80042306, 0x80042317, 0x8004230F),
    ),
    # requester.cpp:486-487
    Template(
        "exited-without-frozen",
        "DoSnapshotSet exited without Frozen event",
        "frozen_event_timeout",
        hresults=(0x80004005,),
    ),
    # requester.cpp:498-499
    Template(
        "frozen-event-timeout",
        "timeout when try to receive Frozen event from VSS provider",
        "frozen_event_timeout",
        hresults=(0x80004005,),
    ),
    # requester.cpp:507-508
    Template(
        "frozen-event-failed",
        "couldn't receive Frozen event from VSS provider",
        "frozen_event_timeout",
        hresults=(0x80004005,),
    ),
    # requester.cpp@bc260abb96:588-589
    Template(
        "thaw-components-missing",
        "CreateVssBackupComponents is missing. Did you freeze the volumes?",
        "thaw_failed",
        direction=THAW,
        hresults=(0x80042301,),
        bare_cause="bad_state",
        default_command=THAW,
    ),
    # requester.cpp@bc260abb96:593-594
    Template(
        "thaw-async-missing",
        "AsyncSnapshot set is missing. Did you freeze the volumes?",
        "thaw_failed",
        direction=THAW,
        hresults=(0x80042301,),
        bare_cause="bad_state",
        default_command=THAW,
    ),
    # requester.cpp:558
    Template(
        "thaw-complete-backup",
        "failed to complete backup",
        "thaw_failed",
        direction=THAW,
        hresults=(0x80042315, 0x80070005),
        default_command=THAW,
    ),
    # qemu/qemu qga/vss-win32/requester.cpp:573-586 (7dfce9bd), requester_thaw(), the switch on the async result:
    # VSS_E_UNEXPECTED_PROVIDER_ERROR with the provider's timeout event NOT set -> this message (:574-575); only
    # with it set (the fall-through at :577), or VSS_E_HOLD_WRITES_TIMEOUT, "couldn't hold writes…" (:580-582);
    # every other HRESULT (the default branch, :585-586) -> "failed to do snapshot set".
    # requester.cpp:573-575
    Template(
        "thaw-provider-error",
        "unexpected error in VSS provider",
        "thaw_failed",
        direction=THAW,
        hresults=(0x8004230F,),
        bare_cause="unexpected_provider_error",
        default_command=THAW,
    ),
    # requester.cpp:580-582
    Template(
        "thaw-hold-writes",
        "couldn't hold writes: fsfreeze is limited up to 10 seconds",
        "hold_writes_timeout",
        direction=THAW,
        hresults=(0x80042314, 0x8004230F),
        bare_cause="hold_writes_timeout",
        decisive_cause="hold_writes_timeout",
        default_command=THAW,
    ),
    # requester.cpp:585-586
    Template(
        "thaw-do-snapshot-set",
        "failed to do snapshot set",
        "do_snapshot_set",
        direction=THAW,
        hresults=(0x80042313,),
        thaw_reason="thaw_failed",
    ),
)

# Messages without an HRESULT (reference/qga-vss.md 1.5, 1.7 and 5): used as they are.
# Lines are of qemu/qemu at the commit or file blob named (blobs from the commits' patches). One message, "Mount
# point '%s' not found", has no upstream line: qemu-ga never raises it (see its template).
PLAIN_TEMPLATES = (
    # qga/commands-win32.c:1234 (blob 5866cc2e3c, "qga: don't disable fsfreeze commands if vss_init fails", June 2024)
    Template("vss-init-9.1", "fsfreeze not possible as VSS failed to initialize", "vss_init"),
    # qga/commands-win32.c:1234 (blob 2533e4c748, before that commit): QERR_UNSUPPORTED
    Template(
        "vss-init-unsupported",
        "this feature or command is not currently supported",
        "vss_init",
        agent_command="guest-fsfreeze-freeze-list",
    ),
    # qga/vss-win32.c:160 (67ef811ed1): error_setg_win32(GetLastError()) after GetProcAddress() (:158) of func_name
    # (:150) in QGA_VSS_DLL (:19). A missing export sets ERROR_PROC_NOT_FOUND, not ERROR_MOD_NOT_FOUND.
    Template(
        "requester-freeze-entry-missing",
        "failed to load requester_freeze from qga-vss.dll: The specified procedure could not be found.",
        "vss_init",
    ),
    # qapi/qmp-dispatch.c:158-163 (blob 5e597c76f7), with the reason ga_set_frozen() gives, qga/main.c:378 (blob
    # f2cc8e89a3, the same patch), still qga/main.c:441 (blob 6ae911eb15) until 9.1 centralised the filters
    Template(
        "disabled-frozen",
        "Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state",
        "agent_frozen_state",
        default_command=FREEZE,
    ),
    # qapi/qmp-dispatch.c:158-163 (blob 5e597c76f7), with the frozen-state reason, qga/main.c:378 (blob f2cc8e89a3)
    Template(
        "disabled-frozen-fsinfo",
        "Command guest-get-fsinfo has been disabled: the agent is in frozen state",
        "agent_frozen_state",
        default_command="guest-get-fsinfo",
        agent_command="guest-get-fsinfo",
    ),
    # qapi/qmp-dispatch.c:158-163 (blob 5e597c76f7): "Command %s has been disabled%s%s", no reason given; the
    # block-list passes NULL, qga/main.c:1332 (blob f2cc8e89a3)
    Template("disabled-no-reason", "Command guest-fsfreeze-freeze has been disabled", "command_disabled"),
    # qapi/qmp-dispatch.c:158-163 (blob 5e597c76f7), with qga/main.c:487 (blob b8f7b1e4a3, "qga: centralize logic
    # for disabling/enabling commands", July 2024): from 9.1 the reason for the frozen state (:460-469) too
    Template(
        "disabled-not-allowed",
        "Command guest-fsfreeze-freeze has been disabled: the command is not allowed",
        "command_disabled",
    ),
    # qapi/qmp-dispatch.c:158-161 (blob 0a2b20a4e4, before the disable reason was added)
    Template(
        "disabled-pre-6.0",
        "The command guest-fsfreeze-thaw has been disabled for this instance",
        "command_disabled",
        direction=THAW,
        default_command=THAW,
    ),
    # qga/commands-linux.c:244 (4718359e0e), qmp_guest_fsfreeze_do_freeze_list(); error_setg_errno() adds ": <strerror>"
    Template(
        "linux-open-permission",
        "failed to open /.snapshots: Permission denied",
        "linux_freeze_failed",
        volume="/.snapshots",
        bare_cause="access_denied",
    ),
    # qga/commands-linux.c:263 (4718359e0e): any FIFREEZE errno but EOPNOTSUPP and EBUSY (:262)
    Template("linux-freeze-einval", "failed to freeze /boot: Invalid argument", "linux_freeze_failed", volume="/boot"),
    # qga/commands-linux.c:263 (4718359e0e): the mount point as /proc/self/mountinfo has it, octal escapes decoded
    Template(
        "linux-freeze-space",
        "failed to freeze /var/lib/my data: Input/output error",
        "linux_freeze_failed",
        volume="/var/lib/my data",
    ),
    # qga/commands-linux.c:87 (4718359e0e): error_setg(), so no errno text, and only for /proc/self/mounts (:81),
    # the fallback when /proc/self/mountinfo cannot be opened (:161-163)
    Template(
        "linux-mtab",
        "failed to open mtab file: '/proc/self/mounts'",
        "linux_freeze_failed",
    ),
    # No upstream line: qemu-ga never raises this. freeze-list skips mounts not in the list (qga/commands-linux.c:
    # 231-240, 4718359e0e) and ignores listed paths that are not mounted. Kept because the classifier matches it.
    Template(
        "linux-mount-point",
        "Mount point '/data' not found",
        "linux_freeze_failed",
        volume="/data",
        agent_command="guest-fsfreeze-freeze-list",
    ),
    # qga/commands-posix.c:750 (blob 545f3c99dc), execute_fsfreeze_hook(), removed in 9.1 (blob 9b993772f5)
    Template(
        "hook-access",
        "can't access fsfreeze hook '/etc/qemu/fsfreeze-hook': No such file or directory",
        "fsfreeze_hook_failed",
        default_command=None,
    ),
    # qga/commands-posix.c:782 (blob 545f3c99dc), until 9.1
    Template("hook-status", "fsfreeze hook has failed with status 1", "fsfreeze_hook_failed", default_command=None),
    # qga/commands-posix.c:776 (blob 545f3c99dc), until 9.1
    Template("hook-abnormal", "fsfreeze hook has terminated abnormally", "fsfreeze_hook_failed", default_command=None),
    # qga/commands-posix.c:203 (blob 9b993772f5, "qga/commands-posix: execute_fsfreeze_hook: use ga_run_command
    # helper", 9.1), ga_run_command() with no output captured, action "execute fsfreeze hook" (:751)
    Template(
        "hook-new-status",
        "child process has failed to execute fsfreeze hook: exit status 1",
        "fsfreeze_hook_failed",
        default_command=None,
    ),
    # qga/commands-posix.c:191 (blob 9b993772f5), ga_run_command(), the hook ended by a signal, no output captured
    Template(
        "hook-new-abnormal",
        "child process has terminated abnormally",
        "fsfreeze_hook_failed",
        direction=THAW,
        default_command=None,
    ),
)


def as_hresult(code: int) -> int:
    """HRESULT_FROM_WIN32 for a bare Win32 code (qemu-ga passes some GetLastError() values unconverted)."""
    return code if code > 0xFFFF else 0x80070000 | code


@dataclass(frozen=True)
class Shape:
    """One way qemu-ga formats ``<message>: <suffix>``; the expected HRESULT and cause follow from it."""

    id: str
    text: str
    hresult: int | None
    cause: str


def shapes(template: Template) -> list[Shape]:
    """No suffix, trailing colon, Windows text, ``Windows error 0x…`` (both cases) and the old ``(error: …)``."""
    m = template.message
    found = [
        Shape("no-suffix", f"{m}: ", None, template.bare_cause),
        Shape("trailing-colon", f"{m}:", None, template.bare_cause),
    ]
    for hr in template.hresults:
        text, text_cause = WINDOWS_TEXT.get(hr, ("", None))
        from_hr = template.decisive_cause or HRESULT_CAUSE.get(hr) or text_cause or template.bare_cause
        if text:
            found.append(
                Shape(
                    f"windows-text-{hr:x}",
                    f"{m}: {text}",
                    None,
                    template.decisive_cause or text_cause or template.bare_cause,
                )
            )
        found.append(Shape(f"windows-error-{hr:x}", f"{m}: Windows error 0x{hr:x}: {text}", hr, from_hr))
        found.append(Shape(f"windows-error-upper-{hr:x}", f"{m}: Windows error 0x{hr:X}: {text}", hr, from_hr))
        found.append(Shape(f"old-error-{hr:x}", f"{m}: {text} (error: {hr:x})", hr, from_hr))
    return found


# --- KubeVirt layers ----------------------------------------------------------------------------------


def go_quote(text: str) -> str:
    """Go's %q for printable text: backslashes and quotes escaped."""
    return json.dumps(text, ensure_ascii=False)


def log_line(component: str, msg: str, reason: str) -> str:
    """A KubeVirt JSON log line: go-kit sorts the keys."""
    return json.dumps(
        {
            "component": component,
            "kind": "",
            "level": "error",
            "msg": msg,
            "name": "win2019",
            "namespace": "default",
            "pos": "server.go:612",
            "reason": reason,
            "timestamp": "2026-08-21T02:00:07.123456Z",
            "uid": "0b9a7e06-5b93-479b-8485-03abb19c93fb",
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def snapshot_object(message: str) -> str:
    raw = json.loads((DATA / "vmsnapshot-inprogress-freeze-error-windows-vss.json").read_text(encoding="utf-8"))
    raw["status"]["error"]["message"] = message
    return json.dumps(raw, indent=2, ensure_ascii=False)


Layer = Callable[[str, bool], str]


def _api_status(launcher_error: str, thaw: bool) -> str:
    verb = "Unfreeze" if thaw else "Freeze"
    return (
        "Internal error occurred: unexpected return code 400 (400 Bad Request), message: "
        f"server error. command {verb} failed: {go_quote(launcher_error)}"
    )


def _v17_status(launcher_error: str, thaw: bool) -> str:
    prefix = "Failed unfreezing vm win2019: " if thaw else "Failed freezing vm win2019: "
    return prefix + _api_status(launcher_error, thaw)


# Layers above virt-launcher: each takes what the launcher returned (a LibvirtError or its own error text).
UPPER_LAYERS: dict[str, Layer] = {
    "launcher-reply": lambda e, thaw: f"server error. command {'Unfreeze' if thaw else 'Freeze'} failed: {go_quote(e)}",
    "snapshot-status-v1.8": _api_status,
    "snapshot-status-v1.7": _v17_status,
    "snapshot-status-v1.5.0": lambda e, thaw: (
        ("Freezing vm win2019 failed: " if not thaw else "") + _api_status(e, thaw)
    ),
    "freeze-error-event": lambda e, thaw: (
        f"Failed to {'unfreeze' if thaw else 'freeze'} VMI: "
        f"server error. command {'Unfreeze' if thaw else 'Freeze'} failed: {go_quote(e)}"
    ),
    "launcher-log": lambda e, thaw: log_line(
        "virt-launcher", "Failed to unfreeze vmi" if thaw else "Failed to freeze vmi", e
    ),
    "handler-log": lambda e, thaw: log_line(
        "virt-handler",
        "Failed to unfreeze VMI" if thaw else "Failed to freeze VMI",
        f"server error. command {'Unfreeze' if thaw else 'Freeze'} failed: {go_quote(e)}",
    ),
    "freezer-log": lambda e, thaw: log_line(
        "freezer",
        "Unfreezing VMI failed" if thaw else "Freezing VMI failed",
        f"server error. command {'Unfreeze' if thaw else 'Freeze'} failed: {go_quote(e)}",
    ),
    "klog": lambda e, thaw: "E1122 03:15:22.859168       1 util.go:72] " + _api_status(e, thaw),
    "json-escaped-once": lambda e, thaw: json.dumps(_v17_status(e, thaw), ensure_ascii=False)[1:-1],
    "json-escaped-twice": lambda e, thaw: json.dumps(
        json.dumps(_v17_status(e, thaw), ensure_ascii=False)[1:-1], ensure_ascii=False
    )[1:-1],
    "kubectl-json-member": lambda e, thaw: f'      "message": {go_quote(_v17_status(e, thaw))},',
    "snapshot-object": lambda e, thaw: snapshot_object(_api_status(e, thaw)),
    "kubectl-yaml-member": lambda e, thaw: yaml.safe_dump(
        {"message": _v17_status(e, thaw)}, width=1_000_000, allow_unicode=True
    ).strip(),
}


def libvirt_error(code: int, message: str) -> str:
    return f"LibvirtError(Code={code}, Domain=10, Message='{message}')"


def wrap(template: Template, layer: str, message: str) -> str:
    thaw = template.direction == THAW
    agent = f"internal error: unable to execute QEMU agent command '{template.libvirt_command}': {message}"
    if layer == "qga":
        return message
    if layer == "qmp-reply":
        klass = "CommandNotFound" if "has been disabled" in message else "GenericError"
        return json.dumps({"error": {"class": klass, "desc": message}})
    if layer == "libvirt":
        return agent
    if layer == "virsh":
        return f"error: {agent}"
    if layer == "libvirt-error":
        return libvirt_error(1, agent)
    return UPPER_LAYERS[layer](libvirt_error(1, agent), thaw)


def expected_command(template: Template, layer: str) -> str | None:
    return template.default_command if layer in ("qga", "qmp-reply") else template.libvirt_command


def expected_reason(template: Template, layer: str) -> str:
    if template.thaw_reason is not None and expected_command(template, layer) == THAW:
        return template.thaw_reason
    return template.reason


AGENT_LAYER_NAMES = ("qga", "qmp-reply", "libvirt", "virsh", "libvirt-error", *UPPER_LAYERS)


def _vss_cases() -> list[Any]:
    cases = []
    for template in VSS_TEMPLATES:
        for shape in shapes(template):
            for layer in AGENT_LAYER_NAMES:
                cases.append(pytest.param(template, shape, layer, id=f"{template.id}/{shape.id}/{layer}"))
    return cases


def _plain_cases() -> list[Any]:
    return [
        pytest.param(template, layer, id=f"{template.id}/{layer}")
        for template in PLAIN_TEMPLATES
        for layer in AGENT_LAYER_NAMES
    ]


def assert_in_vocabulary(result: Classification) -> None:
    assert result.reason in REASONS
    assert result.cause in CAUSES


@pytest.mark.parametrize(("template", "shape", "layer"), _vss_cases())
def test_vss_message_in_every_shape_and_layer(template: Template, shape: Shape, layer: str) -> None:
    result = classify(wrap(template, layer, shape.text))

    assert_in_vocabulary(result)
    assert (result.reason, result.cause) == (expected_reason(template, layer), shape.cause)
    assert result.hresult == (None if shape.hresult is None else f"0x{as_hresult(shape.hresult):08x}")
    assert result.volume == template.volume
    assert result.command == expected_command(template, layer)
    assert result.message == shape.text.strip()


@pytest.mark.parametrize(("template", "layer"), _plain_cases())
def test_plain_agent_message_in_every_layer(template: Template, layer: str) -> None:
    result = classify(wrap(template, layer, template.message))

    assert_in_vocabulary(result)
    assert (result.reason, result.cause) == (template.reason, template.bare_cause)
    assert result.hresult is None
    assert result.volume == template.volume
    assert result.command == expected_command(template, layer)
    assert result.message == template.message


# --- errors raised above the agent: libvirt, virt-launcher, virt-api ----------------------------------

# (id, what virt-launcher returned, reason, innermost message, command when no layer names the direction)
PLATFORM_ERRORS = (
    # libvirt/libvirt src/qemu/qemu_agent.c:869-871 (5922d05a): qemuAgentSend's wait for the reply timed out,
    # VIR_ERR_AGENT_UNRESPONSIVE (86) with this text.
    (
        "agent-not-available",
        libvirt_error(86, "Guest agent is not responding: Guest agent not available for now"),
        "agent_timeout",
        "Guest agent not available for now",
        FREEZE,
    ),
    (
        "agent-not-connected",
        libvirt_error(86, "Guest agent is not responding: QEMU guest agent is not connected"),
        "agent_not_connected",
        "QEMU guest agent is not connected",
        None,
    ),
    (
        "agent-disappeared",
        libvirt_error(86, "Guest agent disappeared while executing command"),
        "agent_not_connected",
        "Guest agent disappeared while executing command",
        None,
    ),
    (
        "during-migration",
        "failed to freeze VMI, VMI is currently during migration",
        "migration_in_progress",
        "failed to freeze VMI, VMI is currently during migration",
        FREEZE,
    ),
    ("launcher-not-running", "VMI is not running", "vm_not_running", "VMI is not running", None),
)


@pytest.mark.parametrize(
    ("launcher_error", "reason", "message", "command", "layer"),
    [
        pytest.param(error, reason, message, command, layer, id=f"{name}/{layer}")
        for name, error, reason, message, command in PLATFORM_ERRORS
        for layer in ("as-is", *UPPER_LAYERS)
    ],
)
def test_platform_error_in_every_layer(
    launcher_error: str, reason: str, message: str, command: str | None, layer: str
) -> None:
    text = launcher_error if layer == "as-is" else UPPER_LAYERS[layer](launcher_error, False)
    result = classify(text)

    assert (result.reason, result.cause, result.hresult, result.volume) == (reason, "unknown", None, None)
    assert result.message == message
    # Every KubeVirt layer names the direction; alone, the message only has its own default.
    assert result.command == (command if layer == "as-is" else FREEZE)


@pytest.mark.parametrize(
    ("text", "reason", "message"),
    [
        pytest.param(
            'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "win2019": VM is not running',
            "vm_not_running",
            "VM is not running",
            id="api-409-vm-not-running",
        ),
        pytest.param(
            'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "win2019": '
            "VMI does not have guest agent connected",
            "agent_not_connected",
            "VMI does not have guest agent connected",
            id="api-500-no-agent",
        ),
        pytest.param(
            "error opening path \\\\.\\Global\\org.qemu.guest_agent.0: The system cannot find the file specified.",
            "agent_not_connected",
            None,
            id="windows-channel-missing",
        ),
        pytest.param("No guest agent, exiting", "agent_not_connected", None, id="virt-freezer-no-agent"),
        pytest.param(
            "Guest agent is not responding: Guest agent not available for now",
            "agent_timeout",
            "Guest agent not available for now",
            id="libvirt-unresponsive",
        ),
    ],
)
def test_platform_messages(text: str, reason: str, message: str | None) -> None:
    result = classify(text)

    assert result.reason == reason
    assert result.message == (message or text)


# --- freeze vs thaw from the surrounding layer --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason", "command"),
    [
        pytest.param(
            log_line("virt-launcher", "Failed to unfreeze vmi", "strange failure"),
            "thaw_failed",
            THAW,
            id="launcher-log-unfreeze",
        ),
        pytest.param(
            log_line("virt-launcher", "Failed to freeze vmi", "strange failure"),
            "other",
            FREEZE,
            id="launcher-log-freeze",
        ),
        pytest.param(
            'server error. command Unfreeze failed: "strange failure"',
            "thaw_failed",
            THAW,
            id="launcher-reply-unfreeze",
        ),
        pytest.param("Failed unfreezing vm win2019: strange failure", "thaw_failed", THAW, id="controller-unfreezing"),
        pytest.param(
            "internal error: unable to execute QEMU agent command 'guest-fsfreeze-thaw': strange failure",
            "thaw_failed",
            THAW,
            id="libvirt-thaw-command",
        ),
        pytest.param("strange failure", "other", None, id="no-context"),
    ],
)
def test_direction_from_context(text: str, reason: str, command: str | None) -> None:
    result = classify(text)

    assert (result.reason, result.command, result.message) == (reason, command, "strange failure")


def test_launcher_log_without_reason_uses_msg() -> None:
    line = json.dumps(
        {
            "component": "freezer",
            "level": "error",
            "pos": "main.go:129",
            "msg": "Freezing VMI failed, please make sure guest agent and VSS are running and try again",
        }
    )

    assert classify(line).reason == "agent_timeout"


def test_kubernetes_event_object_uses_message_not_event_reason() -> None:
    event = {
        "kind": "Event",
        "reason": "FreezeError",
        "type": "Warning",
        "involvedObject": {"kind": "VirtualMachineInstance", "name": "win2019"},
        "message": "Failed to freeze VMI: server error. command Freeze failed: "
        + go_quote(
            libvirt_error(
                1,
                "internal error: unable to execute QEMU agent command "
                "'guest-fsfreeze-freeze': failed to start snapshot set: "
                "Windows error 0x80042316: ",
            )
        ),
    }
    result = classify(json.dumps(event))

    assert (result.reason, result.cause, result.hresult_name) == (
        "start_snapshot_set",
        "snapshot_set_in_progress",
        "VSS_E_SNAPSHOT_SET_IN_PROGRESS",
    )


# --- the fixtures and observed lines ------------------------------------------------------------------


def test_fixture_inprogress_guid_volume_chain() -> None:
    raw = json.loads((DATA / "vmsnapshot-inprogress-freeze-error-windows-vss.json").read_text(encoding="utf-8"))
    result = classify(raw["status"]["error"]["message"])

    assert result.reason == "add_volume_to_snapshot_set"
    assert result.cause == "unknown"
    assert result.volume == "\\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\"
    assert result.command == FREEZE
    assert result.message == "failed to add \\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\ to snapshot set:"
    assert "mountvol" in result.remediation and "fsInfo" in result.remediation


def test_fixture_failed_v170_agent_timeout() -> None:
    raw = json.loads((DATA / "vmsnapshot-failed-quiescefailed-v1.7.0.json").read_text(encoding="utf-8"))
    result = classify(raw["status"]["error"]["message"])

    assert (result.reason, result.cause, result.command) == ("agent_timeout", "unknown", FREEZE)
    assert result.message == "Guest agent not available for now"
    assert "may in fact have frozen" in result.summary
    assert "fsFreezeStatus" in result.remediation and "virtctl unfreeze" in result.remediation


def test_whole_snapshot_object_from_fixture() -> None:
    text = (DATA / "vmsnapshot-inprogress-freeze-error-windows-vss.json").read_text(encoding="utf-8")

    result = classify(text)

    assert (result.reason, result.volume) == ("add_volume_to_snapshot_set", GUID_VOLUME)


def _observed() -> list[Any]:
    rows = [json.loads(line) for line in (DATA / "observed.jsonl").read_text(encoding="utf-8").splitlines()]
    return [pytest.param(row["text"], row["expect"], id=row["id"]) for row in rows]


@pytest.mark.parametrize(("text", "expect"), _observed())
def test_observed_lines(text: str, expect: dict[str, Any]) -> None:
    result = classify(text).to_dict()

    assert {key: result[key] for key in expect} == expect


# --- localized Windows text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "hresult"),
    [
        pytest.param("Zugriff verweigert", None, id="german"),
        pytest.param("Windows error 0x80070005: Zugriff verweigert", "0x80070005", id="german-hex"),
        pytest.param("Zugriff verweigert (error: 80070005)", "0x80070005", id="german-old"),
        pytest.param("Accès refusé.", None, id="french"),
        pytest.param("Windows error 0x80070005: Accès refusé.", "0x80070005", id="french-hex"),
        pytest.param("Acceso denegado.", None, id="spanish"),
        pytest.param("Отказано в доступе.", None, id="russian"),
    ],
)
def test_localized_access_denied(suffix: str, hresult: str | None) -> None:
    result = classify(f"failed to create VSS backup components: {suffix}")

    assert (result.reason, result.cause, result.hresult) == ("vss_init", "access_denied", hresult)


@pytest.mark.parametrize(
    "suffix",
    [
        pytest.param(
            "Der Dienst kann nicht gestartet werden, da er deaktiviert ist oder ihm keine aktivierten Geräte "
            "zugeordnet sind.",
            id="german",
        ),
        pytest.param(
            "Windows error 0x80070422: Der Dienst kann nicht gestartet werden, da er deaktiviert ist.", id="german-hex"
        ),
        pytest.param(
            "Le service ne peut pas être démarré parce qu'il est désactivé ou qu'aucun périphérique activé ne "
            "lui est associé.",
            id="french",
        ),
    ],
)
def test_localized_service_disabled(suffix: str) -> None:
    result = classify(f"failed to initialize for backup: {suffix}")

    assert (result.reason, result.cause) == ("vss_init", "service_disabled")
    assert "Set-Service VSS -StartupType Manual" in result.remediation


def test_localized_text_of_unmapped_hresult_is_not_guessed() -> None:
    result = classify("failed to do snapshot set: Windows error 0x80004005: Unbekannter Fehler")

    assert (result.reason, result.cause, result.hresult_name) == ("do_snapshot_set", "unknown", "E_FAIL")


# --- HRESULT forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hresult"),
    [
        pytest.param("failed to do snapshot set: Windows error 0x8004231f: ", "0x8004231f", id="lower"),
        pytest.param("failed to do snapshot set: Windows error 0x8004231F: ", "0x8004231f", id="upper"),
        pytest.param("failed to do snapshot set:  (error: 8004231f)", "0x8004231f", id="old-format"),
        pytest.param(
            "failed to create event Global\\QGAVSSEvent-frozen: Windows error 0x5: Access is denied.",
            "0x80070005",
            id="win32-code-not-padded",
        ),
        pytest.param("failed to do snapshot set: Windows error 0xffffffff8004231f: ", "0x8004231f", id="sign-extended"),
        pytest.param("failed to do snapshot set: hr = 0x8004231f", "0x8004231f", id="bare-known"),
        pytest.param("failed to do snapshot set: build 0x12345678", None, id="bare-unknown-ignored"),
        pytest.param("failed to do snapshot set: Windows error 0x123456789ab: ", None, id="too-wide"),
    ],
)
def test_hresult_forms(text: str, hresult: str | None) -> None:
    result = classify(text)

    assert result.hresult == hresult
    if hresult is not None:
        assert re.fullmatch(r"0x[0-9a-f]{8}", hresult)


def test_unknown_hresult_keeps_value_without_name() -> None:
    result = classify("failed to prepare for backup: Windows error 0x80041234: ")

    assert (result.hresult, result.hresult_name, result.hresult_meaning, result.cause) == (
        "0x80041234",
        None,
        None,
        "unknown",
    )


# --- escaping and volumes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "volume"),
    [
        pytest.param(
            "failed to add \\\\\\\\?\\\\Volume{9c24dfaf-a611-4b06-bd60-e4fe3e7103da}\\\\ to snapshot set: ",
            "\\\\?\\Volume{9c24dfaf-a611-4b06-bd60-e4fe3e7103da}\\",
            id="guid-escaped-once",
        ),
        pytest.param(
            "failed to add "
            + "\\" * 8
            + "?"
            + "\\" * 4
            + "Volume{9c24dfaf-a611-4b06-bd60-e4fe3e7103da}"
            + "\\" * 4
            + " to snapshot set: ",
            "\\\\?\\Volume{9c24dfaf-a611-4b06-bd60-e4fe3e7103da}\\",
            id="guid-escaped-twice",
        ),
        pytest.param("failed to add C:\\\\ to snapshot set: ", "C:\\", id="drive-escaped-once"),
        pytest.param("failed to add D: to snapshot set: ", "D:", id="drive-no-backslash"),
        pytest.param("failed to add " + "x" * 300 + " to snapshot set: ", None, id="absurd-length"),
        pytest.param("failed to add \x00\x01 to snapshot set", None, id="control-characters"),
    ],
)
def test_volume(text: str, volume: str | None) -> None:
    result = classify(text)

    assert result.reason == "add_volume_to_snapshot_set"
    assert result.volume == volume


def test_guid_volume_advice() -> None:
    result = classify(f"failed to add {GUID_VOLUME} to snapshot set: Windows error 0x8004230e: ")

    assert result.summary.startswith(f"VSS refused to add {GUID_VOLUME} to the snapshot set")
    assert result.remediation.startswith(GUID_VOLUME)
    assert "Get-Volume" in result.remediation and "drive letter" in result.remediation


@pytest.mark.parametrize(
    ("hresult", "cause", "phrase"),
    [
        pytest.param(0x80042304, "provider_not_registered", "qemu-ga.exe -s vss-install", id="provider"),
        pytest.param(0x80042316, "snapshot_set_in_progress", "stagger", id="in-progress"),
        pytest.param(0x8004231F, "insufficient_storage", "vssadmin resize shadowstorage", id="storage"),
        pytest.param(0x80042314, "hold_writes_timeout", "crash-consistent", id="hold-writes"),
        pytest.param(0x80042318, "writer_error", "vssadmin list writers", id="writers"),
        pytest.param(0x80070005, "access_denied", "LocalSystem", id="access-denied"),
        pytest.param(0x80070422, "service_disabled", "Set-Service VSS -StartupType Manual", id="service-disabled"),
    ],
)
def test_remediation_names_the_fix(hresult: int, cause: str, phrase: str) -> None:
    result = classify(f"failed to do snapshot set: Windows error 0x{hresult:x}: ")

    assert result.cause == cause
    assert phrase in result.remediation


@pytest.mark.parametrize("reason", [r for r in REASONS if r != "other"])
def test_every_reason_has_its_own_summary(reason: str) -> None:
    other = classify("unrecognised").summary
    sample = {t.reason: t.message for t in (*VSS_TEMPLATES, *PLAIN_TEMPLATES)}
    sample.update(
        {
            "agent_timeout": "Guest agent not available for now",
            "agent_not_connected": "QEMU guest agent is not connected",
            "migration_in_progress": "VMI is currently during migration",
            "vm_not_running": "VM is not running",
        }
    )

    result = classify(sample[reason])

    assert result.reason == reason
    assert result.summary != other and "\n" not in result.summary
    assert result.remediation


# --- the record itself --------------------------------------------------------------------------------


def test_classification_is_frozen_and_serialisable() -> None:
    result = classify(f"failed to add {GUID_VOLUME} to snapshot set: Windows error 0x8004230e: ")

    with pytest.raises(dataclasses.FrozenInstanceError):
        result.reason = "other"  # type: ignore[misc]
    as_dict = result.to_dict()
    assert list(as_dict) == [f.name for f in dataclasses.fields(Classification)]
    assert json.loads(json.dumps(as_dict)) == as_dict


def test_empty_text_is_other() -> None:
    result = classify("")

    assert (result.reason, result.cause, result.message, result.command) == ("other", "unknown", "", None)


def test_message_is_bounded() -> None:
    result = classify("failed to do snapshot set: " + "x" * 10_000)

    assert result.reason == "do_snapshot_set"
    assert len(result.message) <= 512


@pytest.mark.parametrize(
    ("name", "text"),
    [
        pytest.param("plain", "a" * 1_000_000, id="plain"),
        pytest.param("repeated-template", "failed to add " * 80_000, id="repeated-template"),
        pytest.param("backslashes", "\\" * 1_000_000, id="backslashes"),
        pytest.param("quotes", '\\"' * 500_000, id="escaped-quotes"),
        pytest.param("braces", '{"' * 500_000, id="json-openers"),
        pytest.param("nested", '{"a":' + "[" * 999_990, id="deep-json"),
        pytest.param("layers", 'server error. command Freeze failed: \\"' * 25_000, id="repeated-layers"),
        pytest.param("members", '"reason":"' * 100_000, id="repeated-members"),
        pytest.param("wrappers", "Failed freezing vm x: " * 45_000, id="repeated-wrappers"),
        pytest.param("guid", "\\\\\\\\?\\\\Volume{" * 60_000, id="escaped-guid-openers"),
    ],
)
@pytest.mark.slow
def test_one_megabyte_line_is_bounded(name: str, text: str) -> None:
    start = time.perf_counter()
    result = classify(text)
    elapsed = time.perf_counter() - start

    assert_in_vocabulary(result)
    assert elapsed < 5, f"{name}: {elapsed:.3f}s"


# --- properties ---------------------------------------------------------------------------------------

# Pieces of every layer and message, so generated text reaches the unwrapping paths, not only the fallback.
FRAGMENTS = (
    "server error. command Freeze failed: ",
    "server error. command Unfreeze failed: ",
    "LibvirtError(Code=1, Domain=10, Message='",
    "')",
    "internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': ",
    "Internal error occurred: unexpected return code 400 (400 Bad Request), message: ",
    "Failed freezing vm win2019: ",
    "Failed to freeze VMI: ",
    "Guest agent is not responding: ",
    '{"component":"virt-launcher","msg":"Failed to unfreeze vmi","reason":"',
    '{"error": {"class": "GenericError", "desc": "',
    '"message": "',
    '"}',
    "}",
    "{",
    '"',
    '\\"',
    "\\\\",
    "\\",
    "\\u00e9",
    "\\ud83d\\ude00",
    "\\ud800",
    "failed to add ",
    " to snapshot set",
    "\\\\?\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\",
    "\\\\\\\\?\\\\Volume{2a1f8d64-0000-0000-0000-501f00000000}\\\\",
    ": Windows error 0x",
    "8004230e",
    "FFFFFFFF",
    " (error: ",
    ")",
    "failed to freeze /",
    "Mount point '",
    "Command guest-fsfreeze-freeze has been disabled",
    "couldn't hold writes: fsfreeze is limited up to 10 seconds",
    "E1122 03:15:22.859168       1 util.go:72] ",
    "Zugriff verweigert",
    "\x00",
    "\ud800",
    "\r\n",
)

structured_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=40).map("".join)
junk_text = st.binary(max_size=2048).map(lambda raw: raw.decode("utf-8", "replace"))
latin1_text = st.binary(max_size=2048).map(lambda raw: raw.decode("latin-1"))


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def assert_well_formed(result: Classification) -> None:
    assert_in_vocabulary(result)
    assert result.volume is None or (0 < len(result.volume) <= 256 and not CONTROL.search(result.volume))
    assert result.hresult is None or re.fullmatch(r"0x[0-9a-f]{8}", result.hresult)
    assert result.command is None or re.fullmatch(r"[\w.-]{1,64}", result.command)
    assert len(result.message) <= 512 and "\n" not in result.message
    assert result.summary and "\n" not in result.summary and result.remediation
    # Every field must survive UTF-8 encoding: label values and JSON output depend on it.
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_text_is_classified(text: str) -> None:
    assert_well_formed(classify(text))


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(structured_text)
def test_layer_fragments_in_any_order(text: str) -> None:
    assert_well_formed(classify(text))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.one_of(junk_text, latin1_text))
def test_binary_junk(text: str) -> None:
    assert_well_formed(classify(text))


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(structured_text, st.integers(min_value=0, max_value=2))
def test_escaping_never_breaks_it(text: str, levels: int) -> None:
    for _ in range(levels):
        text = json.dumps(text)[1:-1]

    assert_well_formed(classify(text))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(VSS_TEMPLATES), st.sampled_from(AGENT_LAYER_NAMES), st.text(max_size=40))
def test_trailing_garbage_keeps_the_reason(template: Template, layer: str, garbage: str) -> None:
    # What follows the qemu-ga message (a localized suffix, junk) must not change what failed.
    assume("\\" not in garbage and '"' not in garbage and "'" not in garbage)
    result = classify(wrap(template, layer, f"{template.message}: {garbage}"))

    assert result.reason == expected_reason(template, layer)


# --- shapes newer upstream releases print ---------------------------------------------------------------

FREEZE_LOG = '{"component":"virt-launcher","level":"error","msg":"Failed to freeze vmi","reason":%s}'


@pytest.mark.parametrize(
    ("text", "reason", "command"),
    [
        # libvirt-go prints its error as virError(Code=…, Domain=…, Message='…'):
        # kubevirt/kubevirt vendor/libvirt.org/go/libvirt/error.go:636 (v1.8.0); the launcher logs it as the
        # reason of "Failed to freeze vmi", pkg/virt-launcher/virtwrap/cmd-server/server.go:271 (v1.8.0).
        pytest.param(
            FREEZE_LOG
            % json.dumps(
                "virError(Code=1, Domain=10, Message='guest agent command failed: unable to execute QEMU agent "
                "command 'guest-fsfreeze-freeze': failed to do snapshot set: Windows error 0x8004231f: ')"
            ),
            "do_snapshot_set",
            FREEZE,
            id="agent-command-failed-prefix",
        ),
        # tests/vmlogchecker/checker.go:58 (v1.9.0): the same wrapper around a Linux freeze failure.
        pytest.param(
            "virError(Code=1, Domain=10, Message='guest agent command failed: unable to execute QEMU agent command "
            "'guest-fsfreeze-freeze': failed to freeze /var/lib/data: Permission denied')",
            "linux_freeze_failed",
            FREEZE,
            id="agent-command-failed-linux",
        ),
        # tests/vmlogchecker/checker.go:338 (v1.9.0): VIR_ERR_AGENT_COMMAND_TIMEOUT (112,
        # vendor/libvirt.org/go/libvirt/libvirt_generated_enums.h:2845, v1.8.0) and the sync timeout.
        pytest.param(
            "Failed freezing vm w1: Internal error occurred: server error. command Freeze failed: "
            + json.dumps(
                "virError(Code=112, Domain=10, Message='guest agent command timed out: guest agent didn\\'t "
                "respond to command within \\'5\\' seconds')"
            ),
            "agent_timeout",
            FREEZE,
            id="agent-command-timed-out",
        ),
        pytest.param(
            "Guest agent is not responding: guest agent didn't respond to synchronization within '5' seconds",
            "agent_timeout",
            FREEZE,
            id="agent-sync-timed-out",
        ),
        # tests/vmlogchecker/checker.go:43 (v1.9.0): a timed-out command whose agent went away.
        pytest.param(
            "guest agent command timed out: Guest agent disappeared while executing command",
            "agent_not_connected",
            None,
            id="agent-disappeared-in-timeout",
        ),
        # VIR_ERR_OPERATION_INVALID (55, libvirt_generated_enums.h:2674, v1.8.0) as checker.go:38 (v1.9.0)
        # shows it: the domain stopped under the call.
        pytest.param(
            "Failed to freeze VMI: virError(Code=55, Domain=10, Message='Requested operation is not valid: "
            "domain is not running')",
            "vm_not_running",
            FREEZE,
            id="code-55-domain-not-running",
        ),
        # libvirt/libvirt src/qemu/qemu_agent.c (5922d05a): an error without 'desc' is described by its class
        # (qemuAgentStringifyError, :1071-1075), CommandDisabled as this text (:1027-1028).
        pytest.param(
            "internal error: unable to execute QEMU agent command 'guest-fsfreeze-freeze': "
            "The command has been disabled for this instance",
            "command_disabled",
            FREEZE,
            id="command-disabled-without-name",
        ),
        # VIR_ERR_ARGUMENT_UNSUPPORTED (74, libvirt_generated_enums.h:2731, v1.8.0): no agent channel at all.
        pytest.param(
            "virError(Code=74, Domain=10, Message='argument unsupported: QEMU guest agent is not configured')",
            "agent_not_connected",
            None,
            id="agent-not-configured",
        ),
        # virt-api's client to virt-handler times out after 10 s (pkg/virt-api/rest/subresource.go:94, v1.8.0)
        # and the error is wrapped as an internal error (subresource.go:175-178); the snapshot controller
        # prefixes it (pkg/storage/snapshot/source.go:463, v1.8.0).
        pytest.param(
            'Failed freezing vm w1: Internal error occurred: Put "https://10.244.0.12:8186/v1/namespaces/ns/'
            'virtualmachineinstances/w1/freeze": context deadline exceeded (Client.Timeout exceeded while '
            "awaiting headers)",
            "agent_timeout",
            FREEZE,
            id="virt-api-context-deadline",
        ),
    ],
)
def test_upstream_shapes(text: str, reason: str, command: str | None) -> None:
    result = classify(text)

    assert (result.reason, result.command) == (reason, command)


def test_thaw_reasons_follow_requester_thaw_branches() -> None:
    # qemu/qemu qga/vss-win32/requester.cpp (7dfce9bd) requester_thaw(): the default branch (:585-586), the
    # provider error without the timeout event (:573-575) and the hold limit (:580-582) are three failures.
    thaw = "internal error: unable to execute QEMU agent command 'guest-fsfreeze-thaw': "
    default = classify(thaw + "failed to do snapshot set: Windows error 0x80042313: ")
    provider = classify(thaw + "unexpected error in VSS provider: Windows error 0x8004230f: ")
    hold = classify(thaw + "couldn't hold writes: fsfreeze is limited up to 10 seconds: Windows error 0x8004230f: ")

    assert (default.reason, default.command) == ("thaw_failed", THAW)
    assert (provider.reason, provider.cause) == ("thaw_failed", "unexpected_provider_error")
    assert (hold.reason, hold.cause) == ("hold_writes_timeout", "hold_writes_timeout")


def test_error_object_of_a_line_with_several_json_objects() -> None:
    # A backup hook's captured stderr: virt-freezer logs the agent version, then the failure
    # (cmd/virt-freezer/virt-freezer.go:114 and :131, v1.8.0), both on one line.
    starting = {"component": "freezer", "level": "info", "msg": "Guest agent version is 107.0.1"}
    failed = {
        "component": "freezer",
        "level": "error",
        "msg": "Freezing VMI failed, please make sure guest agent and VSS are running and try again",
        "reason": "server error. command Freeze failed: "
        + json.dumps(
            "LibvirtError(Code=1, Domain=10, Message='internal error: unable to execute QEMU agent command "
            "'guest-fsfreeze-freeze': failed to add D:\\ to snapshot set: Windows error 0x8004230e: ')"
        ),
    }

    for separator in ("", " ", "\t"):
        result = classify(json.dumps(starting) + separator + json.dumps(failed))
        assert (result.reason, result.volume) == ("add_volume_to_snapshot_set", "D:\\")


def test_reason_member_wins_when_no_object_says_error_level() -> None:
    first = json.dumps({"msg": "Starting freeze"})
    second = json.dumps({"msg": "freeze failed", "reason": "Guest agent not available for now"})

    assert classify(f"{first} {second}").reason == "agent_timeout"


@pytest.mark.parametrize(
    ("text", "hresult", "name"),
    [
        pytest.param("VSS writer failed, hr = 0x800423f4", "0x800423f4", "VSS_E_WRITERERROR_NONRETRYABLE", id="vss"),
        pytest.param("hr=0x80041234 from the provider", "0x80041234", None, id="unknown-kept"),
        pytest.param("CoCreateInstance failed, hr = 0x800704c7", "0x800704c7", "HRESULT_FROM_WIN32(1223)", id="win32"),
        pytest.param("failed, hr = 0x80070005", "0x80070005", "E_ACCESSDENIED", id="win32-in-table"),
    ],
)
def test_hr_equals_form(text: str, hresult: str, name: str | None) -> None:
    result = classify(text)

    assert (result.hresult, result.hresult_name) == (hresult, name)
    if name and name.startswith("HRESULT_FROM_WIN32"):
        assert result.hresult_meaning is not None and "1223" in result.hresult_meaning
