"""Render every kustomize variant under deploy/ and check what would reach a cluster.

Each variant is built with ``kubectl kustomize``: the base, the base with each component,
the sharded overlay (alone and with every component), the "full" overlay and the
kube-prometheus-stack overlay. Every rendered
object is validated against the Kubernetes OpenAPI schemas shipped by ``kubernetes-validate``
(strict: unknown fields fail); the Prometheus Operator kinds it has no schema for get a
structural check here. On top of that: the RBAC grant is exactly what the exporter reads,
every workload is hardened and probed, and the sharded overlay's shard count agrees with its
replicas.

Without kubectl the tests skip, except under CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from exporter.web.shard_forwarding import FORWARDED_PATH
from tests.tools import required_tool

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NAMESPACE = "kubevirt-vss-exporter"
NAME = "kubevirt-vss-exporter"
SERVICE_ACCOUNT = NAME
# The newest Kubernetes release kubernetes-validate has schemas for.
KUBERNETES_VERSION = kubernetes_validate.latest_version()

MONITORING = "deploy/monitoring"
GUEST_REPORTS = "deploy/components/guest-reports"
LAUNCHER_LOGS = "deploy/components/launcher-logs"
ALL_COMPONENTS = (MONITORING, GUEST_REPORTS, LAUNCHER_LOGS)
# Files of the monitoring component that are generated with the alerts and dashboards.
MONITORING_GENERATED = (
    "deploy/monitoring/prometheusrule.yaml",
    "deploy/monitoring/dashboards/kubevirt-vss-fleet.json",
    "deploy/monitoring/dashboards/kubevirt-vss-vm.json",
)

READ = ("get", "list", "watch")
BASE_RULES = frozenset(
    {("kubevirt.io", resource, verb) for resource in ("virtualmachineinstances", "virtualmachines") for verb in READ}
    | {
        ("snapshot.kubevirt.io", resource, verb)
        for resource in ("virtualmachinesnapshots", "virtualmachinesnapshotcontents")
        for verb in READ
    }
    | {("backup.kubevirt.io", "virtualmachinebackups", verb) for verb in READ}
    | {("", resource, verb) for resource in ("events", "pods") for verb in READ}
    | {("subresources.kubevirt.io", "virtualmachineinstances/guestosinfo", "get")}
)
LAUNCHER_LOG_RULES = frozenset({("", "pods/log", "get")})

CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}

METRICS_PORT = 9745
GUEST_REPORT_PORT = 9746
GUEST_REPORT_SECRET = "kubevirt-vss-exporter-guest-report-token"
SHARD_SECRET = "kubevirt-vss-exporter-shard-token"
GUEST_REPORT_TOKEN_FILE = "/etc/kubevirt-vss-exporter/guest-report-token/token"
DASHBOARDS_CONFIGMAP = "kubevirt-vss-exporter-dashboards"
# kube-prometheus-stack's Prometheus selects ServiceMonitors and PrometheusRules by this label
# (the Helm release name); its Grafana sidecar loads ConfigMaps with grafana_dashboard="1".
KPS_OVERLAY = DEPLOY / "overlays" / "kube-prometheus-stack"
KPS_RELEASE = {"release": "kube-prometheus-stack"}

DURATION = re.compile(r"^(?=\d)((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Variant:
    """One way to deploy: a kustomization in the repository, or the base/overlay plus components."""

    name: str
    path: str | None = None
    resources: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    sharded: bool = False
    enabled: frozenset[str] = frozenset()

    def has(self, component: str) -> bool:
        return component in self.enabled


VARIANTS = (
    Variant("deploy", path="deploy"),
    Variant("base", path="deploy/base"),
    *(
        Variant(f"base+{Path(c).name}", resources=("deploy/base",), components=(c,), enabled=frozenset({c}))
        for c in ALL_COMPONENTS
    ),
    Variant("sharded", path="deploy/overlays/sharded", sharded=True),
    Variant(
        "sharded+all",
        resources=("deploy/overlays/sharded",),
        components=ALL_COMPONENTS,
        sharded=True,
        enabled=frozenset(ALL_COMPONENTS),
    ),
    Variant(
        "sharded-guest-reports",
        path="deploy/overlays/sharded-guest-reports",
        sharded=True,
        enabled=frozenset({GUEST_REPORTS}),
    ),
    Variant("full", path="deploy/overlays/full", enabled=frozenset(ALL_COMPONENTS)),
    Variant("kube-prometheus-stack", path="deploy/overlays/kube-prometheus-stack", enabled=frozenset({MONITORING})),
)
VARIANT_IDS = [v.name for v in VARIANTS]
BY_NAME = {v.name: v for v in VARIANTS}

Obj = dict[str, Any]
Render = Callable[[Variant], list[Obj]]


# --- rendering -------------------------------------------------------------------------------------------


def _kubectl() -> str:
    return required_tool("kubectl", hint="with kustomize v5, to render deploy/")


def _kustomize(kubectl: str, directory: Path) -> list[Obj]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


@pytest.fixture(scope="session")
def render(tmp_path_factory: pytest.TempPathFactory) -> Render:
    kubectl = _kubectl()
    cache: dict[str, list[Obj]] = {}

    def build(variant: Variant) -> list[Obj]:
        if variant.name in cache:
            return copy.deepcopy(cache[variant.name])
        if variant.has(MONITORING):
            missing = [p for p in MONITORING_GENERATED if not (REPO / p).is_file()]
            if missing:
                pytest.fail(f"the monitoring component needs its generated files, missing: {', '.join(missing)}")
        if variant.path is not None:
            directory = REPO / variant.path
        else:
            # The way a user composes it: a kustomization of their own with the namespace set.
            directory = tmp_path_factory.mktemp(variant.name.replace("+", "-"))
            kustomization = {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": NAMESPACE,
                "resources": [os.path.relpath(REPO / r, directory) for r in variant.resources],
                "components": [os.path.relpath(REPO / c, directory) for c in variant.components],
            }
            (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        cache[variant.name] = _kustomize(kubectl, directory)
        return copy.deepcopy(cache[variant.name])

    return build


# --- reading rendered objects ----------------------------------------------------------------------------


def _of_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def _one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _pod_template(workload: Obj) -> Obj:
    if workload["kind"] == "Pod":
        return workload
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]
    return workload["spec"]["template"]


def _workloads(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if o["kind"] in WORKLOAD_KINDS]


def _the_workload(objs: list[Obj]) -> Obj:
    workloads = _workloads(objs)
    assert len(workloads) == 1, [f"{w['kind']}/{w['metadata']['name']}" for w in workloads]
    return workloads[0]


def _container(workload: Obj) -> Obj:
    containers = _pod_template(workload)["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _args(workload: Obj) -> list[str]:
    return list(_container(workload).get("args", []))


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _rbac_triples(rules: list[Obj]) -> Iterator[tuple[str, str, str]]:
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    yield group, resource, verb


def _granted(objs: list[Obj]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) granted to the exporter's ServiceAccount by the rendered bindings."""
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objs if o["kind"] in ("ClusterRole", "Role")}
    granted: set[tuple[str, str, str]] = set()
    for binding in objs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        ref = binding["roleRef"]
        assert (ref["kind"], ref["name"]) in roles, f"{binding['metadata']['name']} binds a role not shipped"
        granted |= set(_rbac_triples(roles[(ref["kind"], ref["name"])].get("rules", [])))
    return granted


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(k)
            yield from _walk_strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_strings(item)


