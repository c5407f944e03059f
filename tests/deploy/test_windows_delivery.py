"""Getting the guest report into a Windows VM the KubeVirt way: ConfigMap and Secret disks, cloudbase-init.

deploy/windows/kustomization.yaml renders the ConfigMap (scripts, exporter URL) and the user-data
Secret; vm-disks-patch.yaml and vm-cloudbase-init-patch.yaml attach them to a VirtualMachine.
The rendered objects are validated against the Kubernetes schemas, the patched VM's disks and
volumes against KubeVirt v1.9.0's OpenAPI definitions (tests/data/kubevirt), strictly.

Facts about KubeVirt these files rely on (kubevirt/kubevirt v1.9.0):
* a ConfigMap or Secret volume attached as a disk is an ISO image of its keys, made with
  ``xorrisofs -volid <volumeLabel> -joliet -rock`` (label ``cfgdata`` when none is given):
  pkg/config/config.go:110-128; the field is ``volumeLabel`` on both sources:
  staging/src/kubevirt.io/api/core/v1/schema.go:101,116;
* ``cloudInitNoCloud.secretRef`` is read from the Secret's ``userdata`` (or ``userData``) key:
  pkg/cloud-init/cloud-init.go:234, schema.go:176.

Without kubectl the tests skip, except under CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft4Validator

from tests.tools import required_tool

REPO = Path(__file__).resolve().parents[2]
WINDOWS = REPO / "deploy" / "windows"
DATA = REPO / "tests" / "data" / "kubevirt"
VM_FIXTURE = DATA / "vm-windows.yaml"
OPENAPI = DATA / "openapi-v1.9.0-disk-volume.json"
DISKS_PATCH = WINDOWS / "vm-disks-patch.yaml"
CLOUDBASE_INIT_PATCH = WINDOWS / "vm-cloudbase-init-patch.yaml"
BOOTSTRAP = WINDOWS / "Install-VssGuestReportFromDisk.ps1"
USERDATA = WINDOWS / "cloudbase-init-userdata.ps1"
INSTALL = WINDOWS / "Install-VssGuestReport.ps1"

SCRIPTS_CONFIGMAP = "kubevirt-vss-guest-report"
USERDATA_SECRET = "kubevirt-vss-guest-report-userdata"
TOKEN_SECRET = "kubevirt-vss-guest-report-token"
# What deploy/components/guest-reports creates, in the exporter's namespace.
GUEST_REPORT_SERVICE = ("kubevirt-vss-exporter-guest-reports", "kubevirt-vss-exporter")
GUEST_REPORT_PORT = 9746
GUEST_REPORTS_COMPONENT = REPO / "deploy" / "components" / "guest-reports"

Obj = dict[str, Any]


def _run(*args: str) -> str:
    result = subprocess.run([required_tool("kubectl"), *args], capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], Obj]:
    docs = [d for d in yaml.safe_load_all(_run("kustomize", str(WINDOWS))) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _patched(workdir: Path, *patches: Path) -> Obj:
    """The VM fixture with ``patches`` applied in order by kubectl's own JSON patch."""
    vm_file = VM_FIXTURE
    for index, patch in enumerate(patches):
        out = _run("patch", "--local", "-f", str(vm_file), "--type", "json", "--patch-file", str(patch), "-o", "yaml")
        vm_file = workdir / f"vm-{index}.yaml"
        vm_file.write_text(out)
    return yaml.safe_load(vm_file.read_text())


def _strict(schema: Any) -> Any:
    """KubeVirt's definitions with unknown fields refused, as kubernetes-validate's strict mode does."""
    if isinstance(schema, dict):
        strict = {k: _strict(v) for k, v in schema.items()}
        if strict.get("type") == "object" and "properties" in strict:
            strict.setdefault("additionalProperties", False)
        return strict
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _validator(definition: str) -> Draft4Validator:
    document = _strict(json.loads(OPENAPI.read_text()))
    return Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]})


def _template_spec(vm: Obj) -> Obj:
    return vm["spec"]["template"]["spec"]


