"""Generate the Grafana dashboards (classic dashboard JSON, provisioning-ready) from plain dicts.

    python -m grafana.generate           # rewrite grafana/dashboards/ and the deploy/ copies
    python -m grafana.generate --check   # exit 1 if a committed file differs from the output

Every query goes through the ``${datasource}`` variable, so the files need no ``__inputs`` and
work unchanged with file provisioning and with the Grafana sidecar.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python grafana/generate.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.generate import sync
from alerts.rules import SETTINGS, seconds

DASHBOARD_DIR = Path("grafana/dashboards")
DEPLOY_DIR = Path("deploy/monitoring/dashboards")

FLEET_UID = "kubevirt-vss-fleet"
VM_UID = "kubevirt-vss-vm"
TAGS = ["kubevirt", "vss", "kubevirt-vss-exporter"]

Json = dict[str, Any]

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}

RPO_SECONDS = seconds(SETTINGS.rpo)
STUCK_SECONDS = seconds(SETTINGS.stuck_frozen_after)
REPORT_MAX_AGE_SECONDS = seconds(SETTINGS.guest_report_max_age)
FAILURE_WINDOW_SECONDS = seconds(SETTINGS.freeze_failure_window)

# --- value mappings -------------------------------------------------------------------------------


def _value_mapping(entries: dict[str, tuple[str, str]]) -> list[Json]:
    options = {
        value: {"text": text, "color": color, "index": index}
        for index, (value, (text, color)) in enumerate(entries.items())
    }
    return [{"type": "value", "options": options}]


LEVELS = _value_mapping(
    {
        "0": ("failed", "red"),
        "1": ("crash-consistent", "orange"),
        "2": ("filesystem-consistent", "yellow"),
        "3": ("application-consistent", "green"),
    }
)
LAST_SNAPSHOT = _value_mapping(
    {
        "-1": ("failing now", "red"),
        "0": ("failed", "red"),
        "1": ("crash-consistent", "orange"),
        "2": ("filesystem-consistent", "yellow"),
        "3": ("application-consistent", "green"),
    }
)
CONNECTED = _value_mapping({"0": ("disconnected", "red"), "1": ("connected", "green")})
SUPPORTED = _value_mapping({"0": ("unsupported", "red"), "1": ("supported", "green")})
AVAILABLE = _value_mapping({"0": ("unavailable", "red"), "1": ("available", "green")})
FROZEN = _value_mapping({"0": ("thawed", "green"), "1": ("frozen", "blue")})
CHECK = _value_mapping({"0": ("FAIL", "red"), "1": ("OK", "green")})
SYNCED = _value_mapping({"0": ("not synced", "red"), "1": ("synced", "green")})
UP = _value_mapping({"0": ("down", "red"), "1": ("up", "green")})


def _thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"value": value, "color": color} for value, color in steps]}


GREEN = _thresholds((None, "green"))
ZERO_GOOD = _thresholds((None, "green"), (1, "red"))

# --- building blocks ------------------------------------------------------------------------------


#: Labels that differ between exporter pods serving the same VM (during a rollout, or with two
#: replicas): per-VM series are collapsed over them, so a rollout never shows a VM twice.
SCRAPE_TARGET_LABELS = ("instance", "pod")
_PER_VM_SELECTOR = re.compile(r"(?<![\w:])(kubevirt_vss_(?!exporter_)[a-z_]+\{[^{}]*\})(?!\s*\[)")


def collapse_targets(expr: str) -> str:
    """Wrap every instant per-VM selector in ``max without (instance, pod)``; range selectors (inside
    ``increase``) are left to the caller."""
    labels = ", ".join(SCRAPE_TARGET_LABELS)
    return _PER_VM_SELECTOR.sub(lambda m: f"max without ({labels}) ({m.group(1)})", expr)


def target(expr: str, legend: str = "", *, ref: str = "A", table: bool = False) -> Json:
    result: Json = {
        "datasource": DATASOURCE,
        "refId": ref,
        "expr": collapse_targets(expr),
        "legendFormat": legend or "__auto",
    }
    if table:
        result.update({"format": "table", "instant": True, "range": False})
    else:
        result.update({"range": True, "instant": False})
    return result


def _panel(
    kind: str, title: str, description: str, grid: tuple[int, int, int, int], targets: list[Json]
) -> Json:
    w, h, x, y = grid
    return {
        "type": kind,
        "title": title,
        "description": description,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "datasource": DATASOURCE,
        "targets": targets,
    }


def stat(
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    expr: str,
    *,
    unit: str = "none",
    mappings: list[Json] | None = None,
    thresholds: Json = GREEN,
    decimals: int | None = None,
) -> Json:
    panel = _panel("stat", title, description, grid, [target(expr, ref="A")])
    defaults: Json = {
        "unit": unit,
        "mappings": mappings or [],
        "thresholds": thresholds,
        "color": {"mode": "thresholds"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "center",
        "textMode": "value",
        "orientation": "auto",
    }
    return panel


def timeseries(
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    targets: list[Json],
    *,
    unit: str = "none",
    bars: bool = False,
    stacked: bool = False,
) -> Json:
    panel = _panel("timeseries", title, description, grid, targets)
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
    }
    panel["fieldConfig"] = {
        "defaults": {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}},
        "overrides": [],
    }
    panel["options"] = {
        "legend": {
            "displayMode": "table",
            "placement": "right",
            "calcs": ["max", "lastNotNull"],
            "showLegend": True,
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def table(
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    targets: list[Json],
    *,
    hide: Sequence[str] = (),
    rename: dict[str, str] | None = None,
    order: Sequence[str] = (),
    overrides: list[Json] | None = None,
    merge: bool = False,
    sort_by: str | None = None,
) -> Json:
    panel = _panel("table", title, description, grid, targets)
    transformations: list[Json] = []
    if merge:
        transformations.append({"id": "merge", "options": {}})
    excluded = {
        name: True for name in ("Time", "__name__", "job", "instance", "endpoint", "pod", "service", *hide)
    }
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": excluded,
                "indexByName": {name: index for index, name in enumerate(order)},
                "renameByName": rename or {},
            },
        }
    )
    panel["transformations"] = transformations
    panel["fieldConfig"] = {
        "defaults": {"custom": {"align": "auto", "filterable": True}, "mappings": [], "thresholds": GREEN},
        "overrides": overrides or [],
    }
    panel["options"] = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by:
        panel["options"]["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return panel


def override(field: str, **properties: Any) -> Json:
    """Field override by (display) name; property ids follow Grafana's (``custom.cellOptions`` …)."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()],
    }


