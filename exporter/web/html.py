"""Server-rendered HTML of the status pages. Every value that came from the API or a guest is escaped.

Small, dependency-free CSS and JS ship in ``exporter/web/static`` (no CDN: the pages must work in an
air-gapped cluster). The pages work without JS; the script only submits filters as they change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from exporter import __version__
from exporter.state.evidence import duration
from exporter.web.fleet_table import AGENT_STATES, LEVELS, FleetPage, FleetQuery, FleetRow

LEVEL_NAMES = {"0": "failed", "1": "crash", "2": "filesystem", "3": "application", "none": "no snapshot"}
COLUMNS = (
    ("namespace", "Namespace"),
    ("name", "Name"),
    ("node", "Node"),
    ("os", "OS"),
    ("agent", "Agent"),
    ("frozen", "Frozen"),
    ("level", "Last snapshot"),
    ("snapshot", "Age"),
    ("freeze", "Last freeze error"),
    ("writers", "Failed writers"),
    ("problems", "Failing checks"),
)


def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute; None shows as an empty string."""
    return escape("" if value is None else str(value), quote=True)


def vm_href(namespace: str, name: str) -> str:
    return f"/vm/{quote(namespace, safe='')}/{quote(name, safe='')}"


def page(title: str, body: str, *, simulated: bool) -> str:
    banner = (
        '<div class="banner" role="alert">SIMULATION: this exporter reads a simulated KubeVirt API; '
        "every VM, snapshot and error on this page is generated.</div>"
        if simulated
        else ""
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><link rel='stylesheet' href='/static/status.css'>"
        "<link rel='icon' href='/static/favicon.svg' type='image/svg+xml'>"
        "<script src='/static/status.js' defer></script></head><body>"
        f"{banner}<header><a href='/' class='home'>kubevirt-vss-exporter</a> <span class='muted'>{e(__version__)}"
        "</span><nav><a href='/metrics'>metrics</a> <a href='/api/v1/vms'>API</a> <a href='/readyz'>readiness</a>"
        f"</nav></header><main>{body}</main></body></html>"
    )


# -- fleet ---------------------------------------------------------------------------------------


def fleet_html(fleet: FleetPage, *, now: float, simulated: bool, status: str) -> str:
    parts = [
        f"<h1>Fleet</h1><p class='muted'>{e(status)}</p>",
        _summary(fleet),
        _filters(fleet.query),
        f"<p class='muted' id='matched'>{fleet.matched} of {fleet.total} VMs match; "
        f"page {fleet.query.page} of {fleet.pages}.</p>",
        _table(fleet, now),
        _pager(fleet),
    ]
    return page("VM fleet – kubevirt-vss-exporter", "".join(parts), simulated=simulated)


def _link(query: FleetQuery, **changes: Any) -> str:
    params = query.params(**{"page": None, **changes})  # a new view starts on its first page
    return "/?" + urlencode(params) if params else "/"


def _summary(fleet: FleetPage) -> str:
    base = FleetQuery(per_page=fleet.query.per_page)
    levels = "".join(
        f"<a class='count level-{e(level)}' href='{e(_link(base, level=level))}'>"
        f"<b>{fleet.levels[level]}</b> {e(LEVEL_NAMES[level])}</a>"
        for level in LEVELS
    )
    agents = "".join(
        f"<a class='count' href='{e(_link(base, agent=agent))}'><b>{fleet.agents[agent]}</b> {e(agent)}</a>"
        for agent in AGENT_STATES
    )
    problems = f"<a class='count bad' href='{e(_link(base, problems='1'))}'><b>{fleet.unhealthy}</b> with problems</a>"
    return (
        f"<section class='summary'><div><h2>Health</h2>{problems}"
        f"<a class='count' href='/'><b>{fleet.total}</b> VMs</a></div>"
        f"<div><h2>Last snapshot consistency</h2>{levels}</div><div><h2>Guest agent</h2>{agents}</div></section>"
    )


