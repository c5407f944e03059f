"""Token, kubeconfig and TLS material, and the official Kubernetes client reading them."""

from __future__ import annotations

import base64
import ipaddress
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography import x509
from kubernetes.aio import client, config, watch

from exporter.simulator import Simulator, SimulatorConfig
from exporter.simulator.kubeconfig import CONTEXT_NAME, build_kubeconfig, derive_token, generate_tls

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


def test_token_is_derived_from_the_seed() -> None:
    assert derive_token(1) == derive_token(1)
    assert derive_token(1) != derive_token(2)
    assert len(derive_token(1)) == 64
    int(derive_token(1), 16)


def test_kubeconfig_names_one_context_and_carries_the_ca_only_with_tls() -> None:
    plain = build_kubeconfig(server="http://127.0.0.1:1", token="t", ca_pem=None)
    secure = build_kubeconfig(server="https://127.0.0.1:1", token="t", ca_pem=b"PEM")

    assert plain["current-context"] == CONTEXT_NAME == "kubevirt-vss-simulator"
    assert plain["contexts"] == [{"name": CONTEXT_NAME, "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME}}]
    assert plain["users"][0]["user"] == {"token": "t"}
    assert "certificate-authority-data" not in plain["clusters"][0]["cluster"]
    assert base64.b64decode(secure["clusters"][0]["cluster"]["certificate-authority-data"]) == b"PEM"


def test_tls_material_covers_loopback_and_keeps_the_ca_key_per_seed() -> None:
    first, again, other = generate_tls(5), generate_tls(5), generate_tls(6)
    cert = x509.load_pem_x509_certificate(first.cert_pem)
    ca = x509.load_pem_x509_certificate(first.ca_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                          ipaddress.ip_address("::1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.issuer == ca.subject
    assert x509.load_pem_x509_certificate(again.ca_pem).public_key() == ca.public_key()
    assert x509.load_pem_x509_certificate(other.ca_pem).public_key() != ca.public_key()
    assert isinstance(first.server_context(), ssl.SSLContext)


async def test_written_kubeconfig_is_private_and_points_at_the_server(tmp_path: Path) -> None:
    async with Simulator(SimulatorConfig(story=False, seed=9)) as sim:
        path = tmp_path / "sub" / "kubeconfig"
        sim.write_kubeconfig(path)
        loaded = yaml.safe_load(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert loaded["clusters"][0]["cluster"]["server"] == sim.url
    assert loaded["users"][0]["user"]["token"] == derive_token(9)


async def test_restart_with_same_seed_and_port_accepts_the_old_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    async with Simulator(SimulatorConfig(story=False, seed=4, tls=True)) as first:
        first.write_kubeconfig(path)
        port = first.port
    async with Simulator(SimulatorConfig(story=False, seed=4, tls=True, port=port)) as second:
        second.store.upsert("virtualmachineinstances", {"metadata": {"name": "a", "namespace": "ns1"}})
        api = await config.new_client_from_config(config_file=str(path))
        async with api:
            listed = await client.CustomObjectsApi(api).list_cluster_custom_object(
                "kubevirt.io", "v1", "virtualmachineinstances")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_official_client_lists_pages_and_watches(tmp_path: Path, tls: bool) -> None:
    async with Simulator(SimulatorConfig(story=False, tls=tls)) as sim:
        for i in range(5):
            sim.store.upsert("virtualmachineinstances", {"metadata": {"name": f"vm-{i}", "namespace": "ns1"}})
        sim.store.upsert("pods", {"metadata": {"name": "virt-launcher-vm-0-abcde", "namespace": "ns1",
                                               "labels": {"kubevirt.io": "virt-launcher"}},
                                  "spec": {"containers": [{"name": "compute"}]}})
        path = tmp_path / "kubeconfig"
        sim.write_kubeconfig(path)
        assert sim.url.startswith("https://" if tls else "http://")
        api = await config.new_client_from_config(config_file=str(path))
        async with api:
            objects = client.CustomObjectsApi(api)
            page = await objects.list_cluster_custom_object("kubevirt.io", "v1", "virtualmachineinstances", limit=3)
            rest = await objects.list_cluster_custom_object("kubevirt.io", "v1", "virtualmachineinstances",
                                                            _continue=page["metadata"]["continue"])
            pods = await client.CoreV1Api(api).list_namespaced_pod("ns1", label_selector="kubevirt.io=virt-launcher")
            sim.store.delete("virtualmachineinstances", "ns1", "vm-4")
            events = []
            stream = watch.Watch()
            async with stream:
                async for event in stream.stream(
                    objects.list_cluster_custom_object, "kubevirt.io", "v1", "virtualmachineinstances",
                    resource_version=page["metadata"]["resourceVersion"], timeout_seconds=1,
                    allow_watch_bookmarks=True,
                ):
                    events.append((event["type"], event["raw_object"]["metadata"].get("name")))
        assert len(page["items"]) + len(rest["items"]) == 5
        assert pods.items[0].metadata.name == "virt-launcher-vm-0-abcde"
        assert events[0] == ("DELETED", "vm-4")
        assert events[-1] == ("BOOKMARK", None)
        assert stream.resource_version == str(sim.store.resource_version)


async def test_https_rejects_a_client_without_the_ca() -> None:
    async with Simulator(SimulatorConfig(story=False, tls=True)) as sim, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{sim.url}/version")
        context = ssl.create_default_context(cadata=sim.ca_pem.decode() if sim.ca_pem else None)
        async with http.get(f"{sim.url}/version", ssl=context,
                            headers={"Authorization": f"Bearer {sim.token}"}) as response:
            assert response.status == 200
