"""The watched landing folder: files dropped in ``<home>/landing/<namespace>/<table>/`` are
ingested with the table's policy (its last one, or the name written in a ``POLICY`` file in
that folder). A file is taken once its size and time stopped changing between two scans.

A ``define.xml`` in the table's folder (or, for a whole study, in the namespace's folder) is
not ingested: it stays and gives its labels to the SAS files dropped next to it. A folder
named ``_`` (``landing/<namespace>/_/``) means ``NAMESPACE.*``: a table per file name, or per
FHIR resource type."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.errors import DataLibraryError
from datalibrary.ingest.landing import NotOurs, check_owned, open_nofollow, watched_dir
from datalibrary.ingest.submit import submit_file
from datalibrary.lake.catalog import NAME_RE
from datalibrary.lake.models import Dataset

log = logging.getLogger(__name__)
WATCHER = Principal.system("landing")
POLICY_FILE = "POLICY"
DEFINE_FILE = "define.xml"
PER_FILE_FOLDER = "_"


def _entries(folder: Path, *, dirs: bool) -> Iterator[os.DirEntry[str]]:
    """Sub-folders or files of ``folder``, never following a symbolic link (a linked folder
    or file may point anywhere on the machine: it is skipped, never moved or changed)."""
    try:
        with os.scandir(folder) as listing:
            found = sorted(listing, key=lambda e: e.name)
    except OSError:
        return
    for entry in found:
        if entry.is_symlink():
            continue
        if dirs and entry.is_dir(follow_symlinks=False) or not dirs and entry.is_file(follow_symlinks=False):
            yield entry


def read_small(path: Path, limit: int = 1 << 16) -> str | None:
    """A marker file (POLICY) read without following links; None when absent or not ours."""
    try:
        fd = open_nofollow(path)
    except (FileNotFoundError, NotOurs):
        return None
    try:
        check_owned(fd, path.name)
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


class LandingWatcher:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.seen: dict[Path, tuple[int, float]] = {}
        self.warned: set[Path] = set()

    def _policy(self, folder: Path, namespace: str, table: str) -> str | None:
        text = read_small(folder / POLICY_FILE)
        if text is not None:
            return text.strip() or None
        with self.db.session() as session:
            return session.scalar(
                select(Dataset.policy_name).where(Dataset.namespace == namespace, Dataset.name == table)
            )

    def scan(self) -> list[str]:
        """One pass over the landing folder; return the ids of the jobs it queued."""
        root = watched_dir(self.settings)
        queued = []
        current: dict[Path, tuple[int, float]] = {}
        folders = [
            Path(table.path)
            for ns in _entries(root, dirs=True)
            for table in _entries(Path(ns.path), dirs=True)
        ]
        for folder in folders:
            namespace, table = folder.parent.name, folder.name
            if not (NAME_RE.match(namespace) and (NAME_RE.match(table) or table == PER_FILE_FOLDER)):
                continue
            target = f"{namespace}.{'*' if table == PER_FILE_FOLDER else table}"
            define = next(
                (d for d in (folder / DEFINE_FILE, folder.parent / DEFINE_FILE) if _plain_file(d)), None
            )
            for entry in _entries(folder, dirs=False):
                path = Path(entry.path)
                if (
                    path.name in (POLICY_FILE, DEFINE_FILE)
                    or path.name.startswith(".")
                    or path.suffix == ".part"
                ):
                    continue
                stat = entry.stat(follow_symlinks=False)
                if stat.st_uid != os.geteuid() or stat.st_nlink > 1:
                    if path not in self.warned:
                        log.warning("landing file %s is skipped: not a file this service owns", path.name)
                        self.warned.add(path)
                    continue
                state = (stat.st_size, stat.st_mtime)
                current[path] = state
                if (
                    self.seen.get(path) != state
                    or time.time() - stat.st_mtime < self.settings.ingest.poll_seconds
                ):
                    continue
                policy = self._policy(folder, namespace, table)
                if policy is None:
                    if path not in self.warned:
                        log.warning(
                            "landing file %s waits: table %s.%s has no policy and no POLICY file",
                            path.name,
                            namespace,
                            table,
                        )
                        self.warned.add(path)
                    continue
                try:
                    with self.db.session() as session:
                        job = submit_file(
                            session,
                            WATCHER,
                            self.settings,
                            path,
                            table=target,
                            policy=policy,
                            via="landing",
                            move=True,
                            define=define,
                        )
                        queued.append(job.id)
                except NotOurs as exc:
                    if path not in self.warned:
                        log.warning("landing file %s is refused: %s", path.name, exc)
                        self.warned.add(path)
                except DataLibraryError as exc:
                    if path not in self.warned:
                        log.warning("landing file %s cannot be queued: %s", path.name, exc.detail)
                        self.warned.add(path)
                current.pop(path, None)
        self.seen = current
        return queued
