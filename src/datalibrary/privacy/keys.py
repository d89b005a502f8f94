"""Keys: one master key per installation, one derived key per study (namespace).

The master key comes from ``DATALIBRARY_MASTER_KEY`` or the file named by
``DATALIBRARY_MASTER_KEY_FILE`` (default ``<home>/master.key``, created by ``datalibrary
init`` with mode 0600). Study keys are derived with HKDF-SHA256, so nothing but the master
key needs protecting; a study key is identified by a short key id (an HMAC of a constant),
which is what snapshots and reports record. No key material is ever logged, stored in the
lake, or put into an error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from datalibrary.errors import Unavailable

if TYPE_CHECKING:
    from datalibrary.config import Settings

MASTER_KEY_FILE_NAME = "master.key"
MIN_KEY_BYTES = 32


def _decode(text: str) -> bytes:
    """A key is at least 32 bytes, given as hex, url-safe base64 or raw text."""
    text = text.strip()
    for decode in (bytes.fromhex, lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))):
        try:
            raw = decode(text)
        except ValueError:
            continue
        if len(raw) >= MIN_KEY_BYTES:
            return raw
    raw = text.encode()
    if len(raw) < MIN_KEY_BYTES:
        raise Unavailable(
            f"the master key is too short: use at least {MIN_KEY_BYTES} random bytes "
            "(hex or base64), e.g. the file 'datalibrary init' creates"
        )
    return raw


def default_key_file(settings: Settings) -> Path:
    return (
        Path(settings.master_key_file) if settings.master_key_file else settings.home / MASTER_KEY_FILE_NAME
    )


def load_master_key(settings: Settings) -> bytes:
    """The master key from the environment or the key file; raises saying what to do."""
    if settings.master_key is not None:
        return _decode(settings.master_key.get_secret_value())
    path = default_key_file(settings)
    if not path.exists():
        raise Unavailable(
            f"no master key: set DATALIBRARY_MASTER_KEY, or DATALIBRARY_MASTER_KEY_FILE to a key file, "
            f"or run 'datalibrary init' to create {path}"
        )
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Unavailable(
            f"the master key file {path} is readable by group or others (mode {stat.S_IMODE(mode):o}): "
            f"run 'chmod 600 {path}'"
        )
    try:
        return _decode(path.read_text())
    except OSError as exc:
        raise Unavailable(f"cannot read the master key file {path}: {exc.strerror}") from None


def ensure_master_key_file(path: Path) -> bool:
    """Create a random key file with mode 0600 unless one exists; True when created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True


@dataclass(frozen=True)
class StudyKey:
    """The key of one study (namespace) at one generation; ``repr`` never shows the secret."""

    namespace: str
    generation: int
    key_id: str
    secret: bytes = field(repr=False)
    # secrets of generations 1 .. generation-1: pseudonyms chain through them (key rotation)
    earlier: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def chain(self) -> tuple[bytes, ...]:
        return (*self.earlier, self.secret)

    def mac(self, purpose: str, values: list[bytes]) -> list[bytes]:
        """HMAC-SHA256 of each value under this key, separated by purpose."""
        base = hmac.new(self.secret, purpose.encode() + b"\x00", hashlib.sha256)
        out = []
        for value in values:
            h = base.copy()
            h.update(value)
            out.append(h.digest())
        return out


def _hkdf(master: bytes, namespace: str, generation: int) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"datalibrary-study-key-v1",
        info=f"{namespace}\x00{generation}".encode(),
    ).derive(master)


def derive_study_key(master: bytes, namespace: str, generation: int = 1) -> StudyKey:
    """HKDF-SHA256(master, info = study + generation): one independent key per study and generation."""
    if generation < 1:
        raise ValueError("key generations start at 1")
    secret = _hkdf(master, namespace, generation)
    earlier = tuple(_hkdf(master, namespace, g) for g in range(1, generation))
    key_id = hmac.new(secret, b"key-id", hashlib.sha256).hexdigest()[:16]
    return StudyKey(namespace, generation, key_id, secret, earlier)