def _options(values: Iterable[str], selected: str, labels: Mapping[str, str] | None = None) -> str:
    out = ["<option value=''>any</option>"]
    for value in values:
        chosen = " selected" if value == selected else ""
        out.append(f"<option value='{e(value)}'{chosen}>{e((labels or {}).get(value, value))}</option>")
    return "".join(out)


def _filters(query: FleetQuery) -> str:
    level_labels = {level: f"{level} {LEVEL_NAMES[level]}" if level != "none" else "none" for level in LEVELS}
    hidden = "".join(
        f"<input type='hidden' name='{e(k)}' value='{e(v)}'>" for k, v in query.params().items() if k in ("sort", "dir")
    )
    return (
        "<form class='filters' method='get' action='/' id='filters'>"
        f"<label>Search <input type='search' name='q' value='{e(query.text)}' "
        "placeholder='namespace/name, node'></label>"
        f"<label>Namespace <input name='namespace' value='{e(query.namespace)}'></label>"
        f"<label>Agent <select name='agent'>{_options(AGENT_STATES, query.agent)}</select></label>"
        f"<label>Level <select name='level'>{_options(LEVELS, query.level, level_labels)}</select></label>"
        f"<label>Failing check <input name='check' value='{e(query.check)}'></label>"
        f"<label><input type='checkbox' name='problems' value='1'{' checked' if query.problems else ''}>"
        " only problems</label>"
        f"{hidden}<button type='submit'>Filter</button> <a href='/'>reset</a></form>"
    )


def _header(query: FleetQuery, column: str, label: str) -> str:
    active = query.sort == column
    descending = active and not query.descending
    arrow = (" ▼" if query.descending else " ▲") if active else ""
    href = _link(query, sort=column, dir="desc" if descending else None)
    sort_state = ("descending" if query.descending else "ascending") if active else "none"
    return f"<th aria-sort='{sort_state}'><a href='{e(href)}' data-sort='{e(column)}'>{e(label)}{arrow}</a></th>"


def _table(fleet: FleetPage, now: float) -> str:
    head = "".join(_header(fleet.query, column, label) for column, label in COLUMNS)
    body = "".join(_row(row, now) for row in fleet.rows)
    if not fleet.rows:
        body = f"<tr><td colspan='{len(COLUMNS)}' class='muted'>No VM matches.</td></tr>"
    return f"<table id='fleet'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _yes_no(value: bool | None) -> str:
    return "–" if value is None else "yes" if value else "no"


def _row(row: FleetRow, now: float) -> str:
    level = "none" if row.level is None else str(row.level)
    snapshot = "–" if row.level is None else f"{row.level} {row.consistency}"
    age = duration(now - row.snapshot_time) if row.snapshot_time is not None else "–"
    freeze = f"{row.freeze_reason} / {row.freeze_cause}" if row.freeze_reason else "–"
    writers = "–" if row.writers_failed is None else str(row.writers_failed)
    failing = ", ".join(row.failing) if row.failing else "none failing"
    css = "bad" if row.failing else "good"
    return (
        f"<tr class='{css}' data-vm='{e(row.namespace)}/{e(row.name)}'>"
        f"<td>{e(row.namespace)}</td><td><a href='{e(vm_href(row.namespace, row.name))}'>{e(row.name)}</a></td>"
        f"<td>{e(row.node)}</td><td>{e(row.os)}</td><td class='agent-{e(row.agent.replace(' ', '-'))}'>"
        f"{e(row.agent)}</td><td>{_yes_no(row.frozen)}</td><td class='level-{level}'>{e(snapshot)}</td>"
        f"<td>{e(age)}</td><td>{e(freeze)}</td><td>{e(writers)}</td><td>{e(failing)}</td></tr>"
    )


