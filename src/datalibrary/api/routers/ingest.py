"""Ingestion: uploads (streamed, chunked), jobs, quarantine, policies."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from datalibrary.api.fields import FileFormat, IngestMode, IngestTarget, JobState, PolicyName
from datalibrary.auth.permissions import Permission
from datalibrary.bounds import MAX_INT, MAX_OFFSET
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.ingest import jobs, submit, uploads
from datalibrary.ingest.schemas import JobOut, UploadOut, UploadStart
from datalibrary.privacy import store
from datalibrary.privacy.schemas import PolicyIn, PolicyOut

router = APIRouter(prefix="/ingest", tags=["ingest"])
policies_router = APIRouter(prefix="/policies", tags=["policies"])


class UploadComplete(BaseModel):
    # an unknown field (a reader option such as "delimiter") is a 422, never ignored in silence
    model_config = ConfigDict(extra="forbid")

    table: IngestTarget
    policy: PolicyName
    mode: IngestMode = "append"
    format: FileFormat | None = None
    define_upload: str | None = Field(
        None, description="An upload holding a define.xml: its labels go to the SAS files."
    )


@router.post(
    "/files",
    status_code=202,
    summary="Upload one file (raw body, streamed to disk) and queue its job",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
async def upload_file(
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    table: IngestTarget,
    policy: PolicyName,
    filename: str = Query(min_length=1, max_length=255),
    mode: IngestMode = "append",
    format: FileFormat | None = None,
    define_upload: str | None = Query(None, description="An upload holding a define.xml"),
) -> JobOut:
    job = await uploads.upload_file(
        session,
        principal,
        settings,
        request.stream(),
        filename=filename,
        table=table,
        policy=policy,
        mode=mode,
        format=format,
        define_upload=define_upload,
    )
    return JobOut.of(job)


@router.post(
    "/uploads",
    status_code=201,
    summary="Start a chunked upload",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
def start_upload(
    body: UploadStart, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> UploadOut:
    return UploadOut.model_validate(
        uploads.start_upload(session, principal, settings, body.filename), from_attributes=True
    )


@router.get(
    "/uploads/{upload_id}",
    summary="A chunked upload (its size is the next offset)",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
def get_upload(upload_id: str, principal: CurrentPrincipal, session: DbSession) -> UploadOut:
    return UploadOut.model_validate(uploads.get_upload(session, principal, upload_id), from_attributes=True)


@router.put(
    "/uploads/{upload_id}",
    summary="Append a chunk (raw body) at the given offset",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
async def add_chunk(
    upload_id: str,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    offset: int = Query(ge=0, le=MAX_INT),
) -> UploadOut:
    upload = await uploads.add_chunk(session, principal, settings, upload_id, offset, request.stream())
    return UploadOut.model_validate(upload, from_attributes=True)


@router.post(
    "/uploads/{upload_id}/complete",
    status_code=202,
    summary="Finish a chunked upload and queue its job",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
def complete_upload(
    upload_id: str,
    body: UploadComplete,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> JobOut:
    job = uploads.complete_upload(
        session,
        principal,
        settings,
        upload_id,
        table=body.table,
        policy=body.policy,
        mode=body.mode,
        format=body.format,
        define_upload=body.define_upload,
    )
    return JobOut.of(job)


@router.get("/jobs", summary="Ingestion jobs, newest first", dependencies=[Requires(Permission.INGEST_RUN)])
def list_jobs(
    principal: CurrentPrincipal,
    session: DbSession,
    state: JobState | None = None,
    table: IngestTarget | None = None,
    created_by: str | None = Query(
        None, min_length=1, max_length=64, description="Only jobs this user (or system:landing) submitted."
    ),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> list[JobOut]:
    found = jobs.list_jobs(
        session, principal, state=state, table=table, created_by=created_by, limit=limit, offset=offset
    )
    return [JobOut.of(j) for j in found]


@router.get("/jobs/{job_id}", summary="One ingestion job", dependencies=[Requires(Permission.INGEST_RUN)])
def get_job(job_id: str, principal: CurrentPrincipal, session: DbSession) -> JobOut:
    return JobOut.of(jobs.get_job(session, principal, job_id))


@router.post(
    "/jobs/{job_id}/retry", summary="Queue a failed job again", dependencies=[Requires(Permission.INGEST_RUN)]
)
def retry_job(job_id: str, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> JobOut:
    return JobOut.of(submit.retry_job(session, principal, job_id, settings))


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Cancel a queued or running job (a running one stops within a few seconds)",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
def cancel_job(job_id: str, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> JobOut:
    return JobOut.of(jobs.cancel_job(session, principal, settings, job_id))


@router.delete(
    "/jobs/{job_id}/file",
    summary="Delete the file a quarantined, cancelled or failed job keeps (after a steward's review)",
    dependencies=[Requires(Permission.INGEST_RUN)],
)
def discard_file(job_id: str, principal: CurrentPrincipal, session: DbSession) -> JobOut:
    return JobOut.of(jobs.discard_file(session, principal, job_id))


@router.get(
    "/quarantine", summary="Quarantined files and why", dependencies=[Requires(Permission.INGEST_RUN)]
)
def quarantine(
    principal: CurrentPrincipal, session: DbSession, limit: int = Query(100, ge=1, le=1000)
) -> list[JobOut]:
    return [JobOut.of(j) for j in jobs.list_jobs(session, principal, state="quarantined", limit=limit)]


@policies_router.get("", summary="Stored policies", dependencies=[Requires(Permission.CATALOG_READ)])
def list_policies(principal: CurrentPrincipal, session: DbSession) -> list[PolicyOut]:
    return [PolicyOut.of(p) for p in store.list_policies(session, principal)]


@policies_router.post(
    "", status_code=201, summary="Store a policy version", dependencies=[Requires(Permission.POLICIES_MANAGE)]
)
def add_policy(body: PolicyIn, principal: CurrentPrincipal, session: DbSession) -> PolicyOut:
    policy, _ = store.save_policy(session, principal, body.document)
    return PolicyOut.of(store.stored_policy(session, policy.name, policy.version))
