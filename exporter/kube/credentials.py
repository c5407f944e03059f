"""Where the API's address and credentials come from, and how to notice that they changed.

Bound service-account tokens rotate (the kubelet rewrites the projected file), and CAs and
kubeconfigs change. A source loads a ``kubernetes.aio`` configuration and a fingerprint of what
it read; ``changed()`` is cheap (file status only) so the client can ask before requests.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kubernetes.aio import client as k8s_client
from kubernetes.aio import config as k8s_config

from exporter.kube import errors

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True)
class Loaded:
    configuration: k8s_client.Configuration
    token: str  # a fingerprint of the bearer token, never the token itself
    tls: str  # a fingerprint of the CA and client certificate material

    def same_tls(self, other: Loaded) -> bool:
        return self.tls == other.tls and self.configuration.host == other.configuration.host


class CredentialSource(Protocol):
    description: str

    async def load(self) -> Loaded: ...
    def changed(self) -> bool: ...


def _digest(*parts: bytes | str | None) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else (part or b""))
        sha.update(b"\x00")
    return sha.hexdigest()[:16]


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten (also through the kubelet's ``..data`` symlink swap)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _read(path: str | None) -> bytes:
    if not path:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


class InCluster:
    """The pod's service account: token and CA files, re-read when either file changes."""

    def __init__(self, *, host: str, directory: Path = SERVICE_ACCOUNT) -> None:
        self.host = host
        self.token_file = directory / "token"
        self.ca_file = directory / "ca.crt"
        self.description = f"service account in {directory}"
        self._seen: tuple[object, object] | None = None

    @classmethod
    def from_environment(cls) -> InCluster:
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        return cls(host=f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}")

    def changed(self) -> bool:
        return self._seen != (_stat_key(self.token_file), _stat_key(self.ca_file))

    async def load(self) -> Loaded:
        self._seen = (_stat_key(self.token_file), _stat_key(self.ca_file))
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
            ca = self.ca_file.read_bytes()
        except OSError as error:
            raise errors.ConfigurationError(f"cannot read the service account: {error}") from error
        if not token:
            raise errors.ConfigurationError(f"the token file {self.token_file} is empty")
        configuration = k8s_client.Configuration(host=self.host)
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.api_key["BearerToken"] = f"Bearer {token}"
        return Loaded(configuration, _digest(token), _digest(ca))


class Kubeconfig:
    """A kubeconfig file (or ``$KUBECONFIG``); re-read when the file changes or the API says 401."""

    def __init__(self, *, path: str | None, context: str | None) -> None:
        self.path = path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
            Path.home() / ".kube" / "config"
        )
        self.context = context
        self.description = f"kubeconfig {self.path}"
        self._seen: object = None

    def changed(self) -> bool:
        return self._seen != _stat_key(Path(self.path))

    async def load(self) -> Loaded:
        self._seen = _stat_key(Path(self.path))
        _check_readable(self.path)
        configuration = k8s_client.Configuration()
        try:
            await k8s_config.load_kube_config(
                config_file=self.path, context=self.context, client_configuration=configuration, persist_config=False
            )
        except (k8s_config.ConfigException, OSError, ValueError, KeyError, TypeError) as error:
            raise errors.ConfigurationError(f"cannot use kubeconfig {self.path}: {error}") from error
        token = configuration.api_key.get("BearerToken") or configuration.api_key.get("authorization") or ""
        tls = _digest(
            _read(configuration.ssl_ca_cert), _read(configuration.cert_file), _read(configuration.key_file)
        )
        return Loaded(configuration, _digest(token), tls)


def _check_readable(path: str) -> None:
    if not os.path.isfile(path):
        raise errors.ConfigurationError(f"kubeconfig {path} does not exist")
    if not os.access(path, os.R_OK):
        raise errors.ConfigurationError(f"kubeconfig {path} is not readable")


def source(*, kubeconfig: str | None, context: str | None) -> CredentialSource:
    """Kubeconfig when given (or ``$KUBECONFIG``); in-cluster service account otherwise."""
    if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ and "KUBECONFIG" not in os.environ:
        return InCluster.from_environment()
    return Kubeconfig(path=kubeconfig, context=context)
