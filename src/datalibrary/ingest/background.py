"""What the server runs in the background: the worker pool, the landing-folder watcher and
the daily lake maintenance. All state is in the database, so replicas can run these too."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from datalibrary.audit.service import anchor
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.ingest import quarantine, uploads
from datalibrary.ingest.watch import LandingWatcher
from datalibrary.ingest.worker import WorkerPool
from datalibrary.lake.scheduler import run_if_due

log = logging.getLogger(__name__)
SCHEDULER_CHECK_SECONDS = 300


def housekeeping(settings: Settings, db: Database) -> None:
    """Periodic: an audit anchor outside the database, expiry of abandoned uploads, the
    quarantine retention policy."""
    with db.session() as session:
        anchor(session)
    uploads.expire_uploads(settings, db)
    quarantine.apply_retention(settings, db)


class Background:
    def __init__(self, settings: Settings, db: Database, gate: Callable[[str], bool] | None = None) -> None:
        self.settings = settings
        self.db = db
        # with several replicas: does this one hold the task's lease (db.leases)?
        self.gate = gate or (lambda _task: True)
        self.pool = WorkerPool(settings, db, settings.ingest.workers)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.pool.start()
        if self.settings.ingest.watch_landing:
            self._spawn(self._watch, "landing-watcher")
        self._spawn(self._schedule, "maintenance-scheduler")

    def _spawn(self, target, name: str) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _watch(self) -> None:
        watcher = LandingWatcher(self.settings, self.db)
        while not self.stopping.wait(self.settings.ingest.poll_seconds):
            try:
                if self.gate("ingest.watch_landing"):
                    watcher.scan()
            except Exception:
                log.exception("scanning the landing folder failed")

    def _schedule(self) -> None:
        while not self.stopping.wait(SCHEDULER_CHECK_SECONDS):
            try:
                if self.gate("lake.maintenance"):
                    run_if_due(self.settings, self.db)
            except Exception:
                log.exception("scheduled lake maintenance failed")
            try:
                housekeeping(self.settings, self.db)
            except Exception:
                log.exception("ingest housekeeping failed")

    def stop(self) -> None:
        self.stopping.set()
        self.pool.stop()
        for thread in self.threads:
            thread.join(5)
