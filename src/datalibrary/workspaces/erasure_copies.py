"""Erasure of a subject from workspace homes and their archives (a copy scanner registered
with the lake): scientists' extracts of lake data live there too.

Files of a home that hold the subject are deleted; an archive (``workspace-N.tar.gz``) is
rewritten without the members that hold it. Every file and member checked is listed."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any

from datalibrary.lake import copies
from datalibrary.workspaces import paths as ws_paths

HOMES = "workspace homes"
ARCHIVES = "workspace archives"


def _home_files(root: Path) -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(directory, d))]
        found += [Path(directory, f) for f in files]
    return sorted(found)


def scan_homes(scope: copies.ErasureScope) -> list[dict[str, Any]]:
    root = ws_paths.root(scope.settings) / "homes"
    if not root.is_dir():
        return []
    return copies.scan_and_delete(HOMES, _home_files(root), scope.subject)


def _member_mentions(archive: tarfile.TarFile, member: tarfile.TarInfo, subject: str) -> list[str]:
    handle = archive.extractfile(member)
    if handle is None:
        return []
    if member.size <= copies.MAX_DECODED_MEMBER:
        return copies.bytes_mention(handle.read(), member.name, subject)
    return ["raw bytes"] if copies._raw_mentions(handle, subject.encode()) else []  # noqa: SLF001


def _rewrite_without(path: Path, drop: set[str]) -> None:
    partial = path.with_name(path.name + ".erasing")
    with tarfile.open(path, "r:gz") as source, tarfile.open(partial, "w:gz") as target:
        for member in source:
            if member.name in drop:
                continue
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    partial.chmod(path.stat().st_mode & 0o777)
    partial.replace(path)


def scan_archives(scope: copies.ErasureScope) -> list[dict[str, Any]]:
    root = ws_paths.root(scope.settings) / "archives"
    if not root.is_dir():
        return []
    results = []
    for path in sorted(root.glob("*.tar.gz")):
        found: dict[str, list[str]] = {}
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.isfile() and (where := _member_mentions(archive, member, scope.subject)):
                    found[member.name] = where
        action = "kept"
        if found:
            _rewrite_without(path, set(found))
            action = f"rewritten without {len(found)} member(s)"
        where = [f"{name}: {', '.join(w)}" for name, w in found.items()]
        results.append(copies.entry(ARCHIVES, path, where, action, path.stat().st_size))
    return results


def register() -> None:
    copies.register(HOMES, scan_homes)
    copies.register(ARCHIVES, scan_archives)
