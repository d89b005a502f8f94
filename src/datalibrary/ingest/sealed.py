"""Raw delivery bytes at rest: one format and one key for the landing area and quarantine.

Files waiting in the landing area (``ingest/raw``) and quarantined files are raw, identified
data, so neither is ever stored in plain: AES-256-GCM in 1 MiB chunks, each chunk
authenticated with its index and a last-chunk flag (chunks cannot be reordered, dropped or cut
off), under a key derived with HKDF from the master key (the key never leaves memory; the lake
and the logs never see it). Moving a file from the landing area to quarantine and back is a
rename: nothing is decrypted on the way.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from datalibrary.config import Settings
from datalibrary.privacy.keys import load_master_key

CHUNK = 1 << 20
MAGIC = b"DLQ1"
SUFFIX = ".dlq"
_HEADER = struct.Struct(">4s8s")  # magic, random file id
# The label predates the landing area's encryption; kept so files sealed earlier stay readable.
_INFO = b"datalibrary/quarantine/v1"


def _key(settings: Settings) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(load_master_key(settings))


def _nonce(file_id: bytes, index: int, last: bool) -> tuple[bytes, bytes]:
    return file_id + struct.pack(">I", index), struct.pack(">QB", index, 1 if last else 0)


def is_sealed(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


class SealedWriter:
    """Writes plain bytes, sealed, to ``target`` (through a ``.part`` file renamed on ``close``,
    so a reader never sees half a file); ``abort`` removes the partial file."""

    def __init__(self, settings: Settings, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(target.name + ".part")
        self._cipher = AESGCM(_key(settings))
        self._id = os.urandom(8)
        self._index = 0
        self._buffer = bytearray()
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._out = os.fdopen(fd, "wb")
        self._out.write(_HEADER.pack(MAGIC, self._id))

    def _emit(self, chunk: bytes, last: bool) -> None:
        nonce, extra = _nonce(self._id, self._index, last)
        sealed = self._cipher.encrypt(nonce, chunk, extra)
        self._out.write(struct.pack(">I", len(sealed)) + sealed)
        self._index += 1

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) > CHUNK:  # strictly more: the last chunk is written by close
            self._emit(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]

    def close(self) -> Path:
        self._emit(bytes(self._buffer), last=True)
        self._buffer.clear()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self.partial, self.target)
        return self.target

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        self.partial.unlink(missing_ok=True)


def seal(
    settings: Settings, source: BinaryIO, target: Path, on_chunk: Callable[[bytes], None] | None = None
) -> Path:
    """Seal everything ``source`` holds into ``target``; ``on_chunk`` sees each plain chunk."""
    writer = SealedWriter(settings, target)
    try:
        while chunk := source.read(CHUNK):
            if on_chunk is not None:
                on_chunk(chunk)
            writer.write(chunk)
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def iter_plain(settings: Settings, path: Path) -> Iterator[bytes]:
    """The sealed file's plain bytes, chunk by chunk, each authenticated."""
    cipher = AESGCM(_key(settings))
    with path.open("rb") as handle:
        magic, file_id = _HEADER.unpack(handle.read(_HEADER.size))
        if magic != MAGIC:
            raise ValueError(f"{path.name} is not a sealed file")
        index = 0
        while True:
            size_bytes = handle.read(4)
            if len(size_bytes) < 4:
                raise ValueError(f"{path.name} is cut short")
            sealed = handle.read(struct.unpack(">I", size_bytes)[0])
            last = handle.peek(1)[:1] == b""
            nonce, extra = _nonce(file_id, index, last)
            yield cipher.decrypt(nonce, sealed, extra)
            if last:
                return
            index += 1
