"""Thin adapter over ``kubernetes.aio``: configuration, auth and requests come from the client.

With ``kube/credentials.py`` this is the only place that imports the Kubernetes client. It returns plain dicts and
streams of lines, and raises only our own errors (``exporter.kube.errors``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import structlog
from kubernetes.aio import client as k8s_client

from exporter import untrusted
from exporter.kube import errors
from exporter.kube.credentials import CredentialSource, Loaded, source
from exporter.self_metrics import SelfMetrics

MAX_LINE = 8 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
Query = Mapping[str, str | int | bool]
CREDENTIAL_CHECK_SECONDS = 1.0
_log = structlog.get_logger("exporter.kube.client").bind(component="kube_client")


class KubeClient:
    """Requests against one API server, with credentials that may change under it.

    Before a request (at most once a second) the credential files are checked for changes; a 401
    or a certificate that no longer verifies reloads them and retries once. A new token is swapped
    into the running configuration (open watches keep going); a new CA or client certificate means
    a new connection pool, the previous one closed a rotation later, once its watches have ended.
    """

    def __init__(
        self,
        api: k8s_client.ApiClient,
        *,
        credentials: CredentialSource | None = None,
        loaded: Loaded | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self.host: str = api.configuration.host
        self._credentials = credentials
        self._loaded = loaded
        self._clock = clock
        self._checked_at = clock()
        self._reload_lock = asyncio.Lock()
        self._retired: list[k8s_client.ApiClient] = []
        self._metrics: SelfMetrics | None = None

    @classmethod
    async def connect(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        credentials: CredentialSource | None = None,
    ) -> KubeClient:
        """Kubeconfig when given (or ``$KUBECONFIG``); in-cluster service account otherwise."""
        credentials = credentials or source(kubeconfig=kubeconfig, context=context)
        loaded = await credentials.load()
        return cls(k8s_client.ApiClient(configuration=loaded.configuration), credentials=credentials, loaded=loaded)

    @property
    def credentials(self) -> str:
        return self._credentials.description if self._credentials is not None else "given configuration"

    def report_to(self, metrics: SelfMetrics) -> None:
        """Show the authentication state in ``metrics`` from now on."""
        self._metrics = metrics
        metrics.credentials_loaded.set(time.time())

    async def close(self) -> None:
        for api in [*self._retired, self._api]:
            await api.close()
        self._retired.clear()

    async def _request(self, path: str, query: Query | None, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        if self._credentials is not None and self._clock() - self._checked_at >= CREDENTIAL_CHECK_SECONDS:
            self._checked_at = self._clock()
            if self._credentials.changed():
                await self._reload("file_changed")
        try:
            return await self._send(path, query, timeout)
        except (errors.Unauthorized, errors.CertificateError) as error:
            if isinstance(error, errors.Unauthorized):
                self._authenticated(False)
            if not await self._reload(error.reason):
                raise
            return await self._send(path, query, timeout)

    async def _reload(self, trigger: str) -> bool:
        """Read the credentials again; True when they changed and are now in use."""
        if self._credentials is None or self._loaded is None:
            return False
        async with self._reload_lock:
            try:
                loaded = await self._credentials.load()
            except errors.KubeError:
                self._count_reload(trigger, "error")
                return False
            current = self._loaded
            if loaded.token == current.token and loaded.same_tls(current):
                self._count_reload(trigger, "unchanged")
                return False
            if loaded.same_tls(current):
                self._api.configuration.api_key = dict(loaded.configuration.api_key)
                self._api.configuration.refresh_api_key_hook = loaded.configuration.refresh_api_key_hook
            else:
                self._retired.append(self._api)
                self._api = k8s_client.ApiClient(configuration=loaded.configuration)
                while len(self._retired) > 1:
                    await self._retired.pop(0).close()
            self._loaded = loaded
            self._count_reload(trigger, "changed")
            if self._metrics is not None:
                self._metrics.credentials_loaded.set(time.time())
            return True

    def _count_reload(self, trigger: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.credential_reloads.labels(trigger, result).inc()
        _log.info("credentials_reloaded", trigger=trigger, result=result, source=self.credentials)

    def _authenticated(self, value: bool) -> None:
        if self._metrics is not None:
            self._metrics.authenticated.set(1 if value else 0)

    async def _send(self, path: str, query: Query | None, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()]
        api = self._api
        try:
            method, url, headers, _body, _post = await api.param_serialize(
                "GET",
                path,
                query_params=params,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = await api.call_api(method, url, header_params=headers, _request_timeout=timeout)
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
        self._authenticated(True)
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
