"""Ingestion jobs and chunked uploads. Job state lives here, never only in a worker's memory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow

JOB_STATES = (
    "queued",
    "running",
    "cancelling",
    "succeeded",
    "failed",
    "quarantined",
    "duplicate",
    "cancelled",
)
FINAL_STATES = ("succeeded", "failed", "quarantined", "duplicate", "cancelled")


class IngestJob(Base):
    __tablename__ = "ingest_jobs"
    __table_args__ = (
        Index("ix_ingest_jobs_state_created", "state", "created_at"),
        Index("ix_ingest_jobs_table_sha", "namespace", "table_name", "sha256"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64))
    table_name: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16), default="append")
    policy_name: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[str | None] = mapped_column(String(32))
    policy_hash: Mapped[str | None] = mapped_column(String(64))
    format: Mapped[str | None] = mapped_column(String(32))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_name: Mapped[str] = mapped_column(String(255))
    source_via: Mapped[str] = mapped_column(String(16), default="cli")  # cli | upload | landing
    raw_path: Mapped[str | None] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    step: Mapped[str | None] = mapped_column(String(16))
    progress_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_written: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_written: Mapped[int] = mapped_column(BigInteger, default=0)
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def table(self) -> str:
        return f"{self.namespace}.{self.table_name}"


class Upload(Base):
    """A chunked upload in progress; the bytes live in the private uploads directory."""

    __tablename__ = "ingest_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_job_id: Mapped[str | None] = mapped_column(String(32))
