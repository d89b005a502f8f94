"""The private landing area: raw files stored (0700, sealed) with their SHA-256, and quarantine.

Raw files never reach the lake: they wait here until their job commits (then they are
deleted) or fails on bad input (then they move to quarantine with a machine-readable reason).
They are raw, identified data, so they wait encrypted (``ingest.sealed``, the format and key
of quarantine). A job reads its file through ``plain_view``: a decrypted working copy that has
no name on disk and disappears with the process, even one the kernel kills.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from datalibrary.config import Settings
from datalibrary.ingest import sealed

CHUNK = sealed.CHUNK


def ingest_dir(settings: Settings, kind: str) -> Path:
    """``raw``, ``quarantine``, ``uploads`` or ``work`` under ``<home>/ingest`` (private)."""
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


def _seal_hashed(settings: Settings, source: BinaryIO, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0

    def count(chunk: bytes) -> None:
        nonlocal size
        digest.update(chunk)
        size += len(chunk)

    sealed.seal(settings, source, target, on_chunk=count)
    return digest.hexdigest(), size


def land(
    settings: Settings, job_id: str, source: Path, display_name: str, *, move: bool = False
) -> tuple[Path, str, int]:
    """Store ``source`` sealed as the job's raw file; return (path, sha256 of the plain bytes, size).

    ``move`` is for files in our own areas (the landing folder, uploads, extracted members):
    the file is renamed into the job's private directory, then opened without following links
    and checked to be a regular file this account owns (anything else is put back where it was
    and refused), sealed, and its plain copy deleted. Nothing outside the state dir is ever
    changed.
    """
    directory = ingest_dir(settings, "raw") / job_id
    directory.mkdir(mode=0o700, exist_ok=True)
    name = safe_filename(display_name)
    target = directory / (name + sealed.SUFFIX)
    if not move:
        with open(source, "rb") as reader:
            sha, size = _seal_hashed(settings, reader, target)
        return target, sha, size
    if source.is_symlink():
        raise NotOurs(f"{source.name} is a symbolic link")
    staged = directory / f"{name}.plain"
    try:
        os.replace(source, staged)  # rename never follows a link: a swapped-in one moves as is
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        result = land(settings, job_id, _owned_copy_source(source), display_name)
        source.unlink()
        return result
    try:
        fd = open_nofollow(staged)
        try:
            check_owned(fd, source.name)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "rb", closefd=False) as handle:
                sha, size = _seal_hashed(settings, handle, target)
        finally:
            os.close(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.replace(staged, source)  # not ours: put it back untouched
        _remove_empty(directory)
        raise
    staged.unlink()
    return target, sha, size


def _unnamed_file(directory: Path) -> int:
    """A read-write file with no name (``O_TMPFILE``; else created and unlinked at once)."""
    with contextlib.suppress(OSError, AttributeError):
        return os.open(directory, os.O_TMPFILE | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
    fd, name = tempfile.mkstemp(dir=directory)
    os.unlink(name)
    return fd


@contextlib.contextmanager
def plain_view(settings: Settings, raw: Path) -> Iterator[Path]:
    """A path that reads the raw file's plain bytes while the block runs.

    The decrypted copy has no name on disk: only this process holds it (``/proc/<pid>/fd``),
    the path handed out is a link to it that keeps the file's name (readers use its suffix),
    and a process killed mid-read leaves at most a dangling link. A file landed in plain by an
    older version is read as it is.
    """
    if not sealed.is_sealed(raw):
        yield raw
        return
    with joined_view(settings, [raw], raw.name.removesuffix(sealed.SUFFIX)) as link:
        yield link


@contextlib.contextmanager
def joined_view(settings: Settings, parts: list[Path], name: str) -> Iterator[Path]:
    """Like ``plain_view``, for sealed ``parts`` read one after the other (the chunks of an
    upload), under the file name ``name``."""
    holder = Path(tempfile.mkdtemp(dir=ingest_dir(settings, "work")))
    fd = _unnamed_file(holder)
    try:
        with os.fdopen(os.dup(fd), "wb") as out:
            for part in parts:
                for chunk in sealed.iter_plain(settings, part):
                    out.write(chunk)
        link = holder / name
        os.symlink(f"/proc/{os.getpid()}/fd/{fd}", link)
        yield link
    finally:
        os.close(fd)
        shutil.rmtree(holder, ignore_errors=True)


def discard(raw: Path | None) -> None:
    """Delete the job's raw file (after its rows are committed, or it was a duplicate)."""
    if raw is None:
        return
    raw.unlink(missing_ok=True)
    remove_scratch(raw.parent)
    _remove_empty(raw.parent)


def remove_scratch(directory: Path) -> None:
    """Members an archive job extracted in plain next to its raw file (``extract/``): a job
    killed while extracting leaves them, so every way out of the landing area removes them."""
    if directory.parent.name == "raw":
        shutil.rmtree(directory / "extract", ignore_errors=True)


def _remove_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()