def _pager(fleet: FleetPage) -> str:
    query = fleet.query
    links = []
    if query.page > 1:
        previous = _link(query, page=query.page - 1 if query.page > 2 else None)
        links.append(f"<a rel='prev' href='{e(previous)}'>← previous</a>")
    if query.page < fleet.pages:
        links.append(f"<a rel='next' href='{e(_link(query, page=query.page + 1))}'>next →</a>")
    return f"<nav class='pager'>{' '.join(links)}</nav>"


# -- one VM ----------------------------------------------------------------------------------------


def _definition_list(items: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e('–' if v is None or v == '' else v)}</dd>" for k, v in items)
    return f"<dl>{rows}</dl>"


def _table_of(headers: Iterable[str], rows: Iterable[Iterable[Any]], *, css: str = "") -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='{e(css)}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def vm_html(detail: Mapping[str, Any]) -> str:
    namespace, _, name = str(detail["vm"]).partition("/")
    verdict = "healthy" if detail["healthy"] else "problems found"
    description = detail["signals"].get("description")
    parts = [
        f"<p><a href='/'>← fleet</a></p><h1>{e(namespace)}/<span id='vm-name'>{e(name)}</span> "
        f"<span class='verdict {'good' if detail['healthy'] else 'bad'}'>{e(verdict)}</span></h1>",
        f"<p id='description'>{e(description)}</p>" if description else "",
        _diagnosis_section(detail),
        _signals_section(detail["signals"]),
        _freeze_section(detail),
        _snapshots_section(detail),
        _guest_section(detail.get("guest_report")),
    ]
    return page(f"{detail['vm']} – kubevirt-vss-exporter", "".join(parts), simulated=bool(detail.get("simulated")))


def _diagnosis_section(detail: Mapping[str, Any]) -> str:
    problems = (
        "".join(f"<li>{e(p['text'])} <a href='{e(p['runbook'])}'>runbook</a></li>" for p in detail["problems"])
        or "<li class='muted'>No check fails.</li>"
    )
    steps = (
        "".join(f"<li>{e(s['text'])} <a href='{e(s['runbook'])}'>runbook</a></li>" for s in detail["next_steps"])
        or "<li class='muted'>Nothing to do.</li>"
    )
    runbooks = detail.get("check_runbooks", {})
    checks = "".join(
        f"<tr class='status-{e(c['status'])}'><td>{e(c['name'])}</td><td class='status'>{e(c['status'])}</td>"
        f"<td>{e(c['evidence'])}</td><td>{_runbook_link(runbooks.get(c['name']), c['status'])}</td></tr>"
        for c in detail["checks"]
    )
    return (
        "<section id='diagnosis'><h2>Diagnosis</h2>"
        f"<h3>Problems</h3><ul id='problems'>{problems}</ul><h3>Next steps</h3><ol id='next-steps'>{steps}</ol>"
        "<h3>Checks</h3><table id='checks'><thead><tr><th>Check</th><th>Status</th><th>Evidence</th><th></th></tr>"
        "</thead>"
        f"<tbody>{checks}</tbody></table></section>"
    )


def _runbook_link(url: str | None, status: str) -> str:
    return f"<a href='{e(url)}'>runbook</a>" if url and status == "fail" else ""


def _signals_section(signals: Mapping[str, Any]) -> str:
    items = [
        ("Phase", signals["phase"]),
        ("Node", signals["node"]),
        ("Guest OS", signals["guest_os_version"] or signals["guest_os"]),
        ("Agent version", signals["agent_version"]),
        ("Agent connected", _yes_no(signals["agent_connected"])),
        ("Agent supported", _yes_no(signals["agent_supported"])),
        ("Freeze command available", _yes_no(signals["fsfreeze_available"])),
        ("Filesystems frozen", _yes_no(signals["fs_frozen"])),
        ("Frozen since", signals["frozen_since"]),
    ]
    conditions = _table_of(
        ("Condition", "Present", "Reason"),
        ((c["type"], _yes_no(c["present"]), c["reason"]) for c in signals["conditions"]),
    )
    volumes = _table_of(
        ("Volume", "Mount point", "Filesystem"),
        ((v["volume"], v["mount_point"], v["filesystem"]) for v in signals["volumes"]),
    )
    return (
        f"<section id='signals'><h2>Signals</h2>{_definition_list(items)}<h3>VMI conditions</h3>{conditions}"
        f"<h3>Guest volumes (guestosinfo)</h3>{volumes}</section>"
    )