def colored(mode: str = "color-background") -> Json:
    return {"type": mode}


VM_LINK = [
    {
        "title": "VM detail",
        "url": f"/d/{VM_UID}?${{datasource:queryparam}}&${{job:queryparam}}&${{__url_time_range}}"
        "&var-namespace=${__data.fields.namespace}&var-vm=${__data.fields.name}",
    }
]


RUNBOOK_LINK = [{"title": "Runbook", "url": f"{SETTINGS.runbook_base_url}/${{__data.fields.alertname}}.md"}]
ALERTS = 'ALERTS{alertname=~"KubevirtVss.+"'


def alerts_table(
    description: str, grid: tuple[int, int, int, int], matchers: str, by: tuple[str, ...], links: list[Json] = ()
) -> Json:
    """Pending and firing alerts from Prometheus' ALERTS series, each linked to its runbook."""
    labels = ("alertname", "alertstate", "severity", *by, "reason", "check")
    return table(
        "Alerts",
        description,
        grid,
        [target(f"max by ({', '.join(labels)}) ({ALERTS}, {matchers}}})", table=True)],
        hide=("Value",),
        order=labels,
        overrides=[override("alertname", links=RUNBOOK_LINK), *links],
    )


def below(panels: list[Json], rows: int) -> list[Json]:
    """The panels moved ``rows`` grid rows down, to make room above them."""
    for panel in panels:
        panel["gridPos"]["y"] += rows
    return panels


def row(title: str, y: int) -> Json:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
    }


# --- template variables ---------------------------------------------------------------------------


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "includeAll": False,
        "multi": False,
        "options": [],
    }