# --- rendered objects --------------------------------------------------------------------------------------


def test_rendered_objects_validate_strictly(rendered: dict[tuple[str, str], Obj]) -> None:
    assert set(rendered) == {("ConfigMap", SCRIPTS_CONFIGMAP), ("Secret", USERDATA_SECRET)}
    version = kubernetes_validate.latest_version()
    for (kind, name), obj in rendered.items():
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{kind}/{name}: {error.message} at {list(error.path)}")
        # Applied with -n <vm-namespace>: no namespace of their own.
        assert "namespace" not in obj["metadata"], name
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "kubevirt-vss-exporter"


def test_the_configmap_carries_the_scripts_as_they_are(rendered: dict[tuple[str, str], Obj]) -> None:
    data = rendered[("ConfigMap", SCRIPTS_CONFIGMAP)]["data"]
    scripts = {p.name for p in WINDOWS.glob("*.ps1")} - {USERDATA.name}
    assert set(data) == scripts | {"exporter-url"}
    for name in scripts:
        assert data[name] == (WINDOWS / name).read_text(encoding="ascii"), name


def test_the_user_data_secret_is_the_cloudbase_init_script(rendered: dict[tuple[str, str], Obj]) -> None:
    secret = rendered[("Secret", USERDATA_SECRET)]
    assert set(secret["data"]) == {"userdata"}
    userdata = base64.b64decode(secret["data"]["userdata"]).decode("ascii")
    assert userdata == USERDATA.read_text(encoding="ascii")
    # cloudbase-init picks the interpreter from the first line; sysnative = 64-bit PowerShell.
    assert userdata.startswith("#ps1_sysnative\n")
    # The token never travels in user data (which KubeVirt serves to the guest unauthenticated).
    assert "Bearer" not in userdata and "-Token " not in userdata and "TokenFile" not in userdata


def _guest_report_service() -> tuple[str, str, int]:
    service = yaml.safe_load((GUEST_REPORTS_COMPONENT / "service.yaml").read_text())
    (port,) = service["spec"]["ports"]
    return service["metadata"]["name"], GUEST_REPORT_SERVICE[1], port["port"]


def test_the_exporter_url_is_the_deployed_guest_report_service(rendered: dict[tuple[str, str], Obj]) -> None:
    name, namespace, port = _guest_report_service()
    assert (name, port) == (GUEST_REPORT_SERVICE[0], GUEST_REPORT_PORT)
    expected = f"http://{name}.{namespace}.svc.cluster.local:{port}"
    assert rendered[("ConfigMap", SCRIPTS_CONFIGMAP)]["data"]["exporter-url"] == expected
    # The installer's default is the same URL.
    assert f"[string] $ExporterUrl = '{expected}'" in INSTALL.read_text(encoding="ascii")


def test_every_port_in_the_scripts_is_the_guest_report_port() -> None:
    for script in WINDOWS.glob("*.ps1"):
        ports = {int(p) for p in re.findall(r"https?://[^\s'\"/]+:(\d+)", script.read_text(encoding="ascii"))}
        assert ports <= {GUEST_REPORT_PORT}, (script.name, ports)
        for text in re.findall(r"port (\d+)", script.read_text(encoding="ascii")):
            assert int(text) == GUEST_REPORT_PORT, script.name


# --- the VM patches ----------------------------------------------------------------------------------------


def _patch_ops(path: Path) -> list[Obj]:
    ops = yaml.safe_load(path.read_text())
    assert isinstance(ops, list) and ops
    for op in ops:
        assert op["op"] == "add", op
        # Appends only: the patch must not replace the VM's own disks or volumes.
        assert op["path"] in ("/spec/template/spec/domain/devices/disks/-", "/spec/template/spec/volumes/-"), op
    return ops


@pytest.mark.parametrize("patch", [DISKS_PATCH, CLOUDBASE_INIT_PATCH], ids=lambda p: p.name)
def test_patch_values_validate_against_kubevirt_openapi(patch: Path) -> None:
    validators = {"disks": _validator("v1.Disk"), "volumes": _validator("v1.Volume")}
    for op in _patch_ops(patch):
        kind = "disks" if op["path"].endswith("/disks/-") else "volumes"
        errors = [f"{list(e.path)}: {e.message}" for e in validators[kind].iter_errors(op["value"])]
        assert errors == [], (patch.name, op["value"]["name"])


