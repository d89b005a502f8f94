"""The installation's channel CA: certificates for the authenticated channel between the
platform and workspaces running on other machines (the Slurm provisioner's nodes).

One small CA per installation (an ECDSA P-256 key and a self-signed certificate in one PEM
file, mode 0600, ``workspaces.channel_ca_file``; every replica is given the same file, like
the master key). It issues two kinds of leaf certificates, both usable as TLS client and
server (each side of the channel is both):

- the platform's (``PLATFORM_NAME``), issued by each replica to itself at start;
- one per workspace *run* (``ws-<id>-<run>.channel.datalibrary``, ``run`` random per start),
  sent to the node inside the batch script and valid ``workspaces.channel_cert_days``.

The name is what each side checks, so the checks are the standard ones (OpenSSL's chain and
host name verification, TLS 1.3 only): the platform connects to a node expecting exactly the
current run's name (a node holding another workspace's or an earlier run's certificate fails
the handshake); a node accepts only the platform's name; the platform's gateway accepts only
the current run of a running workspace (``channel_gateway``), which is how a certificate is
revoked when its workspace stops or terminates.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from datalibrary.errors import Unavailable

DOMAIN = "channel.datalibrary"
PLATFORM_NAME = f"platform.{DOMAIN}"
RUN_NAME = re.compile(rf"^ws-(\d+)-([0-9a-f]{{16}})\.{re.escape(DOMAIN)}$")
CA_DAYS = 3650
PLATFORM_DAYS = 30


def run_name(workspace_id: int, run: str) -> str:
    return f"ws-{workspace_id}-{run}.{DOMAIN}"


def parse_run_name(name: str) -> tuple[int, str] | None:
    match = RUN_NAME.match(name)
    return (int(match.group(1)), match.group(2)) if match else None


def new_run() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Leaf:
    """A certificate and its key, PEM encoded, with the CA certificate that issued it."""

    cert_pem: str
    key_pem: str
    ca_pem: str
    not_after: dt.datetime | None = None  # None: as received by a node (it does not renew)


class ChannelCA:
    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def load_or_create(cls, path: Path) -> ChannelCA:
        """The CA in ``path``; created (mode 0600, never overwritten) when it does not exist."""
        if not path.exists():
            _create(path)
        data = path.read_bytes()
        try:
            key = serialization.load_pem_private_key(data, password=None)
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise Unavailable(
                f"{path} is not a DataLibrary channel CA (key + certificate PEM): {exc}"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise Unavailable(f"{path}: the channel CA key must be an EC key")
        return cls(key, cert)

    def issue(self, name: str, days: float) -> Leaf:
        """A leaf certificate for ``name`` (client and server), with a fresh key."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        not_after = now + dt.timedelta(days=days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(now - dt.timedelta(minutes=5), not_after - dt.timedelta(hours=1)))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=False,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )  # fmt: skip
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return Leaf(
            cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            ca_pem=self.cert_pem,
            not_after=not_after,
        )


def _create(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DataLibrary"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"DataLibrary channel CA {secrets.token_hex(4)}"),
    ])  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".channel-ca-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.link(temporary, path)  # whole or not at all; never over an existing CA
    except FileExistsError:  # another replica or process made it first: theirs is the CA
        pass
    finally:
        os.unlink(temporary)


# --- TLS contexts ----------------------------------------------------------------------


def _context(purpose: ssl.Purpose, leaf: Leaf) -> ssl.SSLContext:
    """TLS 1.3 only, the installation CA as the only trust anchor, ``leaf`` as our identity."""
    context = ssl.SSLContext(
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=leaf.ca_pem)
    # the standard loader reads files only: a private directory, removed at once
    with tempfile.TemporaryDirectory(prefix="dl-channel-") as directory:
        cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        cert.write_text(leaf.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(leaf.key_pem)
        context.load_cert_chain(cert, key)
    return context


def client_context(leaf: Leaf) -> ssl.SSLContext:
    """Connect as ``leaf``; the peer's name is checked (``server_hostname`` = the expected name)."""
    context = _context(ssl.Purpose.SERVER_AUTH, leaf)
    context.check_hostname = True
    return context


def server_context(leaf: Leaf) -> ssl.SSLContext:
    """Accept as ``leaf`` only peers with a certificate of this CA (whose name the caller checks)."""
    return _context(ssl.Purpose.CLIENT_AUTH, leaf)


def peer_name(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The DNS name in the verified peer certificate's subjectAltName (our leaves carry one)."""
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    names = [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    return names[0] if len(names) == 1 else None


class PlatformIdentity:
    """This replica's certificate and its two contexts (to nodes, and for the gateway),
    renewed when less than a third of its life is left."""

    def __init__(self, ca_file: Path) -> None:
        self.ca_file = ca_file
        self.leaf: Leaf | None = None
        self._client: ssl.SSLContext | None = None
        self._server: ssl.SSLContext | None = None

    def _current(self) -> Leaf:
        now = dt.datetime.now(dt.UTC)
        left = self.leaf.not_after - now if self.leaf and self.leaf.not_after else dt.timedelta(0)
        if left < dt.timedelta(days=PLATFORM_DAYS / 3):
            self.leaf = ChannelCA.load_or_create(self.ca_file).issue(PLATFORM_NAME, PLATFORM_DAYS)
            self._client = client_context(self.leaf)
            self._server = server_context(self.leaf)
        return self.leaf

    def client(self) -> ssl.SSLContext:
        self._current()
        assert self._client is not None
        return self._client

    def server(self) -> ssl.SSLContext:
        self._current()
        assert self._server is not None
        return self._server


_identities: dict[Path, PlatformIdentity] = {}


def platform_identity(ca_file: Path) -> PlatformIdentity:
    identity = _identities.get(ca_file)
    if identity is None:
        identity = _identities[ca_file] = PlatformIdentity(ca_file)
    return identity
