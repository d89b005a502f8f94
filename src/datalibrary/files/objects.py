"""Content-addressed objects of a collection in the warehouse (local directory or S3).

An object is written once under its SHA-256 and never changed. Writes are atomic: locally the
bytes go to a temporary name beside the object and are renamed over it (a crash leaves a
temporary file, never a short object that a later upload would take as present); on S3 an
upload becomes visible only when complete. Large files are copied in chunks from a local
spool file, never held whole in memory.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs

from datalibrary.lake.storage import Storage

CHUNK = 8 << 20


def exists(storage: Storage, uri: str, size: int | None = None) -> bool:
    """Whether the object is stored (with ``size`` bytes, when given)."""
    info = storage.fs.get_file_info(storage.path(uri))
    return info.type == pafs.FileType.File and (size is None or info.size == size)


def store(storage: Storage, uri: str, source: bytes | Path) -> None:
    """Write ``source`` (bytes, or a local file copied in chunks) as the object ``uri``."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if exists(storage, uri, size):  # content-addressed: the same bytes are never written twice
        return
    target = uri if storage.is_s3 else f"{uri}.tmp-{uuid.uuid4().hex}"
    try:
        with storage.open_output(target) as out:
            if isinstance(source, Path):
                with source.open("rb") as handle:
                    while chunk := handle.read(CHUNK):
                        out.write(chunk)
            else:
                out.write(source)
        if target != uri:
            storage.fs.move(storage.path(target), storage.path(uri))
    except BaseException:
        if target != uri:
            storage.delete(target)
        raise


class AlteredObject(Exception):
    """The stored bytes do not hash to the object's name."""


def verified_chunks(storage: Storage, uri: str, sha256: str) -> Iterator[bytes]:
    """The object's bytes in chunks, hashed as they are read; the last chunk is held back until
    the whole object matches ``sha256``, so a reader never receives a complete altered file
    (an HTTP body sent with its Content-Length then ends short, which clients report)."""
    digest = hashlib.sha256()
    held: bytes | None = None
    with storage.fs.open_input_stream(storage.path(uri)) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            if held is not None:
                yield held
            held = chunk
    if digest.hexdigest() != sha256:
        raise AlteredObject(f"{uri}: stored bytes do not match their SHA-256")
    if held is not None:
        yield held