def test_the_validation_refuses_unknown_fields() -> None:
    volume = {"name": "x", "configMap": {"name": "y", "volumeLable": "VSSREPORT"}}
    assert list(_validator("v1.Volume").iter_errors(volume))
    assert not list(_validator("v1.Volume").iter_errors({"name": "x", "configMap": {"name": "y"}}))


def test_patched_vm_pairs_every_disk_with_a_volume(tmp_path: Path) -> None:
    original = yaml.safe_load(VM_FIXTURE.read_text())
    vm = _patched(tmp_path, DISKS_PATCH, CLOUDBASE_INIT_PATCH)
    spec = _template_spec(vm)
    disks = {d["name"]: d for d in spec["domain"]["devices"]["disks"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert set(disks) == set(volumes)
    # The VM's own disk and volume are still there, first and unchanged.
    assert spec["domain"]["devices"]["disks"][0] == _template_spec(original)["domain"]["devices"]["disks"][0]
    assert spec["volumes"][0] == _template_spec(original)["volumes"][0]
    for validator, items in ((_validator("v1.Disk"), disks), (_validator("v1.Volume"), volumes)):
        for item in items.values():
            assert not list(validator.iter_errors(item)), item["name"]
    assert volumes["vss-guest-report"]["configMap"]["name"] == SCRIPTS_CONFIGMAP
    assert volumes["vss-guest-report-token"]["secret"]["secretName"] == TOKEN_SECRET
    assert volumes["cloudinitdisk"]["cloudInitNoCloud"] == {"secretRef": {"name": USERDATA_SECRET}}
    # Read-only CD-ROMs on SATA: Windows reads them without the virtio storage driver.
    for name in ("vss-guest-report", "vss-guest-report-token"):
        assert disks[name] == {"name": name, "cdrom": {"bus": "sata"}}


def test_volume_labels_are_what_the_scripts_look_for() -> None:
    volumes = {op["value"]["name"]: op["value"] for op in _patch_ops(DISKS_PATCH) if op["path"].endswith("volumes/-")}
    report_label = volumes["vss-guest-report"]["configMap"]["volumeLabel"]
    token_label = volumes["vss-guest-report-token"]["secret"]["volumeLabel"]
    bootstrap = BOOTSTRAP.read_text(encoding="ascii")
    assert f"[string] $TokenVolumeLabel = '{token_label}'" in bootstrap
    assert f"volume label {report_label}" in bootstrap
    for label in (report_label, token_label):
        # A Joliet volume identifier (what Windows shows) holds at most 16 characters.
        assert re.fullmatch(r"[A-Z0-9_]{1,16}", label), label
    # The bootstrap reads the token from the Secret's key and the URL from the ConfigMap's key.
    assert "$TokenFileName = 'token'" in bootstrap and "$UrlFileName = 'exporter-url'" in bootstrap


def test_user_data_finds_the_bootstrap_by_its_file_name() -> None:
    userdata = USERDATA.read_text(encoding="ascii")
    assert f"$ScriptName = '{BOOTSTRAP.name}'" in userdata
    assert "-ExecutionPolicy Bypass -File $bootstrap" in userdata
    assert "exit $LASTEXITCODE" in userdata


def test_the_vm_fixture_is_a_plain_virtual_machine() -> None:
    vm = yaml.safe_load(VM_FIXTURE.read_text())
    assert (vm["apiVersion"], vm["kind"]) == ("kubevirt.io/v1", "VirtualMachine")
    spec = copy.deepcopy(_template_spec(vm))
    for disk in spec["domain"]["devices"]["disks"]:
        assert not list(_validator("v1.Disk").iter_errors(disk))
    for volume in spec["volumes"]:
        assert not list(_validator("v1.Volume").iter_errors(volume))