def query_variable(name: str, label: str, query: str, *, multi: bool) -> Json:
    variable: Json = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "sort": 1,
        "hide": 0,
        "regex": "",
        "current": {},
        "options": [],
        "includeAll": multi,
        "multi": multi,
    }
    if multi:
        variable["allValue"] = ".*"
    return variable


def dashboard(uid: str, title: str, description: str, variables: list[Json], panels: list[Json]) -> Json:
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "weekStart": "",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "kubevirt-vss-exporter",
                "type": "dashboards",
                "tags": ["kubevirt-vss-exporter"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": variables},
        "panels": panels,
    }


# --- shared PromQL --------------------------------------------------------------------------------

JOB = 'job=~"$job"'
FLEET = f'{JOB}, namespace=~"$namespace", name=~"$vm"'
ONE_VM = f'{JOB}, namespace="$namespace", name="$vm"'


def failing_now(matchers: str) -> str:
    """Per VM: newest freeze failure newer than the newest consistent snapshot (or none), within the
    alerting window. Same rule as the freeze alerts; the value is the failure time."""
    failures = f"max by (namespace, name) (kubevirt_vss_last_freeze_error_timestamp_seconds{{{matchers}}})"
    consistent = (
        f"max by (namespace, name) (kubevirt_vss_last_consistent_snapshot_timestamp_seconds{{{matchers}}})"
    )
    return (
        f"({failures} > on (namespace, name) ({consistent} or on (namespace, name) 0 * {failures}))"
        f" > time() - {FAILURE_WINDOW_SECONDS}"
    )


def outside_rpo(matchers: str) -> str:
    consistent = f"kubevirt_vss_last_consistent_snapshot_timestamp_seconds{{{matchers}}}"
    oldest = f"kubevirt_vss_oldest_snapshot_timestamp_seconds{{{matchers}}}"
    stopped = f'kubevirt_vss_vm_info{{{matchers}, phase="Stopped"}}'
    return (
        f"((time() - {consistent} > {RPO_SECONDS})"
        f" or on (namespace, name) (time() - {oldest} > {RPO_SECONDS} unless on (namespace, name) {consistent}))"
        f" unless on (namespace, name) {stopped}"
    )


# --- fleet overview -------------------------------------------------------------------------------


