"""The audit chain's key and anchors: both live outside the database.

- The chain key (``<home>/audit.key``, mode 0600) makes each entry's hash an HMAC: someone who
  can write the database but not read the key cannot rewrite an entry and recompute the chain.
- Anchors record the chain's head outside the database: ``<home>/audit/head.json`` is
  rewritten after every commit that added entries (so deleting the last entries is caught),
  and ``<home>/audit/anchors.jsonl`` gets a line with the head and the entry count
  periodically (``datalibrary audit anchor``, and the server's scheduler); each line is
  MAC'd with the key and also written to the log, for auditors.

A database is tied to its state dir when its ``Settings`` are built (``register``); a process
that records audit events without settings (a bare engine) writes a plain SHA-256 chain,
which ``verify`` refuses once a key exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("datalibrary.audit")
KEY_FILE = "audit.key"
_homes: dict[str, Path] = {}
_pending: list[tuple[str, Path]] = []  # registered, not yet parsed (parsing loads SQLAlchemy)
_keys: dict[Path, bytes] = {}
_lock = threading.Lock()


def _url_key(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return f"{parsed.get_backend_name()}|{parsed.host or ''}|{parsed.port or ''}|{parsed.database or ''}"


def register(database_url: str, home: Path) -> None:
    """Tie a database to the state dir that holds its audit key and anchors."""
    with _lock:
        _pending.append((database_url, Path(home)))


def _home_of(url: str) -> Path | None:
    """The registered state dir of a database URL (settings register without parsing: loading
    settings must stay light for the CLI; a database user has SQLAlchemy loaded anyway)."""
    with _lock:
        while _pending:
            database_url, home = _pending.pop(0)
            _homes[_url_key(database_url)] = home
        return _homes.get(_url_key(url))


@dataclass(frozen=True)
class Keyring:
    home: Path
    key: bytes

    @property
    def folder(self) -> Path:
        path = self.home / "audit"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def mac(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()


def _load_key(home: Path) -> bytes:
    path = home / KEY_FILE
    with _lock:
        if home in _keys:
            return _keys[home]
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
        key = bytes.fromhex(path.read_text().strip())
        _keys[home] = key
        return key


def keyring_for(bind: Any) -> Keyring | None:
    """The keyring of the database behind a session's bind, if its state dir is known."""
    engine = getattr(bind, "engine", bind)
    url = getattr(engine, "url", None)
    if url is None:
        return None
    home = _home_of(url.render_as_string(hide_password=False))
    if home is None:
        return None
    return Keyring(home, _load_key(home))


def write_head(ring: Keyring, head_id: int, head_hash: str) -> None:
    """The newest committed entry, rewritten atomically (a later head never goes backwards)."""
    path = ring.folder / "head.json"
    with _lock:
        current = read_head(ring)
        if current is not None and current["id"] >= head_id:
            return
        body = {"id": head_id, "hash": head_hash}
        body["mac"] = ring.mac(f"head:{head_id}:{head_hash}")
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(body))
        temporary.chmod(0o600)
        os.replace(temporary, path)


def read_head(ring: Keyring) -> dict[str, Any] | None:
    path = ring.home / "audit" / "head.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def append_anchor(ring: Keyring, count: int, head_id: int, head_hash: str, at: str) -> dict[str, Any]:
    """A periodic anchor: the head and the number of entries, MAC'd, appended and logged."""
    line = {"at": at, "count": count, "id": head_id, "hash": head_hash}
    line["mac"] = ring.mac(f"anchor:{count}:{head_id}:{head_hash}:{at}")
    with open(ring.folder / "anchors.jsonl", "a") as handle:
        handle.write(json.dumps(line) + "\n")
    log.info("audit anchor: %s entries, head %s (id %s)", count, head_hash, head_id)
    return line


def read_anchors(ring: Keyring) -> list[dict[str, Any]]:
    path = ring.home / "audit" / "anchors.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
