"""Which files a table references, and byte-level inspection of lake files.

pyiceberg's snapshot expiry only edits metadata; the files stay. DataLibrary computes the
set of files reachable from the snapshots that remain and deletes the rest itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pyiceberg.avro.codecs import KNOWN_CODECS
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot


def reachable_files(table: Table, snapshots: Iterable[Snapshot] | None = None) -> set[str]:
    """Manifest lists, manifests and live data files of ``snapshots`` (default: all of them)."""
    found: set[str] = set()
    seen_manifests: set[str] = set()
    for snapshot in table.metadata.snapshots if snapshots is None else snapshots:
        found.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            found.add(manifest.manifest_path)
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                found.add(entry.data_file.file_path)
    return found


def metadata_files(table: Table) -> set[str]:
    """The current metadata JSON and the earlier ones its log still names."""
    files = {entry.metadata_file for entry in table.metadata.metadata_log}
    files.add(table.metadata_location)
    return files


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


def avro_payload(data: bytes) -> bytes:
    """The decompressed content of an Avro object container file (header + every block)."""
    if not data.startswith(b"Obj\x01"):
        return data
    pos = 4
    meta: dict[str, bytes] = {}
    while True:
        count, pos = _read_long(data, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = _read_long(data, pos)
        for _ in range(count):
            key_len, pos = _read_long(data, pos)
            key = data[pos : pos + key_len].decode()
            pos += key_len
            value_len, pos = _read_long(data, pos)
            meta[key] = data[pos : pos + value_len]
            pos += value_len
    sync = data[pos : pos + 16]
    pos += 16
    codec_name = meta.get("avro.codec", b"null").decode()
    codec = KNOWN_CODECS.get(codec_name)  # type: ignore[call-overload]
    parts = [data[:pos]]
    while pos < len(data):
        _, pos = _read_long(data, pos)
        size, pos = _read_long(data, pos)
        block = data[pos : pos + size]
        pos += size
        parts.append(codec.decompress(block) if codec else block)
        if data[pos : pos + 16] != sync:
            raise ValueError("corrupt Avro block (sync marker mismatch)")
        pos += 16
    return b"".join(parts)


def contains_token(data: bytes, needle: bytes) -> bool:
    """``needle`` occurs in ``data`` not glued to letters or digits on either side."""
    pattern = re.compile(rb"(?<![A-Za-z0-9])" + re.escape(needle) + rb"(?![A-Za-z0-9])")
    return pattern.search(data) is not None