def fleet_dashboard() -> Json:
    f = FLEET
    panels: list[Json] = [
        row("Overview", 0),
        stat(
            "VMs",
            "VMs (VirtualMachines and standalone VMIs) exported in the selected namespaces.",
            (4, 4, 0, 1),
            f"count(kubevirt_vss_vm_info{{{f}}}) or vector(0)",
        ),
        stat(
            "Guest agent connected",
            "Share of running VMIs whose QEMU guest agent is connected (AgentConnected condition present).",
            (4, 4, 4, 1),
            f"sum(kubevirt_vss_agent_connected{{{f}}}) / count(kubevirt_vss_agent_connected{{{f}}})",
            unit="percentunit",
            thresholds=_thresholds((None, "red"), (0.8, "orange"), (0.95, "green")),
            decimals=1,
        ),
        stat(
            "Freeze failing now",
            "VMs whose newest freeze failure is newer than their newest consistent snapshot "
            "(the condition of the freeze alerts).",
            (4, 4, 8, 1),
            f"count({failing_now(f)}) or vector(0)",
            thresholds=ZERO_GOOD,
        ),
        stat(
            "Stuck frozen",
            f"VMs whose guest filesystems Prometheus has seen frozen for the last {SETTINGS.stuck_frozen_after} "
            "(the condition of the stuck-frozen alert).",
            (4, 4, 12, 1),
            f"count(min_over_time((max by (namespace, name) (kubevirt_vss_fs_frozen{{{f}}}))"
            f"[{SETTINGS.stuck_frozen_after}:30s]) == 1) or vector(0)",
            thresholds=ZERO_GOOD,
        ),
        stat(
            "Outside the RPO",
            f"VMs that take snapshots but have no consistent snapshot from the last {SETTINGS.rpo} "
            "(stopped VMs excluded).",
            (4, 4, 16, 1),
            f"count({outside_rpo(f)}) or vector(0)",
            thresholds=ZERO_GOOD,
        ),
        stat(
            "Failed VSS writers",
            "VSS writers in a failed state across all Windows guests, from the latest guest reports.",
            (4, 4, 20, 1),
            f"sum(kubevirt_vss_writers_failed{{{f}}}) or vector(0)",
            thresholds=ZERO_GOOD,
        ),
        {
            **_panel(
                "bargauge",
                "VMs by last snapshot consistency",
                "Consistency level of each VM's newest finished snapshot; VMs without snapshots are "
                "counted separately.",
                (8, 8, 0, 5),
                [
                    target(
                        f"count(kubevirt_vss_last_snapshot_consistency{{{f}}} == 3) or vector(0)",
                        "application",
                        ref="A",
                    ),
                    target(
                        f"count(kubevirt_vss_last_snapshot_consistency{{{f}}} == 2) or vector(0)",
                        "filesystem",
                        ref="B",
                    ),
                    target(
                        f"count(kubevirt_vss_last_snapshot_consistency{{{f}}} == 1) or vector(0)",
                        "crash",
                        ref="C",
                    ),
                    target(
                        f"count(kubevirt_vss_last_snapshot_consistency{{{f}}} == 0) or vector(0)",
                        "failed",
                        ref="D",
                    ),
                    target(
                        f"count(kubevirt_vss_vm_info{{{f}}} unless on (namespace, name) "
                        f"kubevirt_vss_last_snapshot_consistency{{{f}}}) or vector(0)",
                        "no snapshot",
                        ref="E",
                    ),
                ],
            ),
            "fieldConfig": {
                "defaults": {
                    "unit": "none",
                    "min": 0,
                    "thresholds": GREEN,
                    "color": {"mode": "fixed", "fixedColor": "green"},
                },
                "overrides": [
                    override("filesystem", color={"mode": "fixed", "fixedColor": "yellow"}),
                    override("crash", color={"mode": "fixed", "fixedColor": "orange"}),
                    override("failed", color={"mode": "fixed", "fixedColor": "red"}),
                    override("no snapshot", color={"mode": "fixed", "fixedColor": "text"}),
                ],
            },
            "options": {
                "orientation": "horizontal",
                "displayMode": "gradient",
                "showUnfilled": True,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            },
        },
        timeseries(
            "Guest agent connected over time",
            "Share of running VMIs with a connected guest agent over time.",
            (8, 8, 8, 5),
            [
                target(
                    f"sum(kubevirt_vss_agent_connected{{{f}}}) / count(kubevirt_vss_agent_connected{{{f}}})",
                    "connected",
                )
            ],
            unit="percentunit",
        ),
        timeseries(
            "Freeze failure episodes",
            "New freeze/thaw failure episodes by reason (retries of one snapshot count once). After an "
            "exporter restart the counters are rebuilt from the API, which can show as a spike.",
            (8, 8, 16, 5),
            [
                target(
                    "sum by (reason) (max without (instance, pod) "
                    f"(increase(kubevirt_vss_freeze_errors_total{{{f}}}[$__rate_interval])))",
                    "{{reason}}",
                )
            ],
            bars=True,
            stacked=True,
        ),
        row("Freeze failures and snapshots", 13),
        table(
            "Freeze failures now",
            "VMs whose newest freeze failure is not yet followed by a consistent snapshot, with the "
            "decoded error. Click a VM for its detail dashboard.",
            (24, 7, 0, 14),
            [
                target(
                    f"max by (namespace, name, reason, cause, hresult, hresult_name, volume, mount_point, source) "
                    f"(kubevirt_vss_last_freeze_error_info{{{f}}})"
                    f" * on (namespace, name) group_left () (1000 * ({failing_now(f)}))",
                    table=True,
                )
            ],
            rename={"Value": "newest failure"},
            order=(
                "namespace",
                "name",
                "reason",
                "cause",
                "hresult_name",
                "hresult",
                "volume",
                "mount_point",
                "source",
                "Value",
            ),
            overrides=[
                override("Value", unit="dateTimeAsIso"),
                override("name", links=VM_LINK),
                override(
                    "reason",
                    custom__cellOptions=colored("color-text"),
                    color={"mode": "fixed", "fixedColor": "red"},
                ),
            ],
        ),
        table(
            "Last snapshot and recovery point per VM",
            "Newest finished snapshot of each VM with its consistency class and why, and the age of the "
            f"newest consistent snapshot (red beyond the RPO of {SETTINGS.rpo}).",
            (24, 9, 0, 21),
            [
                target(
                    f"max by (namespace, name, snapshot, phase, consistency, indications, reason) "
                    f"(kubevirt_vss_last_snapshot_info{{{f}}})"
                    f" * on (namespace, name) group_left () max by (namespace, name) "
                    f"(kubevirt_vss_last_snapshot_consistency{{{f}}})",
                    ref="A",
                    table=True,
                ),
                target(
                    "time() - max by (namespace, name) "
                    f"(kubevirt_vss_last_consistent_snapshot_timestamp_seconds{{{f}}})",
                    ref="B",
                    table=True,
                ),
            ],
            merge=True,
            rename={"Value #A": "level", "Value #B": "last consistent snapshot age"},
            order=(
                "namespace",
                "name",
                "snapshot",
                "phase",
                "Value #A",
                "consistency",
                "reason",
                "indications",
                "Value #B",
            ),
            overrides=[
                override("Value #A", mappings=LEVELS, custom__cellOptions=colored()),
                override(
                    "Value #B",
                    unit="s",
                    thresholds=_thresholds((None, "green"), (RPO_SECONDS, "red")),
                    custom__cellOptions=colored("color-text"),
                ),
                override("name", links=VM_LINK),
            ],
            sort_by="last consistent snapshot age",
        ),
        row("Guest VSS health", 30),
        timeseries(
            "Frozen VMs",
            "VMs whose guest filesystems are reported frozen. Snapshot freezes last seconds; a line that "
            "stays up means a VM is stuck frozen.",
            (8, 8, 0, 31),
            [target(f"sum(kubevirt_vss_fs_frozen{{{f}}})", "frozen")],
        ),
        {
            **_panel(
                "bargauge",
                "VMs failing each check",
                "The VSS checklist judged per VM (agent, freeze, VSS services, provider, writers, free "
                "space, shadow storage): how many VMs fail each check. Checks without evidence are absent.",
                (8, 8, 8, 31),
                [target(f"sum by (check) (1 - kubevirt_vss_check_ok{{{f}}})", "{{check}}")],
            ),
            "fieldConfig": {
                "defaults": {"unit": "none", "min": 0, "thresholds": ZERO_GOOD},
                "overrides": [],
            },
            "options": {
                "orientation": "horizontal",
                "displayMode": "basic",
                "showUnfilled": True,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            },
        },
        table(
            "Failed VSS writers by VM",
            "Writers reported failed by the guests' latest reports, with their state and last error.",
            (8, 8, 16, 31),
            [target(f"kubevirt_vss_writer_failed_info{{{f}}}", table=True)],
            hide=("Value",),
            order=("namespace", "name", "writer", "state", "last_error"),
            overrides=[override("name", links=VM_LINK)],
        ),
        row("Exporter", 39),
        table(
            "Reflector sync",
            "Per exporter instance and resource: 1 once the first list finished, 0 while relisting after an error.",
            (8, 7, 0, 40),
            [target(f"kubevirt_vss_exporter_synced{{{JOB}}}", table=True)],
            order=("instance", "resource", "Value"),
            hide=("namespace",),
            overrides=[override("Value", mappings=SYNCED, custom__cellOptions=colored())],
        ),
        timeseries(
            "Scrape health",
            "Prometheus scrape success of each exporter instance (1 up, 0 down).",
            (8, 7, 8, 40),
            [target(f"up{{{JOB}}}", "{{instance}}")],
        ),
        timeseries(
            "Watch events and render time",
            "Watch events per second by resource, and the time the exporter spent building the last "
            "/metrics body.",
            (8, 7, 16, 40),
            [
                target(
                    f"sum by (resource) (rate(kubevirt_vss_exporter_watch_events_total{{{JOB}}}[$__rate_interval]))",
                    "{{resource}} events/s",
                    ref="A",
                ),
                target(
                    f"max by (instance) (kubevirt_vss_exporter_scrape_render_seconds{{{JOB}}})",
                    "render seconds {{instance}}",
                    ref="B",
                ),
            ],
        ),
    ]
    panels = [
        row("Alerts", 0),
        alerts_table(
            "Pending and firing alerts of the selected VMs; the alert name links to its runbook, the VM "
            "name to the VM detail dashboard.",
            (24, 6, 0, 1),
            'namespace=~"$namespace", name=~"$vm"',
            ("namespace", "name"),
            links=[override("name", links=VM_LINK)],
        ),
        *below(panels, 7),
    ]
    variables = [
        datasource_variable(),
        query_variable(
            "namespace", "Namespace", "label_values(kubevirt_vss_vm_info, namespace)", multi=True
        ),
        query_variable(
            "vm", "VM", 'label_values(kubevirt_vss_vm_info{namespace=~"$namespace"}, name)', multi=True
        ),
        query_variable(
            "job", "Exporter job", "label_values(kubevirt_vss_exporter_build_info, job)", multi=True
        ),
    ]
    return dashboard(
        FLEET_UID,
        "KubeVirt VSS / Fleet overview",
        "Guest-agent connectivity, filesystem freezes, classified freeze failures, VSS health and "
        "snapshot consistency across all VMs.",
        variables,
        panels,
    )


