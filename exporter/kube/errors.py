"""Our error tree for the Kubernetes API edge, mapped once from aiohttp and HTTP statuses.

Only a bounded excerpt of a foreign error body is kept, so nothing large or secret reaches a log.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp

MAX_BODY_EXCERPT = 300


class KubeError(Exception):
    """Any failure talking to the API; ``reason`` is a bounded label value."""

    reason = "error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Gone(KubeError):
    """410: the resourceVersion or continue token expired; relist."""

    reason = "expired"


class Unauthorized(KubeError):
    reason = "unauthorized"


class Forbidden(KubeError):
    reason = "forbidden"


class NotFound(KubeError):
    reason = "not_found"


class TooManyRequests(KubeError):
    reason = "too_many_requests"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(KubeError):
    reason = "server_error"


class TransportError(KubeError):
    """Connection refused, reset, TLS failure, or a timeout before an answer."""

    reason = "transport"


class ConfigurationError(KubeError):
    """The kubeconfig or the service account cannot be used (missing, unreadable, invalid)."""

    reason = "configuration"


class CertificateError(KubeError):
    """The server's certificate did not verify against our CA (which may have been rotated)."""

    reason = "tls"


class StalledStream(KubeError):
    """A watch or log stream sent nothing within the inactivity timeout."""

    reason = "inactivity"


class MalformedResponse(KubeError):
    reason = "malformed_response"


def excerpt(body: bytes | str) -> str:
    """A short, single-line excerpt of an error body; the Status message when there is one."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        text = decoded["message"]
    text = " ".join(text.split())
    return text[:MAX_BODY_EXCERPT]


def from_status(status: int, body: bytes, *, headers: dict[str, str] | None = None) -> KubeError:
    message = f"HTTP {status}: {excerpt(body)}"
    if status == 410:
        return Gone(message, status=status)
    if status == 401:
        return Unauthorized(message, status=status)
    if status == 403:
        return Forbidden(message, status=status)
    if status == 404:
        return NotFound(message, status=status)
    if status == 429:
        retry_after = None
        raw = (headers or {}).get("Retry-After")
        if raw is not None and raw.isdigit():
            retry_after = float(raw)
        return TooManyRequests(message, status=status, retry_after=retry_after)
    if status >= 500:
        return ServerError(message, status=status)
    return KubeError(message, status=status)


def from_exception(error: BaseException) -> KubeError:
    """Translate a transport-level exception; our own errors pass through unchanged."""
    if isinstance(error, KubeError):
        return error
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        return TransportError("request timed out")
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return CertificateError(f"certificate verification failed: {str(error)[:MAX_BODY_EXCERPT]}")
    if isinstance(error, aiohttp.ClientResponseError):
        return from_status(error.status, str(error.message).encode())
    if isinstance(error, (aiohttp.ClientError, OSError)):
        return TransportError(f"{type(error).__name__}: {str(error)[:MAX_BODY_EXCERPT]}")
    if isinstance(error, ValueError):
        return MalformedResponse(str(error)[:MAX_BODY_EXCERPT])
    return KubeError(f"{type(error).__name__}: {str(error)[:MAX_BODY_EXCERPT]}")