def _without_sharding(template: Obj) -> Obj:
    """The pod template with what only the sharded variant adds taken out."""
    t = copy.deepcopy(template)
    t["spec"].pop("topologySpreadConstraints", None)
    for container in t["spec"]["containers"]:
        container["args"] = [a for a in container.get("args", []) if not a.startswith("--total-shards")]
    return t


# --- every variant ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_objects_are_well_formed_and_unique(render: Render, variant: Variant) -> None:
    objs = render(variant)
    assert objs
    ids = [(o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
    assert len(ids) == len(set(ids)), "duplicate objects"
    for obj in objs:
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == NAME, obj["metadata"]["name"]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_one_workload_of_the_expected_kind(render: Render, variant: Variant) -> None:
    workload = _the_workload(render(variant))
    assert workload["kind"] == ("StatefulSet" if variant.sharded else "Deployment")
    assert workload["metadata"]["name"] == NAME


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_objects_validate_against_kubernetes_schemas(render: Render, variant: Variant) -> None:
    for obj in render(variant):
        if obj["kind"] in CRD_KINDS:
            continue  # no schema in kubernetes-validate; see test_prometheus_operator_objects_are_well_formed
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where} is invalid for Kubernetes {KUBERNETES_VERSION}: {e.message} at {list(e.path)}")
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{where}: {e.message}")


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_everything_lives_in_the_exporter_namespace(render: Render, variant: Variant) -> None:
    for obj in render(variant):
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            assert namespace is None, obj["metadata"]["name"]
        else:
            assert namespace == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"
    assert _one(render(variant), "Namespace", NAMESPACE)


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_rbac_is_exactly_what_the_exporter_reads(render: Render, variant: Variant) -> None:
    objs = render(variant)
    expected = BASE_RULES | (LAUNCHER_LOG_RULES if variant.has(LAUNCHER_LOGS) else frozenset())
    assert _granted(objs) == expected
    # And nothing is shipped but not bound, so the sets above are all there is.
    every_rule = set()
    for role in _of_kind(objs, "ClusterRole") + _of_kind(objs, "Role"):
        assert "aggregationRule" not in role
        for rule in role["rules"]:
            assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule  # no resourceNames, no URLs
        every_rule |= set(_rbac_triples(role["rules"]))
    assert every_rule == expected


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_rbac_has_no_wildcards_writes_or_secrets(render: Render, variant: Variant) -> None:
    objs = render(variant)
    for role in _of_kind(objs, "ClusterRole") + _of_kind(objs, "Role"):
        for value in _walk_strings(role["rules"]):
            assert "*" not in value, role["metadata"]["name"]
        for group, resource, verb in _rbac_triples(role["rules"]):
            assert verb in READ, (group, resource, verb)
            assert resource.split("/")[0] not in ("secrets", "configmaps"), (group, resource, verb)
            assert resource != "pods/log" or variant.has(LAUNCHER_LOGS), "pods/log outside launcher-logs"
    assert not _of_kind(objs, "Secret"), "no Secret is shipped; the user creates the guest-report token"


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_bindings_name_only_the_exporter_service_account(render: Render, variant: Variant) -> None:
    objs = render(variant)
    account = _one(objs, "ServiceAccount", SERVICE_ACCOUNT)
    assert account["automountServiceAccountToken"] is False
    bindings = _of_kind(objs, "ClusterRoleBinding") + _of_kind(objs, "RoleBinding")
    assert bindings
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_workloads_are_hardened(render: Render, variant: Variant) -> None:
    workloads = _workloads(render(variant))
    assert workloads
    for workload in workloads:
        spec = _pod_template(workload)["spec"]
        assert spec["serviceAccountName"] == SERVICE_ACCOUNT
        assert spec["automountServiceAccountToken"] is True
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host), host
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for volume in spec.get("volumes", []):
            assert set(volume) & {"emptyDir", "secret"}, f"unexpected volume type: {volume}"
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context.get("privileged", False) is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_workloads_are_probed_sized_and_pinned(render: Render, variant: Variant) -> None:
    for workload in _workloads(render(variant)):
        container = _container(workload)
        image = container["image"]
        match = re.fullmatch(r"(?P<repo>[^@]+?)(?::(?P<tag>[\w][\w.-]*))?(?:@sha256:[0-9a-f]{64})?", image)
        assert match, image
        assert match["tag"] or "@sha256:" in image, f"{image} is not pinned"
        assert match["tag"] != "latest", image

        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == METRICS_PORT
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http = container[probe]["httpGet"]
            assert http["path"] == path
            assert http["port"] in ("metrics", METRICS_PORT)

        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}
        assert "memory" in resources["limits"]

        args = _args(workload)
        assert args[0] == "run"
        assert "--log-format=json" in args
        assert f"--listen=0.0.0.0:{METRICS_PORT}" in args
        assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_services_reach_the_exporter_pods(render: Render, variant: Variant) -> None:
    objs = render(variant)
    workload = _the_workload(objs)
    pod_labels = _pod_template(workload)["metadata"]["labels"]
    container_ports = {p["name"] for p in _container(workload)["ports"]}
    for service in _of_kind(objs, "Service"):
        assert _selects(service["spec"]["selector"], pod_labels), service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (service["metadata"]["name"], port)
    metrics = _one(objs, "Service", NAME)
    assert metrics["spec"]["ports"] == [
        {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}
    ]
    for policy in _of_kind(objs, "NetworkPolicy"):
        assert _selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels)


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_network_policy_allows_scrapes_dns_and_the_api_server(render: Render, variant: Variant) -> None:
    policy = _one(render(variant), "NetworkPolicy", NAME)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [
        {"from": [{"namespaceSelector": {}}], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]}
    ]
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")}


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_exporter_accepts_the_deployed_arguments(render: Render, variant: Variant, tmp_path: Path) -> None:
    # Imported here so that a problem in the package fails this test only, not the module.
    from exporter.cli import run as run_command
    from exporter.settings import from_args

    workload = _the_workload(render(variant))
    args = _args(workload)
    assert args[0] == "run"
    # The token file is mounted from a Secret in the cluster; stand in a local one.
    token = tmp_path / "token"
    token.write_text("0" * 64)
    stand_ins = {flag: f"{flag}{token}" for flag in ("--guest-report-token-file=", "--shard-token-file=")}
    argv = [next((v for k, v in stand_ins.items() if a.startswith(k)), a) for a in args[1:]]
    # No abbreviations: the manifests must spell every flag out.
    parser = argparse.ArgumentParser(prog="kubevirt-vss-exporter run", allow_abbrev=False)
    run_command.add_arguments(parser)
    try:
        parsed = parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"the exporter rejects the deployed arguments {argv}")

    if workload["kind"] == "StatefulSet":
        replicas = workload["spec"]["replicas"]
        pod_names = [f"{workload['metadata']['name']}-{ordinal}" for ordinal in range(replicas)]
    else:
        replicas = 1
        pod_names = [f"{workload['metadata']['name']}-7c9f6d5b8d-qwxzt"]
    for ordinal, pod_name in enumerate(pod_names):
        settings = from_args(parsed, environ={"POD_NAME": pod_name})
        assert (settings.shard, settings.total_shards) == (ordinal, replicas), pod_name
        assert settings.listen.port == METRICS_PORT
        assert settings.log_format == "json"
        assert settings.follow_launcher_logs == variant.has(LAUNCHER_LOGS)
        report_port = settings.guest_report_listen.port if settings.guest_report_listen else None
        assert report_port == (GUEST_REPORT_PORT if variant.has(GUEST_REPORTS) else None)


