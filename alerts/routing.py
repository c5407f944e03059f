"""Alertmanager routing and inhibition for the alerts of ``alerts/rules.py``, stated once;
``alerts/generate.py`` renders them as an Alertmanager configuration file and as an
``AlertmanagerConfig`` for the Prometheus Operator.

The aim is one notification per VM per root cause: a cause inhibits the symptoms it explains on the
same VM (``equal: [namespace, name]``). Alertmanager inhibits only while the cause is *firing*, so
each cause's ``for`` is at least ``CAUSE_LEAD`` shorter than its symptoms' (checked by the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts import rules

AGENT_DISCONNECTED = "KubevirtVssGuestAgentDisconnected"
AGENT_UNSUPPORTED = "KubevirtVssGuestAgentUnsupported"
FREEZE_UNAVAILABLE = "KubevirtVssFreezeUnavailable"
PROVIDER_MISSING = "KubevirtVssProviderMissing"
SERVICE_DISABLED = "KubevirtVssServiceDisabled"
STUCK_FROZEN = "KubevirtVssFilesystemStuckFrozen"
ADD_VOLUME_FAILED = "KubevirtVssFreezeAddVolumeFailed"
FREEZE_FAILED = "KubevirtVssFreezeFailed"
NOT_CONSISTENT = "KubevirtVssLastSnapshotNotConsistent"
RPO_MISSED = "KubevirtVssNoConsistentSnapshotWithinRPO"
STORAGE_FAILED = "KubevirtVssSnapshotStorageFailed"

#: How much earlier than its symptoms a cause must fire: one guest report interval (a guest-side
#: cause may be learnt up to 5 minutes after the failure it explains) plus Alertmanager's group_wait.
CAUSE_LEAD = "5m"

PAGER = "kubevirt-vss-pager"
TICKETS = "kubevirt-vss-tickets"
INFO = "kubevirt-vss-info"
RECEIVERS = (PAGER, TICKETS, INFO)

#: The alerts of one VM are grouped per alert: a person gets one message per problem.
GROUP_BY = ("alertname", "namespace", "name")
GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"
REPEAT_INTERVAL = {PAGER: "4h", TICKETS: "24h", INFO: "24h"}
ALERTS_MATCHER = ("alertname", "=~", "KubevirtVss.+")


@dataclass(frozen=True)
class Inhibition:
    """While any of ``causes`` fires for a VM, its ``symptoms`` on the same VM send nothing."""

    why: str
    causes: tuple[str, ...]
    symptoms: tuple[str, ...]
    equal: tuple[str, ...] = ("namespace", "name")


INHIBITIONS: tuple[Inhibition, ...] = (
    Inhibition(
        "A missing or unsupported guest agent explains every freeze and consistency symptom of its VM.",
        # (An unsupported agent's disabled freeze command is left out by the freeze-unavailable rule itself.)
        causes=(AGENT_DISCONNECTED, AGENT_UNSUPPORTED),
        symptoms=(ADD_VOLUME_FAILED, FREEZE_FAILED, NOT_CONSISTENT, RPO_MISSED),
    ),
    Inhibition(
        "A guest that cannot freeze at all (VSS provider missing, a VSS service disabled, the freeze "
        "command disabled, filesystems stuck frozen) explains its failing freezes and unquiesced snapshots.",
        causes=(PROVIDER_MISSING, SERVICE_DISABLED, FREEZE_UNAVAILABLE, STUCK_FROZEN),
        symptoms=(ADD_VOLUME_FAILED, FREEZE_FAILED, NOT_CONSISTENT, RPO_MISSED),
    ),
    Inhibition(
        "Failing freezes explain an unquiesced newest snapshot and a missed recovery point objective.",
        causes=(ADD_VOLUME_FAILED, FREEZE_FAILED),
        symptoms=(NOT_CONSISTENT, RPO_MISSED),
    ),
    Inhibition(
        "A snapshot that failed in storage explains a failed newest snapshot and a missed recovery point objective.",
        causes=(STORAGE_FAILED,),
        symptoms=(NOT_CONSISTENT, RPO_MISSED),
    ),
    Inhibition(
        "An unquiesced newest snapshot already says that the recovery point objective is at risk.",
        causes=(NOT_CONSISTENT,),
        symptoms=(RPO_MISSED,),
    ),
)


def _names(alerts: tuple[str, ...]) -> str:
    return "|".join(alerts)


def _receiver_of(severity: str) -> str:
    return {rules.CRITICAL: PAGER, rules.WARNING: TICKETS, rules.INFO: INFO}[severity]


Matcher = tuple[str, str, str]


def _kubevirt_route() -> dict[str, Any]:
    """The route of every ``KubevirtVss`` alert, keys as in the Alertmanager file, matchers as tuples."""
    subroutes = [
        {
            "receiver": _receiver_of(severity),
            "matchers": [("severity", "=", severity)],
            "repeat_interval": REPEAT_INTERVAL[_receiver_of(severity)],
        }
        for severity in (rules.CRITICAL, rules.INFO)
    ]
    return {
        "receiver": TICKETS,
        "matchers": [ALERTS_MATCHER],
        "group_by": list(GROUP_BY),
        "group_wait": GROUP_WAIT,
        "group_interval": GROUP_INTERVAL,
        "repeat_interval": REPEAT_INTERVAL[TICKETS],
        "routes": subroutes,
    }


def _inhibit_rules() -> list[dict[str, Any]]:
    return [
        {
            "source_matchers": [("alertname", "=~", _names(rule.causes))],
            "target_matchers": [("alertname", "=~", _names(rule.symptoms))],
            "equal": list(rule.equal),
        }
        for rule in INHIBITIONS
    ]


def _file_matcher(matcher: Matcher) -> str:
    name, op, value = matcher
    return f'{name}{op}"{value}"'


def _operator_matcher(matcher: Matcher) -> dict[str, str]:
    name, op, value = matcher
    return {"name": name, "matchType": op, "value": value}


#: The Prometheus Operator's names for the Alertmanager file's keys.
_OPERATOR_KEYS = {
    "group_by": "groupBy",
    "group_wait": "groupWait",
    "group_interval": "groupInterval",
    "repeat_interval": "repeatInterval",
    "source_matchers": "sourceMatch",
    "target_matchers": "targetMatch",
}
_MATCHER_KEYS = ("matchers", "source_matchers", "target_matchers")


def _spelled(node: Any, *, operator: bool) -> Any:
    """The neutral tree in the file's spelling, or the operator's (camelCase keys, matcher objects)."""
    if isinstance(node, list):
        return [_spelled(item, operator=operator) for item in node]
    if not isinstance(node, dict):
        return node
    spelled: dict[str, Any] = {}
    for key, value in node.items():
        if key in _MATCHER_KEYS:
            value = [_operator_matcher(m) if operator else _file_matcher(m) for m in value]
        else:
            value = _spelled(value, operator=operator)
        spelled[_OPERATOR_KEYS.get(key, key) if operator else key] = value
    return spelled


def alertmanager_config() -> dict[str, Any]:
    """A complete Alertmanager configuration. Attach your integrations (PagerDuty, e-mail, …) to the
    three receivers, or copy the ``KubevirtVss`` route and the inhibit rules into your own file."""
    return {
        "route": {"receiver": TICKETS, "routes": [_spelled(_kubevirt_route(), operator=False)]},
        "inhibit_rules": _spelled(_inhibit_rules(), operator=False),
        "receivers": [{"name": name} for name in RECEIVERS],
    }


def alertmanager_config_object() -> dict[str, Any]:
    """The same routing and inhibition as an ``AlertmanagerConfig`` (``monitoring.coreos.com/v1alpha1``).

    The operator adds a ``namespace`` matcher for the object's own namespace unless the Alertmanager
    sets ``alertmanagerConfigMatcherStrategy: {type: None}``; our alerts carry the VM's namespace.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {"name": rules.NAME, "labels": {"app.kubernetes.io/name": rules.NAME}},
        "spec": {
            "route": _spelled(_kubevirt_route(), operator=True),
            "inhibitRules": _spelled(_inhibit_rules(), operator=True),
            "receivers": [{"name": name} for name in RECEIVERS],
        },
    }
