"""The private landing area: raw files stored (0700) with their SHA-256, and quarantine.

Raw files never reach the lake: they wait here until their job commits (then they are
deleted) or fails on bad input (then they move to quarantine with a machine-readable reason).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
from pathlib import Path

from datalibrary.config import Settings

CHUNK = 1 << 20


def ingest_dir(settings: Settings, kind: str) -> Path:
    """``raw``, ``quarantine`` or ``uploads`` under ``<home>/ingest`` (private)."""
    path = settings.home / "ingest" / kind
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for part in (settings.home / "ingest", path):
        part.chmod(0o700)
    return path


def watched_dir(settings: Settings) -> Path:
    path = settings.home / "landing"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def safe_filename(name: str) -> str:
    """The last path component, with anything odd replaced (no traversal, no hidden files)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return base[:200] or "file"


class NotOurs(OSError):
    """A landing-folder entry the service must not touch: a link, not a regular file, or a
    file another account owns (moving or chmod-ing it would act outside the state dir)."""


def check_owned(fd: int, name: str) -> os.stat_result:
    """The open file's status, if it is a regular, singly linked file of this account."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise NotOurs(f"{name} is not a regular file")
    if info.st_uid != os.geteuid():
        raise NotOurs(f"{name} belongs to another account")
    if info.st_nlink > 1:
        raise NotOurs(f"{name} has other hard links")
    return info


def open_nofollow(path: Path) -> int:
    """``open`` that refuses a symbolic link as the last component (``O_NOFOLLOW``)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):  # ELOOP (a symlink), EMLINK on some systems
            raise NotOurs(f"{path.name} is a symbolic link") from exc
        raise


def _owned_copy_source(source: Path) -> Path:
    """Another file system: the source is checked (no link, ours) before it is copied."""
    fd = open_nofollow(source)
    try:
        check_owned(fd, source.name)
    finally:
        os.close(fd)
    return source


def land(
    settings: Settings, job_id: str, source: Path, display_name: str, *, move: bool = False
) -> tuple[Path, str, int]:
    """Store ``source`` as the job's raw file; return (path, sha256, size).

    ``move`` is for files in our own areas (the landing folder, uploads, extracted members):
    the file is renamed, then opened without following links and checked to be a regular
    file this account owns; anything else is put back where it was and refused. Nothing
    outside the state dir is ever changed.
    """
    directory = ingest_dir(settings, "raw") / job_id
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / safe_filename(display_name)
    digest = hashlib.sha256()
    size = 0
    if move:
        if source.is_symlink():
            raise NotOurs(f"{source.name} is a symbolic link")
        try:
            os.replace(source, target)  # rename never follows a link: a swapped-in one moves as is
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            result = land(settings, job_id, _owned_copy_source(source), display_name)
            source.unlink()
            return result
        try:
            fd = open_nofollow(target)
            try:
                check_owned(fd, source.name)
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "rb", closefd=False) as handle:
                    while chunk := handle.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.replace(target, source)  # not ours: put it back untouched
            _remove_empty(directory)
            raise
    else:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(source, "rb") as reader, os.fdopen(fd, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
    return target, digest.hexdigest(), size


def discard(raw: Path | None) -> None:
    """Delete the job's raw file (after its rows are committed, or it was a duplicate)."""
    if raw is None:
        return
    raw.unlink(missing_ok=True)
    _remove_empty(raw.parent)


def _remove_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()