# --- base and sharded ------------------------------------------------------------------------------------


def test_top_level_kustomization_is_the_base(render: Render) -> None:
    assert render(BY_NAME["deploy"]) == render(BY_NAME["base"])


@pytest.mark.parametrize("name", ["deploy", "base", "full"])
def test_unsharded_variants_run_one_deployment_without_a_budget(render: Render, name: str) -> None:
    objs = render(BY_NAME[name])
    workload = _the_workload(objs)
    assert workload["kind"] == "Deployment"
    assert workload["spec"]["replicas"] == 1
    assert not [a for a in _args(workload) if a.startswith(("--shard", "--total-shards"))]
    assert not _of_kind(objs, "PodDisruptionBudget")


@pytest.mark.parametrize("name", ["sharded", "sharded+all"])
def test_sharded_replicas_match_total_shards(render: Render, name: str) -> None:
    objs = render(BY_NAME[name])
    workload = _the_workload(objs)
    assert workload["kind"] == "StatefulSet"
    args = _args(workload)
    total = [int(a.split("=", 1)[1]) for a in args if a.startswith("--total-shards=")]
    assert total == [workload["spec"]["replicas"]]
    assert total[0] > 1
    # The shard comes from the pod name's ordinal, never a fixed flag shared by all replicas.
    assert not [a for a in args if a == "--shard" or a.startswith("--shard=")]
    headless = _one(objs, "Service", workload["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    budget = _one(objs, "PodDisruptionBudget", NAME)
    assert budget["spec"]["maxUnavailable"] == 1
    assert _selects(budget["spec"]["selector"]["matchLabels"], _pod_template(workload)["metadata"]["labels"])


@pytest.mark.parametrize(("unsharded", "sharded"), [("base", "sharded"), ("full", "sharded+all")])
def test_sharded_pod_template_matches_the_deployment(render: Render, unsharded: str, sharded: str) -> None:
    deployment = _the_workload(render(BY_NAME[unsharded]))
    statefulset = _the_workload(render(BY_NAME[sharded]))
    assert _pod_template(deployment)["spec"].get("topologySpreadConstraints") is None
    assert _without_sharding(_pod_template(statefulset)) == _pod_template(deployment)
    assert statefulset["spec"]["selector"] == deployment["spec"]["selector"]


# --- components ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_launcher_logs_flag_follows_the_component(render: Render, variant: Variant) -> None:
    args = _args(_the_workload(render(variant)))
    assert ("--follow-launcher-logs" in args) == variant.has(LAUNCHER_LOGS)


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_guest_report_listener(render: Render, variant: Variant) -> None:
    objs = render(variant)
    workload = _the_workload(objs)
    container = _container(workload)
    spec = _pod_template(workload)["spec"]
    args = _args(workload)
    if not variant.has(GUEST_REPORTS):
        assert not [a for a in args if a.startswith("--guest-report")]
        assert [p["name"] for p in container["ports"]] == ["metrics"]
        assert not [v for v in spec["volumes"] if "secret" in v]
        assert len(_of_kind(objs, "NetworkPolicy")) == 1
        return

    assert f"--guest-report-listen=0.0.0.0:{GUEST_REPORT_PORT}" in args
    assert f"--guest-report-token-file={GUEST_REPORT_TOKEN_FILE}" in args
    assert {"name": "guest-reports", "containerPort": GUEST_REPORT_PORT, "protocol": "TCP"} in container["ports"]

    (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == GUEST_REPORT_SECRET]
    assert volume["secret"]["items"] == [{"key": "token", "path": "token"}]
    assert volume["secret"].get("optional", False) is False
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    assert f"{mount['mountPath']}/token" == GUEST_REPORT_TOKEN_FILE

    service = _one(objs, "Service", "kubevirt-vss-exporter-guest-reports")
    assert service["spec"]["ports"] == [
        {"name": "guest-reports", "port": GUEST_REPORT_PORT, "targetPort": "guest-reports", "protocol": "TCP"}
    ]
    policy = _one(objs, "NetworkPolicy", "kubevirt-vss-exporter-guest-reports")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert "egress" not in policy
    assert policy["ingress"] == [
        {
            "from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"kubevirt.io": "virt-launcher"}}}],
            "ports": [{"port": GUEST_REPORT_PORT, "protocol": "TCP"}],
        }
    ]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_sharded_guest_reports_are_routed_to_the_owning_shard(render: Render, variant: Variant) -> None:
    objs = render(variant)
    workload = _the_workload(objs)
    args = _args(workload)
    forward = [a.split("=", 1)[1] for a in args if a.startswith("--guest-report-forward-url=")]
    if not (variant.sharded and variant.has(GUEST_REPORTS)) or variant.name == "sharded+all":
        assert not forward and not [a for a in args if a.startswith("--shard-token-file")]
        return
    # Each shard by its StatefulSet pod DNS name: <statefulset>-<ordinal>.<governing Service>.
    headless = _one(objs, "Service", workload["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert forward == [
        f"http://{workload['metadata']['name']}-{{shard}}.{workload['spec']['serviceName']}:{GUEST_REPORT_PORT}"
        + FORWARDED_PATH
    ]
    (token_file,) = [a.split("=", 1)[1] for a in args if a.startswith("--shard-token-file=")]
    spec = _pod_template(workload)["spec"]
    (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == SHARD_SECRET]
    (mount,) = [m for m in _container(workload)["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True and f"{mount['mountPath']}/token" == token_file
    # The shards reach each other on the guest-report port: allowed out of one and into the other.
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": NAME}
    exporter_pods = {"podSelector": {"matchLabels": labels}}
    port = [{"port": GUEST_REPORT_PORT, "protocol": "TCP"}]
    policy = _one(objs, "NetworkPolicy", "kubevirt-vss-exporter-shard-reports")["spec"]
    assert policy["ingress"] == [{"from": [exporter_pods], "ports": port}]
    assert policy["egress"] == [{"to": [exporter_pods], "ports": port}]


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_monitoring_objects_follow_the_component(render: Render, variant: Variant) -> None:
    objs = render(variant)
    kinds = {o["kind"] for o in objs}
    present = {"ServiceMonitor", "PrometheusRule", "ConfigMap"} & kinds
    assert present == ({"ServiceMonitor", "PrometheusRule", "ConfigMap"} if variant.has(MONITORING) else set())


def _check_duration(value: Any, where: str) -> None:
    assert isinstance(value, str) and DURATION.match(value), f"{where}: bad duration {value!r}"


def _check_string_map(value: Any, where: str) -> None:
    assert isinstance(value, dict), where
    for k, v in value.items():
        assert isinstance(k, str) and LABEL_NAME.match(k), f"{where}: bad label name {k!r}"
        assert isinstance(v, str), f"{where}: {k} must be a string"


def _check_service_monitor(monitor: Obj, objs: list[Obj]) -> None:
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels"}
    selector = spec["selector"]["matchLabels"]
    # Exactly the metrics Service: never the headless or guest-report one (double scrapes, wrong port).
    selected = [s for s in _of_kind(objs, "Service") if _selects(selector, s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in selected] == [NAME]
    service_ports = {p["name"] for p in selected[0]["spec"]["ports"]}
    assert spec["endpoints"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels"}
        assert endpoint["port"] in service_ports
        assert endpoint["path"] == "/metrics"
        assert endpoint.get("scheme", "http") == "http"
        _check_duration(endpoint["interval"], "interval")
        _check_duration(endpoint["scrapeTimeout"], "scrapeTimeout")
        # The exporter's `namespace` label is the VM's; Prometheus must not overwrite it.
        assert endpoint["honorLabels"] is True


def _check_prometheus_rule(rule_object: Obj) -> None:
    assert rule_object["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule_object) == {"apiVersion", "kind", "metadata", "spec"}
    groups = rule_object["spec"]["groups"]
    assert isinstance(groups, list) and groups
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names)), "duplicate group names"
    for group in groups:
        where = f"group {group['name']}"
        assert set(group) <= {"name", "interval", "rules", "limit", "query_offset", "labels"}, where
        if "interval" in group:
            _check_duration(group["interval"], where)
        assert isinstance(group["rules"], list) and group["rules"], where
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), f"{where}: {rule}"
            assert set(rule) <= {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
            assert isinstance(rule["expr"], str) and rule["expr"].strip(), f"{where}: empty expr"
            if "record" in rule:
                assert METRIC_NAME.match(rule["record"]), rule["record"]
                assert "for" not in rule and "annotations" not in rule
            else:
                assert isinstance(rule["alert"], str) and rule["alert"], where
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    _check_duration(rule[key], f"{where}: {key}")
            for key in ("labels", "annotations"):
                if key in rule:
                    _check_string_map(rule[key], f"{where}: {key}")


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v.has(MONITORING)], ids=lambda v: v.name)
def test_prometheus_operator_objects_are_well_formed(render: Render, variant: Variant) -> None:
    objs = render(variant)
    _check_service_monitor(_one(objs, "ServiceMonitor", NAME), objs)
    (rule_object,) = _of_kind(objs, "PrometheusRule")
    _check_prometheus_rule(rule_object)
    # The rendered rule is the generated file, only placed in the namespace.
    shipped = yaml.safe_load((REPO / "deploy/monitoring/prometheusrule.yaml").read_text())
    assert rule_object["spec"] == shipped["spec"]


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v.has(MONITORING)], ids=lambda v: v.name)
def test_dashboards_config_map(render: Render, variant: Variant) -> None:
    config_map = _one(render(variant), "ConfigMap", DASHBOARDS_CONFIGMAP)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = {
        "kubevirt-vss-fleet.json": REPO / "deploy/monitoring/dashboards/kubevirt-vss-fleet.json",
        "kubevirt-vss-vm.json": REPO / "deploy/monitoring/dashboards/kubevirt-vss-vm.json",
    }
    assert set(config_map["data"]) == set(files)
    for key, path in files.items():
        assert config_map["data"][key] == path.read_text()
        dashboard = json.loads(config_map["data"][key])
        assert isinstance(dashboard, dict) and dashboard.get("title"), key
    # A ConfigMap holds at most 1 MiB.
    assert sum(len(v.encode()) for v in config_map["data"].values()) < 1024 * 1024


# --- kube-prometheus-stack -------------------------------------------------------------------------------


def test_kube_prometheus_stack_selects_the_rules_monitor_and_dashboards(render: Render) -> None:
    objs = render(BY_NAME["kube-prometheus-stack"])
    for kind in ("ServiceMonitor", "PrometheusRule"):
        (obj,) = _of_kind(objs, kind)
        assert _selects(KPS_RELEASE, obj["metadata"]["labels"]), kind
    labelled = sorted(o["kind"] for o in objs if "release" in o["metadata"].get("labels", {}))
    assert labelled == ["PrometheusRule", "ServiceMonitor"]
    dashboards = _one(objs, "ConfigMap", DASHBOARDS_CONFIGMAP)
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_kube_prometheus_stack_release_is_written_in_one_place() -> None:
    (release,) = KPS_RELEASE.values()
    files = [p for p in KPS_OVERLAY.rglob("*") if p.is_file()]
    code = {p: [line for line in p.read_text().splitlines() if not line.lstrip().startswith("#")] for p in files}
    uses = [(p.name, line.strip()) for p, lines in code.items() for line in lines if release in line]
    assert uses == [("kustomization.yaml", f"value: {release}")]


def test_kube_prometheus_stack_needs_no_secret_and_no_pod_logs(render: Render) -> None:
    objs = render(BY_NAME["kube-prometheus-stack"])
    assert not _of_kind(objs, "Secret")
    spec = _pod_template(_the_workload(objs))["spec"]
    assert not [v for v in spec["volumes"] if set(v) & {"secret", "projected"}]
    for container in spec["containers"]:
        assert "envFrom" not in container
        assert not [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    assert not {resource for _, resource, _ in _granted(objs)} & {"pods/log", "secrets"}
    assert "--follow-launcher-logs" not in _args(_the_workload(objs))


# --- image -----------------------------------------------------------------------------------------------


def _published_image() -> str:
    """ghcr.io/<owner>/<repository>, from the repository the runbook links point at."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    rules = importlib.import_module("alerts.rules")
    match = re.match(r"https://github\.com/([^/]+)/([^/]+)/", rules.Settings().runbook_base_url)
    assert match, "the runbook base URL names no GitHub repository"
    return f"ghcr.io/{match[1]}/{match[2]}".lower()


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_workloads_run_the_published_image_of_this_version(render: Render, variant: Variant) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for workload in _workloads(render(variant)):
        assert _container(workload)["image"] == f"{_published_image()}:{version}"


def test_the_image_can_be_overridden_with_kustomize_images(tmp_path: Path) -> None:
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": [os.path.relpath(DEPLOY / "overlays" / "kube-prometheus-stack", tmp_path)],
        "images": [{"name": _published_image(), "newName": "registry.example.com/mirror/exporter", "newTag": "9.9.9"}],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    workload = _the_workload(_kustomize(_kubectl(), tmp_path))
    assert _container(workload)["image"] == "registry.example.com/mirror/exporter:9.9.9"
