"""The keys of a backup: never written in the clear. With an operator's passphrase they are
sealed (scrypt -> AES-256-GCM); without one they stay out of the backup and the manifest
keeps only a fingerprint, so a restore can check it is given the right master key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from datalibrary.errors import InvalidInput

KEYS_FILE = "keys.enc"
MIN_PASSPHRASE = 12
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
AAD = b"datalibrary-backup-keys-v1"


def fingerprint(master: bytes) -> str:
    """A short, one-way identifier of the master key (safe to store and show)."""
    return hmac.new(master, b"datalibrary-backup-fingerprint", hashlib.sha256).hexdigest()[:16]


def _derive(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode())


def check_passphrase(passphrase: str) -> str:
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidInput(f"the backup passphrase must have at least {MIN_PASSPHRASE} characters")
    return passphrase


def seal(path: Path, keys: dict[str, str], passphrase: str) -> None:
    """Write ``keys`` encrypted with ``passphrase`` to ``path`` (mode 0600)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    box = AESGCM(_derive(check_passphrase(passphrase), salt))
    sealed = box.encrypt(nonce, json.dumps(keys).encode(), AAD)
    document: dict[str, Any] = {
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
        "cipher": "AES-256-GCM",
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)


def unseal(path: Path, passphrase: str) -> dict[str, str]:
    document = json.loads(path.read_text())
    kdf = document["kdf"]
    salt = base64.b64decode(document["salt"])
    key = Scrypt(salt=salt, length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(passphrase.encode())
    try:
        plain = AESGCM(key).decrypt(
            base64.b64decode(document["nonce"]), base64.b64decode(document["ciphertext"]), AAD
        )
    except InvalidTag:
        raise InvalidInput("wrong backup passphrase: the keys in this backup cannot be decrypted") from None
    return json.loads(plain)