def _freeze_section(detail: Mapping[str, Any]) -> str:
    error = detail.get("last_freeze_error")
    if error is None:
        return "<section id='freeze-error'><h2>Freeze errors</h2><p class='muted'>None recorded.</p></section>"
    items = [
        ("Reason", error["reason"]),
        ("Cause", error["cause"]),
        ("HRESULT", " ".join(x for x in (error["hresult"], error["hresult_name"]) if x)),
        ("Meaning", error["hresult_meaning"]),
        ("Volume", error["volume"]),
        ("Mount point", error["mount_point"]),
        ("Seen via", error["source"]),
        ("Time", error["time"]),
        ("Summary", error["summary"]),
        ("What to do", error["remediation"]),
    ]
    episodes = _table_of(
        ("Reason", "First", "Last", "Snapshots"),
        ((x["reason"], x["start"], x["last"], x["snapshots"]) for x in detail["freeze_episodes"]),
    )
    return (
        f"<section id='freeze-error'><h2>Newest freeze error</h2>{_definition_list(items)}"
        f"<h3>Message</h3><pre class='message'>{e(error['message'])}</pre>"
        f"<h3>Recent failure episodes</h3>{episodes}</section>"
    )


def _snapshots_section(detail: Mapping[str, Any]) -> str:
    rows = (
        (s["name"], s["phase"], f"{s['level']} {s['consistency']}", s["reason"], ",".join(s["indications"]), s["time"])
        for s in detail["snapshots"]
    )
    table = _table_of(("Snapshot", "Phase", "Level", "Reason", "Indications", "Created"), rows)
    storage = detail["storage_failures"]
    failures = ""
    if storage["counts"]:
        counted = ", ".join(f"{c['reason']} ×{c['snapshots']}" for c in storage["counts"])
        failures = (
            f"<p id='storage-failures'>Storage failures (not freezes): {e(counted)}; newest {e(storage['last'])}</p>"
        )
    return (
        f"<section id='snapshots'><h2>Recent snapshots</h2><p>Newest consistent snapshot: "
        f"{e(detail['last_consistent_snapshot'] or 'none')}</p>{failures}{table}</section>"
    )


def _guest_section(report: Mapping[str, Any] | None) -> str:
    if report is None:
        return (
            "<section id='guest-report'><h2>Guest report</h2><p class='muted'>No current guest report: "
            "writers, services and providers are unknown.</p></section>"
        )
    writers = _table_of(
        ("Writer", "State", "Last error"),
        ((w["name"], f"{w['state']} {w['state_text'] or ''}", w["last_error"]) for w in report["writers"]),
        css="writers",
    )
    services = _table_of(
        ("Service", "Present", "Start type", "Status"),
        ((s["name"], _yes_no(s["present"]), s["start_type"], s["status"]) for s in report["services"]),
    )
    providers = _table_of(
        ("Provider", "Type", "Id", "Version"),
        ((p["name"], p["type"], p["id"], p["version"]) for p in report["providers"]),
    )
    return (
        f"<section id='guest-report'><h2>Guest report</h2><p>Received {e(report['received'])} "
        f"({e(duration(report['age_seconds']))} ago) from {e(report['hostname'])}, guest agent "
        f"{e(report['qga_version'] or 'unknown')}.</p><h3>VSS writers</h3>{writers}<h3>Services</h3>{services}"
        f"<h3>Providers</h3>{providers}</section>"
    )
