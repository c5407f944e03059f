"""Thin adapter over ``kubernetes.aio``: configuration, auth and requests come from the client.

This is the only module that imports the Kubernetes client. It returns plain dicts and
streams of lines, and raises only our own errors (``exporter.kube.errors``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from kubernetes.aio import client as k8s_client
from kubernetes.aio import config as k8s_config

from exporter import untrusted
from exporter.kube import errors

MAX_LINE = 8 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
Query = Mapping[str, str | int | bool]


class KubeClient:
    """Requests against one API server; create with :meth:`from_kubeconfig` or :meth:`in_cluster`."""

    def __init__(self, api: k8s_client.ApiClient) -> None:
        self._api = api
        self.host: str = api.configuration.host

    @classmethod
    async def connect(cls, *, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """Kubeconfig when given (or ``$KUBECONFIG``); in-cluster service account otherwise."""
        try:
            if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ and "KUBECONFIG" not in os.environ:
                configuration = k8s_client.Configuration()
                k8s_config.load_incluster_config(client_configuration=configuration)
                api = k8s_client.ApiClient(configuration=configuration)
            else:
                api = await k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
        except (k8s_config.ConfigException, OSError, ValueError) as error:
            raise errors.KubeError(f"cannot load Kubernetes configuration: {error}") from error
        return cls(api)

    async def close(self) -> None:
        await self._api.close()

    async def _request(self, path: str, query: Query | None, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()]
        try:
            method, url, headers, _body, _post = await self._api.param_serialize(
                "GET",
                path,
                query_params=params,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = await self._api.call_api(method, url, header_params=headers, _request_timeout=timeout)
        except Exception as error:  # the client raises a wide range of transport errors
            raise errors.from_exception(error) from error
        raw: aiohttp.ClientResponse = response.response
        if raw.status >= 400:
            try:
                body_bytes = await raw.content.read(MAX_ERROR_BODY)
            except (aiohttp.ClientError, TimeoutError):
                body_bytes = b""
            finally:
                raw.release()
            raise errors.from_status(raw.status, body_bytes, headers=dict(raw.headers))
        return raw

    async def get_json(self, path: str, *, query: Query | None = None, timeout: float = 30.0) -> Any:
        """GET a JSON document."""
        raw = await self._request(path, query, aiohttp.ClientTimeout(total=timeout))
        try:
            body = await raw.read()
        except Exception as error:
            raise errors.from_exception(error) from error
        finally:
            raw.release()
        try:
            return untrusted.loads(body)
        except ValueError as error:
            raise errors.MalformedResponse(f"response is not JSON: {errors.excerpt(body)}") from error

    @asynccontextmanager
    async def stream_lines(
        self, path: str, *, query: Query | None = None, connect_timeout: float = 15.0
    ) -> AsyncIterator[aiohttp.StreamReader]:
        """Open a streaming GET (watch, log follow); the caller reads lines with its own timeouts."""
        timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=None)
        raw = await self._request(path, query, timeout)
        try:
            yield raw.content
        finally:
            raw.close()
