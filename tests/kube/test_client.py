"""The client adapter over real HTTP: one object with invalid UTF-8 does not cost the whole list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.kube.client import KubeClient
from exporter.untrusted import INVALID_TEXT, Cleaned

TOKEN = "client-test-token"
LIST_WITH_INVALID_UTF8 = (
    b'{"kind":"VirtualMachineInstanceList","metadata":{"resourceVersion":"7"},"items":['
    b'{"metadata":{"namespace":"ns","name":"good"},"status":{"phase":"Running"}},'
    b'{"metadata":{"namespace":"ns","name":"bad"},"status":{"nodeName":"node-\xff\xfe"}}]}'
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[KubeClient]:
    async def vmis(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return web.Response(body=LIST_WITH_INVALID_UTF8, content_type="application/json")

    app = web.Application()
    app.router.add_get("/apis/kubevirt.io/v1/virtualmachineinstances", vmis)
    async with TestServer(app, host="127.0.0.1") as server:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": str(server.make_url(""))}}],
                    "users": [{"name": "u", "user": {"token": TOKEN}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        kube = await KubeClient.connect(kubeconfig=str(kubeconfig))
        yield kube
        await kube.close()


async def test_invalid_utf8_in_one_object_is_replaced_and_the_list_goes_through(client: KubeClient) -> None:
    page = await client.get_json("/apis/kubevirt.io/v1/virtualmachineinstances")
    good, bad = page["items"]
    assert good == {"metadata": {"namespace": "ns", "name": "good"}, "status": {"phase": "Running"}}
    assert isinstance(bad, Cleaned) and bad.problems == {INVALID_TEXT}
    assert bad["status"]["nodeName"] == "node-\ufffd\ufffd"
