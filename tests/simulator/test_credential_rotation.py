"""The simulator rotates its credentials: a new token (the old one refused) and a new CA, files rewritten."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import yaml

from exporter.simulator import Simulator, SimulatorConfig
from exporter.simulator.server import ROTATE_CREDENTIALS_PATH


def context_for(ca_pem: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca_pem.decode())


async def test_rotation_by_endpoint_refuses_the_old_token_and_serves_a_new_ca(tmp_path: Path) -> None:
    async with Simulator(SimulatorConfig(story=False, tls=True)) as sim, aiohttp.ClientSession() as session:
        sim.write_kubeconfig(tmp_path / "kubeconfig")
        sim.write_service_account(tmp_path / "sa")
        old_token, old_ca = sim.token, sim.ca_pem
        assert old_ca is not None
        headers = {"Authorization": f"Bearer {old_token}"}
        async with session.post(sim.url + ROTATE_CREDENTIALS_PATH, headers=headers, ssl=context_for(old_ca)) as r:
            assert r.status == 204
        assert sim.token != old_token and sim.ca_pem not in (None, old_ca) and sim.generation == 1

        async with aiohttp.ClientSession() as fresh:  # new connections: the new certificate
            new = {"Authorization": f"Bearer {sim.token}"}
            async with fresh.get(sim.url + "/version", headers=new, ssl=context_for(sim.ca_pem)) as r:
                assert r.status == 200
            async with fresh.get(sim.url + "/version", headers=headers, ssl=context_for(sim.ca_pem)) as r:
                assert r.status == 401
        kubeconfig = yaml.safe_load((tmp_path / "kubeconfig").read_text())
        assert kubeconfig["users"][0]["user"]["token"] == sim.token
        assert (tmp_path / "sa" / "token").read_text() == sim.token
        assert (tmp_path / "sa" / "ca.crt").read_bytes() == sim.ca_pem
