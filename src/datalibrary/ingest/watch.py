"""The watched landing folder: files dropped in ``<home>/landing/<namespace>/<table>/`` are
ingested with the table's policy (its last one, or the name written in a ``POLICY`` file in
that folder). A file is taken once its size and time stopped changing between two scans.

A ``define.xml`` in the table's folder (or, for a whole study, in the namespace's folder) is
not ingested: it stays and gives its labels to the SAS files dropped next to it. A folder
named ``_`` (``landing/<namespace>/_/``) means ``NAMESPACE.*``: a table per file name, or per
FHIR resource type."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy import select

from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.errors import DataLibraryError
from datalibrary.ingest.jobs import submit_file
from datalibrary.ingest.landing import watched_dir
from datalibrary.lake.catalog import NAME_RE
from datalibrary.lake.models import Dataset

log = logging.getLogger(__name__)
WATCHER = Principal.system("landing")
POLICY_FILE = "POLICY"
DEFINE_FILE = "define.xml"
PER_FILE_FOLDER = "_"


class LandingWatcher:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.seen: dict[Path, tuple[int, float]] = {}
        self.warned: set[Path] = set()

    def _policy(self, folder: Path, namespace: str, table: str) -> str | None:
        marker = folder / POLICY_FILE
        if marker.is_file():
            return marker.read_text().strip() or None
        with self.db.session() as session:
            return session.scalar(
                select(Dataset.policy_name).where(Dataset.namespace == namespace, Dataset.name == table)
            )

    def scan(self) -> list[str]:
        """One pass over the landing folder; return the ids of the jobs it queued."""
        root = watched_dir(self.settings)
        queued = []
        current: dict[Path, tuple[int, float]] = {}
        for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
            namespace, table = folder.parent.name, folder.name
            if not (NAME_RE.match(namespace) and (NAME_RE.match(table) or table == PER_FILE_FOLDER)):
                continue
            target = f"{namespace}.{'*' if table == PER_FILE_FOLDER else table}"
            define = next(
                (d for d in (folder / DEFINE_FILE, folder.parent / DEFINE_FILE) if d.is_file()), None
            )
            for path in sorted(folder.iterdir()):
                if (
                    not path.is_file()
                    or path.name in (POLICY_FILE, DEFINE_FILE)
                    or path.name.startswith(".")
                    or path.suffix == ".part"
                ):
                    continue
                stat = path.stat()
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
                except DataLibraryError as exc:
                    if path not in self.warned:
                        log.warning("landing file %s cannot be queued: %s", path.name, exc.detail)
                        self.warned.add(path)
                current.pop(path, None)
        self.seen = current
        return queued
