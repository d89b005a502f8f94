"""What the front ends show of ingestion jobs and uploads: one shape for the API, the CLI's
``--json`` and the console.

Light on purpose: ``jobs list --json`` imports it, and must not load pyarrow. The upload
request whose fields carry the lake's naming rules (``UploadComplete``) stays with the API's
field types (``api.fields``), which import the lake catalog and the readers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from datalibrary.ingest.models import IngestJob


class JobOut(BaseModel):
    id: str
    table: str
    mode: str
    state: str
    step: str | None
    source_name: str
    source_via: str
    format: str | None
    parent: str | None = Field(None, description="The delivery (archive, FHIR file) this job came from.")
    children: list[str] = Field(
        default_factory=list, description="Jobs this delivery fanned out into (archive members, FHIR types)."
    )
    resource_type: str | None = None
    sha256: str | None
    size_bytes: int
    progress_bytes: int
    rows_read: int
    rows_written: int
    bytes_written: int
    policy: dict[str, str | None]
    snapshot_id: int | None
    reason: dict[str, Any] | None = Field(
        description="Why the job was quarantined, failed or is a duplicate."
    )
    file_kept: bool = Field(
        False, description="The delivered file is still kept, encrypted (for a retry or a steward's review)."
    )
    attempts: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: IngestJob) -> JobOut:
        """The public view of a job (the raw file's location is not shown)."""
        options = job.options or {}
        return cls(
            id=job.id,
            table=job.table,
            mode=job.mode,
            state=job.state,
            step=job.step,
            source_name=job.source_name,
            source_via=job.source_via,
            format=job.format,
            parent=options.get("parent"),
            children=list(options.get("children", [])),
            resource_type=options.get("resource_type"),
            sha256=job.sha256,
            size_bytes=job.size_bytes,
            progress_bytes=job.progress_bytes,
            rows_read=job.rows_read,
            rows_written=job.rows_written,
            bytes_written=job.bytes_written,
            policy={"name": job.policy_name, "version": job.policy_version, "sha256": job.policy_hash},
            snapshot_id=job.snapshot_id,
            reason=job.reason,
            file_kept=bool(job.raw_path),
            attempts=job.attempts,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class UploadOut(BaseModel):
    id: str
    filename: str
    size_bytes: int
    completed_job_id: str | None


class UploadStart(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
