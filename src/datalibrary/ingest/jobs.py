"""Ingestion jobs in the database: submit, claim safely, report progress, list.

Claims are atomic: PostgreSQL uses ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite (one
writer at a time) an ``UPDATE ... WHERE state='queued'`` whose row count says who won. A
``running`` job whose lease expired (its worker died) is claimable again.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotFound
from datalibrary.ingest import quarantine
from datalibrary.ingest.models import FINAL_STATES, JOB_STATES, IngestJob
from datalibrary.ingest.schemas import JobOut
from datalibrary.ingest.targets import WILDCARD, parse_target

MODES = ("append", "overwrite")


def children_of(session: Session, job: IngestJob) -> list[IngestJob]:
    """The jobs a delivery fanned out into (archive members, FHIR resource types), in order."""
    ids = list((job.options or {}).get("children", []))
    found = {j.id: j for j in session.scalars(select(IngestJob).where(IngestJob.id.in_(ids)))} if ids else {}
    return [found[i] for i in ids if i in found]


def claim(engine: Engine, worker: str, lease_seconds: float, job_id: str | None = None) -> str | None:
    """Claim the oldest claimable job (or ``job_id``); return its id, or None when there is none."""
    for _ in range(20):  # a lost race on SQLite: pick the next candidate
        now = utcnow()
        claimable = or_(
            IngestJob.state == "queued",
            (IngestJob.state == "running") & (IngestJob.lease_expires_at < now),
        )
        values = {
            "state": "running",
            "worker": worker[:200],
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "attempts": IngestJob.attempts + 1,
            "started_at": now,
        }
        with Session(engine) as session:
            candidate = job_id
            if candidate is None:
                pick = (
                    select(IngestJob.id)
                    .where(claimable)
                    .order_by(IngestJob.created_at, IngestJob.id)
                    .limit(1)
                )
                if engine.dialect.name == "postgresql":
                    pick = pick.with_for_update(skip_locked=True)
                candidate = session.scalar(pick)
                if candidate is None:
                    return None
            result = session.execute(
                update(IngestJob).where(IngestJob.id == candidate, claimable).values(**values)
            )
            session.commit()
            if result.rowcount == 1:
                return candidate
            if job_id is not None:
                return None
    return None


def heartbeat(engine: Engine, job_id: str, lease_seconds: float, **progress: object) -> None:
    """Progress and a longer lease, for a job still running (a cancel request is kept)."""
    with Session(engine) as session:
        session.execute(
            update(IngestJob)
            .where(IngestJob.id == job_id, IngestJob.state == "running")
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds), **progress)
        )
        session.commit()


def renew_lease(engine: Engine, job_id: str, worker: str, lease_seconds: float) -> str:
    """The worker's heartbeat, fenced on its claim: ``ok``; ``cancel`` when someone asked to
    cancel the job; ``done`` when it already reached a final state; ``lost`` when another
    worker holds it now."""
    with Session(engine) as session:
        result = session.execute(
            update(IngestJob)
            .where(IngestJob.id == job_id, IngestJob.state == "running", IngestJob.worker == worker[:200])
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        )
        session.commit()
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return "ok"
        state = session.scalar(select(IngestJob.state).where(IngestJob.id == job_id))
    if state == "cancelling":
        return "cancel"
    return "done" if state in FINAL_STATES else "lost"


def abandoned(engine: Engine, max_attempts: int) -> list[str]:
    """Running jobs whose lease expired after ``max_attempts`` claims: their worker stopped
    each time (a file that kills its reader, or a crashing host); they are not retried again."""
    with Session(engine) as session:
        return list(
            session.scalars(
                select(IngestJob.id).where(
                    IngestJob.state.in_(("running", "cancelling")),
                    IngestJob.lease_expires_at < utcnow(),
                    IngestJob.attempts >= max_attempts,
                )
            )
        )


def cancel_job(session: Session, principal: Principal, settings: Settings, job_id: str) -> IngestJob:
    """Cancel a queued job now, or ask the worker running it to stop (``cancelling``: the
    worker ends its reader and the job ends ``cancelled``; its raw file is kept in quarantine
    so it can be retried or deleted)."""
    job = get_job(session, principal, job_id)
    if job.state == "queued":
        moved = quarantine.store(settings, job.id, Path(job.raw_path) if job.raw_path else None)
        job.state, job.finished_at, job.step = "cancelled", utcnow(), None
        job.raw_path = str(moved) if moved else job.raw_path
        job.reason = {"code": "cancelled", "message": f"cancelled by {principal.name} before it started"}
    elif job.state == "running":
        job.state = "cancelling"
    elif job.state != "cancelling":
        raise Conflict(f"job {job_id} is {job.state}: only queued or running jobs can be cancelled")
    record(session, actor=principal, action="ingest.cancel", target=f"job:{job_id}")
    session.flush()
    return job


def discard_file(session: Session, principal: Principal, job_id: str) -> IngestJob:
    """End a steward's review of a kept file now: the quarantined (or cancelled, or failed)
    job's file is deleted before retention would delete it; the job, its reason and SHA-256
    stay, for the record. Audited as ``ingest.file-deleted``."""
    job = get_job(session, principal, job_id)
    if job.state not in ("quarantined", "cancelled", "failed"):
        raise Conflict(f"job {job_id} is {job.state}: only quarantined, cancelled or failed jobs keep a file")
    if not job.raw_path:
        raise Conflict(f"job {job_id} keeps no file any more")
    quarantine.delete_file(Path(job.raw_path))
    job.raw_path = None
    record(
        session, actor=principal, action="ingest.file-deleted", target=f"job:{job_id}",
        details={"job": job_id, "file": job.source_name, "sha256": job.sha256, "state": job.state},
    )  # fmt: skip
    session.flush()
    return job


def get_job(session: Session, principal: Principal, job_id: str) -> IngestJob:
    """Jobs are for those who ingest: quarantine reasons may quote a value of the file."""
    require(principal, Permission.INGEST_RUN)
    job = session.get(IngestJob, job_id)
    if job is None:
        raise NotFound(f"no ingestion job {job_id!r}")
    return job


def list_jobs(
    session: Session,
    principal: Principal,
    *,
    state: str | None = None,
    table: str | None = None,
    created_by: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[IngestJob]:
    """Every job for those who ingest (landing-folder jobs belong to no person, and whoever is
    on duty must be able to stop one); ``created_by`` narrows to one submitter's jobs."""
    require(principal, Permission.INGEST_RUN)
    query = select(IngestJob)
    if created_by:
        query = query.where(IngestJob.created_by == created_by)
    if state:
        if state not in JOB_STATES:
            raise InvalidInput(f"state must be one of {', '.join(JOB_STATES)}")
        query = query.where(IngestJob.state == state)
    if table:  # NS.TABLE, or NS.* for every job of the namespace
        name = parse_target(table)
        query = query.where(IngestJob.namespace == name.namespace)
        if name.name != WILDCARD:
            query = query.where(IngestJob.table_name == name.name)
    query = query.order_by(IngestJob.created_at.desc(), IngestJob.id).limit(limit).offset(offset)
    return list(session.scalars(query))


def job_dict(job: IngestJob) -> dict[str, object]:
    """The public view of a job as a dict (``schemas.JobOut``), for pages and the dataset page."""
    return JobOut.of(job).model_dump()


def recent_jobs(session: Session, namespace: str, table: str, limit: int) -> list[dict[str, object]]:
    """A table's latest jobs, newest first, as the dataset page lists them (``lake.datasets``)."""
    recent = session.scalars(
        select(IngestJob)
        .where(IngestJob.namespace == namespace, IngestJob.table_name == table)
        .order_by(IngestJob.created_at.desc())
        .limit(limit)
    )
    return [job_dict(job) for job in recent]
