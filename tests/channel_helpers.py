"""Attack tools for the workspace channel tests: certificates an attacker could hold and a raw
TLS probe that says whether a request got any HTTP answer through."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from datalibrary.workspaces import channel_ca


def self_signed(name: str) -> channel_ca.Leaf:
    """A certificate naming ``name``, signed by its own key (no CA at all)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return channel_ca.Leaf(cert_pem=pem, key_pem=key_pem, ca_pem=pem)


def foreign_ca(directory: Path) -> channel_ca.ChannelCA:
    """Another installation's CA."""
    return channel_ca.ChannelCA.load_or_create(directory / "foreign-ca.pem")


def attacker_context(leaf: channel_ca.Leaf | None) -> ssl.SSLContext:
    """A client that presents ``leaf`` (or no certificate) and trusts whatever answers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if leaf is not None:
        with_leaf = channel_ca.client_context(leaf)  # loads the chain through the same code
        context = with_leaf
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def probe(host: str, port: int, context: ssl.SSLContext, request: bytes, server_hostname: str = "x") -> bytes:
    """Send ``request`` over TLS; what came back (b"" when the peer refused: a handshake
    failure, a reset or a close before any answer all count as refused)."""
    try:
        with (
            socket.create_connection((host, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=server_hostname) as tls,
        ):
            tls.sendall(request)
            chunks = b""
            while len(chunks) < 4096:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                chunks += chunk
                if b"\r\n\r\n" in chunks:
                    break
            return chunks
    except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
        return b""


def http_get(path: str, host: str = "workspace", token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n".encode()
