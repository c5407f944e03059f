"""Three shards, one guest-report Service: every report ends up at the shard that owns its VM.

All simulated Windows guests post to shard 0 (as a Service may route them); shard 0 keeps the
reports of its own VMs and forwards the others to their shard, authenticated by the shards' token.
The shards listen on 127.0.200.<ordinal>, all on the same port, as StatefulSet pods do on their
own DNS names (the forward URL template names the shard).
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp

from exporter.settings import Address
from exporter.simulator import Simulator, SimulatorConfig
from exporter.simulator.guest_reporter import build_report_document
from exporter.state.records import VmKey
from exporter.state.sharding import shard_of
from exporter.web.shard_forwarding import FORWARDED_PATH, SOURCE_HEADER
from tests.integration.conftest import Running, value

TOKEN = "guest-token"
SHARD_TOKEN = "shards-only-token"
SHARDS = 3
REPORTS = "/api/v1/guest-reports"


def shard_host(shard: int) -> str:
    return f"127.0.200.{shard}"


def free_port_on_every_shard_address() -> int:
    with socket.socket() as probe:
        probe.bind((shard_host(0), 0))
        return int(probe.getsockname()[1])


async def post_report(url: str, *, source: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session, session.post(
        url, json=body, headers=headers
    ) as response:
        return response.status, await response.json(content_type=None)


def reported(samples: dict, key: VmKey) -> bool:
    timestamp = "kubevirt_vss_guest_report_timestamp_seconds"
    return value(samples, timestamp, namespace=key.namespace, name=key.name) is not None


async def test_reports_reach_the_owning_shard_through_any_shard(cluster) -> None:
    port = free_port_on_every_shard_address()
    forward_url = f"http://127.0.200.{{shard}}:{port}{FORWARDED_PATH}"
    async with Simulator(SimulatorConfig(vms=60, seed=3, bookmark_interval=0.5)) as simulator:
        shards: list[Running] = [
            await cluster(
                simulator=simulator,
                shard=ordinal,
                total_shards=SHARDS,
                guest_report_listen=Address(shard_host(ordinal), port),
                guest_report_forward_url=forward_url,
                guest_report_token=TOKEN,
                shard_token=SHARD_TOKEN,
            )
            for ordinal in range(SHARDS)
        ]
        guests = simulator.guest_targets()
        owners = {VmKey(g.namespace, g.name): shard_of(VmKey(g.namespace, g.name), SHARDS) for g in guests}
        assert set(owners.values()) == {0, 1, 2}  # every shard owns some of the reporting guests

        entry = f"http://{shard_host(0)}:{port}{REPORTS}"
        for guest in guests:
            body = build_report_document(guest.profile, hostname=guest.name.upper()[:15], generated_at=simulator.now())
            status, answer = await post_report(
                entry, source=guest.ip, body=body, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert status == 202, (guest, answer)
            assert (answer["namespace"], answer["name"]) == (guest.namespace, guest.name)

        samples = [await shard.scrape() for shard in shards]
        for key, owner in owners.items():
            assert [reported(s, key) for s in samples] == [i == owner for i in range(SHARDS)], key
        forwarded = sum(1 for owner in owners.values() if owner != 0)
        forwards = "kubevirt_vss_exporter_guest_report_forwards_total"
        assert value(samples[0], forwards, result="forwarded") == forwarded
        for ordinal in (1, 2):
            accepted = value(samples[ordinal], "kubevirt_vss_exporter_guest_reports_total", result="accepted")
            assert accepted == sum(1 for owner in owners.values() if owner == ordinal)

        # The forwarded path takes the shards' token only: the guests' token cannot vouch for an address.
        guest = next(g for g in guests if owners[VmKey(g.namespace, g.name)] == 1)
        body = build_report_document(guest.profile, hostname="FORGED", generated_at=simulator.now())
        owner_forward = f"http://{shard_host(1)}:{port}{FORWARDED_PATH}"
        status, _ = await post_report(
            owner_forward,
            source="127.0.0.1",
            body=body,
            headers={"Authorization": f"Bearer {TOKEN}", SOURCE_HEADER: guest.ip},
        )
        assert status == 401

        # A forwarded report that reaches a shard which does not own the VM is refused, not forwarded again.
        wrong_forward = f"http://{shard_host(2)}:{port}{FORWARDED_PATH}"
        status, _ = await post_report(
            wrong_forward,
            source="127.0.0.1",
            body=body,
            headers={"Authorization": f"Bearer {SHARD_TOKEN}", SOURCE_HEADER: guest.ip},
        )
        assert status == 403
        assert value(await shards[2].scrape(), forwards, result="forwarded") is None

        for shard in shards:
            await cluster.stop_exporter(shard)
