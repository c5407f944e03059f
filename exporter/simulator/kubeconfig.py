"""Credentials for the simulated API: the bearer token, the kubeconfig, and optional TLS material.

The token and the TLS keys are derived from the seed, so a simulator restarted with the same seed
and port accepts a kubeconfig it wrote before. They protect nothing: the simulator serves loopback.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONTEXT_NAME = "kubevirt-vss-simulator"
_TOKEN_LABEL = b"kubevirt-vss-simulator/token\x00"
_KEY_LABEL = b"kubevirt-vss-simulator/tls\x00"


def derive_token(seed: int, generation: int = 0) -> str:
    """The bearer token the simulator accepts for ``seed`` (after ``generation`` rotations): hex SHA-256."""
    rotated = f"/{generation}" if generation else ""
    return hashlib.sha256(_TOKEN_LABEL + f"{seed}{rotated}".encode()).hexdigest()


def build_kubeconfig(*, server: str, token: str, ca_pem: bytes | None) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context named ``kubevirt-vss-simulator``, made current."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": cluster}],
        "users": [{"name": CONTEXT_NAME, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT_NAME, "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


def write_kubeconfig(path: str | os.PathLike[str], *, server: str, token: str, ca_pem: bytes | None) -> None:
    """Write the kubeconfig as YAML, readable by the owner only, replacing any file atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(build_kubeconfig(server=server, token=token, ca_pem=ca_pem), sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A CA certificate and a server certificate for 127.0.0.1, ::1 and localhost, all PEM."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.load_into(context)
        return context

    def load_into(self, context: ssl.SSLContext) -> None:
        """Make ``context`` present this certificate; handshakes from now on use it."""
        with tempfile.TemporaryDirectory(prefix="kubevirt-vss-sim-tls-") as folder:
            cert, key = Path(folder, "tls.crt"), Path(folder, "tls.key")
            cert.write_bytes(self.cert_pem + self.ca_pem)
            key.write_bytes(self.key_pem)
            key.chmod(0o600)
            context.load_cert_chain(cert, key)


def write_service_account(directory: str | os.PathLike[str], *, token: str, ca_pem: bytes | None) -> None:
    """Write ``token`` and ``ca.crt`` as a pod's service-account folder holds them, each replaced atomically."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("token", token.encode()), ("ca.crt", ca_pem or b"")):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, folder / name)


def _derived_key(seed: int, purpose: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    digest = hashlib.sha256(_KEY_LABEL + purpose + b"\x00" + str(seed).encode()).digest()
    secret = int.from_bytes(digest) % (2**256 - 2**224 - 1) + 1  # below the P-256 group order
    return ec.derive_private_key(secret, ec.SECP256R1())


def generate_tls(seed: int, *, valid_days: int = 365, generation: int = 0) -> TlsMaterial:
    """A self-signed CA and a server certificate (SAN IP 127.0.0.1 and ::1, DNS localhost), keys from ``seed``
    (and from ``generation``, the number of rotations)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    rotated = f"/{generation}".encode() if generation else b""
    ca_key = _derived_key(seed, b"ca" + rotated)
    server_key = _derived_key(seed, b"server" + rotated)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=valid_days)
    ca_common_name = "kubevirt-vss-simulator-ca" + (f"-{generation}" if generation else "")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_common_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubevirt-vss-simulator")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1")),
                 x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TlsMaterial(
        ca_pem=ca_cert.public_bytes(pem),
        cert_pem=server_cert.public_bytes(pem),
        key_pem=server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
