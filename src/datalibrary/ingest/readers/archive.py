"""Safe extraction of .gz and .zip deliveries into a private directory.

Refuses zip bombs (per-entry and total size limits and an expansion ratio checked while
streaming, not trusting the declared sizes), too many entries, path traversal (``../``,
absolute names, drive letters, backslashes) and symbolic links. Archives inside archives
are opened up to ``max_depth`` levels, all sharing one byte budget.
"""

from __future__ import annotations

import gzip
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from datalibrary.ingest.readers.base import ReadError
from datalibrary.ingest.readers.detect import detect_format

COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 64 << 30  # all extracted files together
    max_entry_bytes: int = 32 << 30
    max_ratio: float = 200.0  # extracted bytes / compressed bytes, after the first MiB
    max_entries: int = 10_000
    max_depth: int = 3


@dataclass
class _Budget:
    limits: ArchiveLimits
    source_bytes: int = 0  # the delivered archive's real size on disk: ratios use it, never a header
    written: int = 0
    entries: int = 0
    outputs: list[Path] = field(default_factory=list)
    nested: set[Path] = field(default_factory=set)  # folders made for nested archives
    names: set[str] = field(default_factory=set)  # every entry path, case folded


def _safe_name(name: str, archive: str) -> PurePosixPath:
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean)
    if not parts.parts or clean.startswith("/") or ":" in parts.parts[0]:
        raise ReadError(archive, "archive entry has an absolute or empty path", value=name)
    if any(part == ".." for part in parts.parts) or "\x00" in clean:
        raise ReadError(archive, "archive entry escapes the extraction directory", value=name)
    return parts


def _copy(source, target: Path, compressed: int, budget: _Budget, archive: str, entry: str) -> None:  # noqa: ANN001
    """Stream one entry out, counting the bytes actually written: the per-entry ratio uses the
    smaller of the declared compressed size and the archive's real size (a header that
    over-declares buys nothing), and the total is held against the delivered file's size."""
    limits = budget.limits
    compressed = max(min(compressed, budget.source_bytes or compressed), 1)
    written = 0
    with target.open("wb") as out:
        while True:
            try:
                chunk = source.read(COPY_CHUNK)
            except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
                raise ReadError(
                    archive, f"compressed data is damaged or truncated: {exc}", value=entry
                ) from exc
            if not chunk:
                return
            written += len(chunk)
            budget.written += len(chunk)
            if written > limits.max_entry_bytes or budget.written > limits.max_total_bytes:
                raise ReadError(
                    archive, "archive expands beyond the size limit (possible zip bomb)", value=entry
                )
            if written > COPY_CHUNK and (
                written > limits.max_ratio * compressed
                or budget.written > limits.max_ratio * max(budget.source_bytes, 1)
            ):
                raise ReadError(
                    archive,
                    f"archive expands more than {limits.max_ratio:g}x (possible zip bomb)",
                    value=entry,
                )
            out.write(chunk)


def _gunzip(path: Path, dest: Path, budget: _Budget, depth: int, name: str) -> None:
    stem = path.name[:-3] if path.name.lower().endswith(".gz") else path.name + ".out"
    target = dest / _unique(dest, PurePosixPath(stem or "data"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "rb") as source:
        _copy(source, target, path.stat().st_size, budget, name, stem)
    _after(target, dest, budget, depth, name)


def _unique(dest: Path, relative: PurePosixPath) -> Path:
    candidate, n = Path(*relative.parts), 1
    while (dest / candidate).exists():
        n += 1
        candidate = Path(*relative.parts[:-1], f"{relative.stem}_{n}{relative.suffix}")
    return candidate


def _unzip(path: Path, dest: Path, budget: _Budget, depth: int, name: str) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReadError(name, f"not a readable zip archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        for info in infos:
            key = f"{name}/{info.filename.replace(chr(92), '/')}".casefold()
            if key in budget.names and not info.is_dir():
                raise ReadError(name, "archive holds the same entry twice", value=info.filename)
            budget.names.add(key)
        budget.entries += len(infos)
        if budget.entries > budget.limits.max_entries:
            raise ReadError(name, f"archive holds more than {budget.limits.max_entries} entries")
        for info in infos:
            relative = _safe_name(info.filename, name)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ReadError(name, "archive entry is a symbolic link", value=info.filename)
            if info.is_dir() or relative.parts[0] == "__MACOSX" or relative.name == ".DS_Store":
                continue
            if info.file_size > budget.limits.max_entry_bytes:
                raise ReadError(name, "archive entry is larger than the size limit", value=info.filename)
            target = dest / Path(*relative.parts)
            foreign = [f for f in budget.nested if f != dest and f not in dest.parents]
            if target.exists() or any(target == f or f in target.parents for f in foreign):
                raise ReadError(
                    name, "archive entry collides with a nested archive's folder", value=info.filename
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                source = archive.open(info)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:
                raise ReadError(
                    name, f"cannot open entry (encrypted or unsupported): {exc}", value=info.filename
                ) from exc
            with source:
                _copy(source, target, info.compress_size, budget, name, info.filename)
            _after(target, dest, budget, depth, name)


def _after(target: Path, dest: Path, budget: _Budget, depth: int, name: str) -> None:
    """A nested archive is opened in turn (and removed); any other file is an output."""
    try:
        kind = detect_format(target)
    except ReadError:
        kind = "unknown"
    if kind in ("zip", "gzip"):
        if depth + 1 > budget.limits.max_depth:
            raise ReadError(name, f"archives nested more than {budget.limits.max_depth} levels deep")
        inner = target.with_name(target.name + ".d")
        if inner.exists():
            raise ReadError(name, "archive entry collides with a nested archive's folder", value=inner.name)
        inner.mkdir()
        budget.nested.add(inner)
        _extract(target, inner, budget, depth + 1, f"{name}/{target.name}")
        target.unlink()
        return
    budget.outputs.append(target)


_DAMAGED = (OSError, EOFError, ValueError, NotImplementedError, RuntimeError, zlib.error, zipfile.BadZipFile)


def _extract(path: Path, dest: Path, budget: _Budget, depth: int, name: str) -> None:
    try:
        _extract_checked(path, dest, budget, depth, name)
    except ReadError:
        raise
    except _DAMAGED as exc:  # a damaged header the zip/gzip modules trip over
        raise ReadError(name, f"the archive is damaged or uses an unsupported feature: {exc}") from exc


def _extract_checked(path: Path, dest: Path, budget: _Budget, depth: int, name: str) -> None:
    kind = detect_format(path)
    if kind == "zip":
        _unzip(path, dest, budget, depth, name)
    elif kind == "gzip":
        _gunzip(path, dest, budget, depth, name)
    else:
        raise ReadError(name, f"not an archive (looks like {kind})")


def is_archive(path: Path) -> bool:
    try:
        return detect_format(path) in ("zip", "gzip")
    except ReadError:
        return False


def extract(path: Path, dest: Path, *, limits: ArchiveLimits | None = None) -> list[Path]:
    """Extract ``path`` (.gz or .zip, possibly nested) into ``dest``; returns the data files.

    On any refusal the partly extracted files are removed and ``ReadError`` is raised.
    """
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(limits or ArchiveLimits(), source_bytes=path.stat().st_size)
    try:
        _extract(path, dest, budget, 1, path.name)
    except BaseException:
        for child in list(dest.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise
    return sorted(budget.outputs)