# --- single VM ------------------------------------------------------------------------------------


def vm_dashboard() -> Json:
    v = ONE_VM
    state_overrides = [
        override("Agent", mappings=CONNECTED),
        override("Filesystem", mappings=FROZEN),
        override("Last snapshot", mappings=LEVELS),
    ]
    panels: list[Json] = [
        row("State", 0),
        table(
            "VM",
            "Node, phase, guest OS and agent version of the VM.",
            (24, 3, 0, 1),
            [target(f"kubevirt_vss_vm_info{{{v}}}", table=True)],
            hide=("Value",),
            order=("namespace", "name", "phase", "node", "guest_os", "guest_os_version", "agent_version"),
        ),
        stat(
            "Guest agent",
            "AgentConnected condition of the VMI.",
            (3, 4, 0, 4),
            f"kubevirt_vss_agent_connected{{{v}}}",
            mappings=CONNECTED,
        ),
        stat(
            "Agent supported",
            "0 while KubeVirt sets AgentVersionNotSupported.",
            (3, 4, 3, 4),
            f"kubevirt_vss_agent_supported{{{v}}}",
            mappings=SUPPORTED,
        ),
        stat(
            "Freeze available",
            "guest-fsfreeze-freeze enabled in the agent's command list.",
            (3, 4, 6, 4),
            f"kubevirt_vss_fsfreeze_available{{{v}}}",
            mappings=AVAILABLE,
        ),
        stat(
            "Filesystem",
            "Freeze state reported by the VMI (status.fsFreezeStatus).",
            (3, 4, 9, 4),
            f"kubevirt_vss_fs_frozen{{{v}}}",
            mappings=FROZEN,
        ),
        stat(
            "Last snapshot",
            "Consistency of the newest finished snapshot; \"failing now\" while freezes fail and no quiesced "
            "snapshot followed (a snapshot in progress that keeps failing, the condition of the freeze alerts).",
            (3, 4, 12, 4),
            f"max(0 * ({failing_now(v)}) - 1) or max(kubevirt_vss_last_snapshot_consistency{{{v}}})",
            mappings=LAST_SNAPSHOT,
        ),
        stat(
            "Last consistent snapshot",
            f"Age of the newest filesystem- or application-consistent snapshot (RPO {SETTINGS.rpo}).",
            (3, 4, 15, 4),
            f"time() - kubevirt_vss_last_consistent_snapshot_timestamp_seconds{{{v}}}",
            unit="s",
            thresholds=_thresholds((None, "green"), (RPO_SECONDS, "red")),
        ),
        stat(
            "Failed VSS writers",
            "Writers in a failed state in the latest guest report (Windows).",
            (3, 4, 18, 4),
            f"kubevirt_vss_writers_failed{{{v}}}",
            thresholds=ZERO_GOOD,
        ),
        stat(
            "Guest report age",
            f"Time since the last guest report (Windows); stale beyond {SETTINGS.guest_report_max_age}.",
            (3, 4, 21, 4),
            f"time() - kubevirt_vss_guest_report_timestamp_seconds{{{v}}}",
            unit="s",
            thresholds=_thresholds((None, "green"), (REPORT_MAX_AGE_SECONDS, "orange")),
        ),
        {
            **_panel(
                "state-timeline",
                "Agent, freeze and snapshot consistency over time",
                "Guest agent connection, filesystem freeze state and the consistency level of the newest "
                "snapshot.",
                (24, 7, 0, 8),
                [
                    target(f"kubevirt_vss_agent_connected{{{v}}}", "Agent", ref="A"),
                    target(f"kubevirt_vss_fs_frozen{{{v}}}", "Filesystem", ref="B"),
                    target(f"kubevirt_vss_last_snapshot_consistency{{{v}}}", "Last snapshot", ref="C"),
                ],
            ),
            "fieldConfig": {
                "defaults": {
                    "custom": {"lineWidth": 0, "fillOpacity": 80},
                    "thresholds": GREEN,
                    "mappings": [],
                },
                "overrides": state_overrides,
            },
            "options": {
                "showValue": "auto",
                "mergeValues": True,
                "alignValue": "left",
                "rowHeight": 0.9,
                "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
                "tooltip": {"mode": "single", "sort": "none"},
            },
        },
        row("Freeze failures", 15),
        timeseries(
            "Freeze failure episodes",
            "New freeze/thaw failure episodes by reason and cause (retries of one snapshot count once).",
            (12, 8, 0, 16),
            [
                target(
                    "sum by (reason, cause) (max without (instance, pod) "
                    f"(increase(kubevirt_vss_freeze_errors_total{{{v}}}[$__rate_interval])))",
                    "{{reason}} / {{cause}}",
                )
            ],
            bars=True,
            stacked=True,
        ),
        timeseries(
            "Newest failure time by reason",
            "When the newest failure of each reason happened (steps mean new failures).",
            (12, 8, 12, 16),
            [target(f"1000 * kubevirt_vss_last_freeze_error_timestamp_seconds{{{v}}}", "{{reason}}")],
            unit="dateTimeAsIso",
        ),
        table(
            "Newest freeze error",
            "The newest classified freeze or thaw error: what failed, why, the VSS error code, the "
            "volume and its mount point, and where it was seen.",
            (24, 4, 0, 24),
            [
                target(
                    f"max by (reason, cause, hresult, hresult_name, volume, mount_point, source) "
                    f"(kubevirt_vss_last_freeze_error_info{{{v}}})"
                    f" * on () group_left () (1000 * max(kubevirt_vss_last_freeze_error_timestamp_seconds{{{v}}}))",
                    table=True,
                )
            ],
            rename={"Value": "time"},
            order=(
                "Value",
                "reason",
                "cause",
                "hresult_name",
                "hresult",
                "volume",
                "mount_point",
                "source",
            ),
            overrides=[override("Value", unit="dateTimeAsIso")],
        ),
        row("Checklist and volumes", 28),
        table(
            "Checklist",
            "The VSS checklist (agent, freeze, services, provider, writers, free space) judged from "
            "outside the guest; a check without evidence is absent.",
            (8, 9, 0, 29),
            [target(f"kubevirt_vss_check_ok{{{v}}}", table=True)],
            hide=("namespace", "name"),
            rename={"Value": "result"},
            order=("check", "Value"),
            overrides=[override("Value", mappings=CHECK, custom__cellOptions=colored())],
        ),
        table(
            "Volumes",
            "Guest volumes from guestosinfo: the \\\\?\\Volume{GUID}\\ name, its mount point and file system.",
            (8, 9, 8, 29),
            [target(f"kubevirt_vss_volume_info{{{v}}}", table=True)],
            hide=("namespace", "name", "Value"),
            order=("mount_point", "filesystem", "volume"),
        ),
        {
            **_panel(
                "bargauge",
                "Free space per volume",
                "Free space of each fixed volume in the latest guest report (Windows).",
                (8, 9, 16, 29),
                [
                    target(
                        f"kubevirt_vss_guest_volume_free_bytes{{{v}}} / kubevirt_vss_guest_volume_size_bytes{{{v}}}",
                        "{{mount_point}}",
                    )
                ],
            ),
            "fieldConfig": {
                "defaults": {
                    "unit": "percentunit",
                    "min": 0,
                    "max": 1,
                    "thresholds": _thresholds((None, "red"), (0.1, "orange"), (0.15, "green")),
                },
                "overrides": [],
            },
            "options": {
                "orientation": "horizontal",
                "displayMode": "basic",
                "showUnfilled": True,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            },
        },
        row("Snapshots and VSS writers", 38),
        table(
            "Last snapshot details",
            "The newest finished snapshot: phase, consistency class, indications, the reason for the "
            "class, and its creation time.",
            (12, 5, 0, 39),
            [
                target(
                    "max by (snapshot, phase, consistency, indications, reason) "
                    f"(kubevirt_vss_last_snapshot_info{{{v}}})"
                    f" * on () group_left () (1000 * max(kubevirt_vss_last_snapshot_timestamp_seconds{{{v}}}))",
                    table=True,
                )
            ],
            rename={"Value": "created"},
            order=("snapshot", "Value", "phase", "consistency", "reason", "indications"),
            overrides=[override("Value", unit="dateTimeAsIso")],
        ),
        timeseries(
            "Snapshots and VSS writers",
            "Snapshots that exist for the VM, and VSS writers in the guest report (all / failed).",
            (12, 5, 12, 39),
            [
                target(f"kubevirt_vss_snapshots{{{v}}}", "snapshots", ref="A"),
                target(f"kubevirt_vss_writers{{{v}}}", "writers", ref="B"),
                target(f"kubevirt_vss_writers_failed{{{v}}}", "failed writers", ref="C"),
            ],
        ),
        table(
            "Failed VSS writer details",
            "Writers in a failed state in the latest guest report, with state number and last error.",
            (24, 5, 0, 44),
            [target(f"kubevirt_vss_writer_failed_info{{{v}}}", table=True)],
            hide=("namespace", "name", "Value"),
            order=("writer", "state", "last_error"),
        ),
    ]
    panels = [
        row("Alerts", 0),
        alerts_table(
            "Pending and firing alerts of this VM; the alert name links to its runbook.",
            (24, 4, 0, 1),
            'namespace="$namespace", name="$vm"',
            (),
        ),
        *below(panels, 5),
    ]
    variables = [
        datasource_variable(),
        query_variable(
            "namespace", "Namespace", "label_values(kubevirt_vss_vm_info, namespace)", multi=False
        ),
        query_variable(
            "vm", "VM", 'label_values(kubevirt_vss_vm_info{namespace="$namespace"}, name)', multi=False
        ),
        query_variable(
            "job", "Exporter job", "label_values(kubevirt_vss_exporter_build_info, job)", multi=True
        ),
    ]
    return dashboard(
        VM_UID,
        "KubeVirt VSS / VM detail",
        "One VM: guest agent, freeze state, freeze errors with their decoded cause, the VSS checklist, "
        "volumes and snapshot consistency.",
        variables,
        panels,
    )


# --- output ---------------------------------------------------------------------------------------

DASHBOARDS = {"kubevirt-vss-fleet.json": fleet_dashboard, "kubevirt-vss-vm.json": vm_dashboard}


def dump(document: Json) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    """Every generated file (path relative to the repository) and its exact content."""
    files: dict[Path, str] = {}
    for filename, build in DASHBOARDS.items():
        content = dump(build())
        files[DASHBOARD_DIR / filename] = content
        files[DEPLOY_DIR / filename] = content
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the Grafana dashboards.")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is out of date")
    return sync(render(), check=parser.parse_args(argv).check)


if __name__ == "__main__":
    raise SystemExit(main())
