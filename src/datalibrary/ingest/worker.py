"""Workers: claim queued jobs from the database and run them. The server runs a small pool
of threads; ``datalibrary worker`` processes on other machines do the same with the same claim."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.ingest.isolation import run_isolated
from datalibrary.ingest.jobs import abandoned, claim
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.pipeline import Progress, finish_abandoned, require_tracing, run_job

log = logging.getLogger(__name__)


def worker_name(label: str = "worker") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{label}:{uuid.uuid4().hex[:6]}"


def run_one(
    settings: Settings,
    db: Database,
    name: str,
    job_id: str | None = None,
    on_progress: Progress | None = None,
) -> tuple[str, str] | None:
    """Claim and run one job (a given one or the oldest claimable); None when there is none.

    The job parses in a limited child process (``ingest.isolation``); jobs whose worker kept
    dying are quarantined first instead of being claimed again."""
    require_tracing()  # a job claimed here must not fail for want of wiring
    retire_abandoned(settings, db)
    claimed = claim(db.engine, name, settings.ingest.job_lease_seconds, job_id)
    if claimed is None:
        return None
    if settings.ingest.isolation == "inline":
        return claimed, run_job(settings, db, claimed, on_progress)
    return claimed, run_isolated(settings, db, claimed, name, on_progress)


def retire_abandoned(settings: Settings, db: Database) -> list[str]:
    """Quarantine the jobs claimed ``max_attempts`` times whose worker stopped each time."""
    retired = []
    for job_id in abandoned(db.engine, settings.ingest.max_attempts):
        reason = {
            "code": "abandoned",
            "message": f"the job was started {settings.ingest.max_attempts} times and its worker "
            "stopped each time before it finished; it is not retried again",
        }
        try:
            finish_abandoned(settings, db, job_id, "quarantined", reason)
            retired.append(job_id)
        except Exception:
            log.warning("could not retire abandoned job %s", job_id, exc_info=True)
    return retired


def run_tree(
    settings: Settings,
    db: Database,
    name: str,
    job_id: str,
    on_progress: Progress | None = None,
) -> list[tuple[str, str]]:
    """Run a job here and then the jobs it fanned out into (archive members, FHIR resource
    types), depth first; return (job id, final state) of every job run, the delivery first."""
    result = run_one(settings, db, name, job_id, on_progress)
    if result is None:
        return []
    done = [result]
    with db.session() as session:
        job = session.get(IngestJob, job_id)
        children = list((job.options or {}).get("children", [])) if job is not None else []
    for child in children:
        done.extend(run_tree(settings, db, name, child))
    return done


def run_pending(settings: Settings, db: Database, max_jobs: int | None = None) -> list[tuple[str, str]]:
    """Run claimable jobs until none is left (or ``max_jobs``); return (job id, final state)."""
    name = worker_name("once")
    done: list[tuple[str, str]] = []
    while max_jobs is None or len(done) < max_jobs:
        result = run_one(settings, db, name)
        if result is None:
            break
        done.append(result)
    return done


class WorkerPool:
    """Threads that poll for jobs until ``stop``; what the server starts in-process."""

    def __init__(self, settings: Settings, db: Database, size: int) -> None:
        self.settings = settings
        self.db = db
        self.size = size
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.size):
            thread = threading.Thread(target=self._loop, args=(worker_name(f"pool{index}"),), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _loop(self, name: str) -> None:
        while not self.stopping.is_set():
            try:
                result = run_one(self.settings, self.db, name)
            except Exception:
                log.exception("worker %s: claiming or running a job failed", name)
                result = None
            if result is None:
                self.stopping.wait(self.settings.ingest.poll_seconds)

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)
