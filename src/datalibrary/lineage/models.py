"""Stored OpenLineage events, indexed for the graph queries (dataset, user, run, time);
the forwarding state of the outbox; export requests of the airlock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow


class LineageEvent(Base):
    __tablename__ = "lineage_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    event_type: Mapped[str] = mapped_column(String(16))  # START, COMPLETE, FAIL, ...
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    job_namespace: Mapped[str] = mapped_column(String(128))
    job_name: Mapped[str] = mapped_column(String(255), index=True)
    user: Mapped[str | None] = mapped_column(String(64), index=True)
    project: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class LineageEdge(Base):
    """One dataset touched by one event (input or output), for indexed graph lookups.

    The event's time, type, job and user are copied here so the dataset and user pages
    aggregate from this table alone through ``ix_lineage_edges_dataset_time`` and
    ``ix_lineage_edges_user_time`` (no join over 100k events)."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        Index("ix_lineage_edges_dataset_time", "dataset_name", "event_time"),
        Index("ix_lineage_edges_user_time", "user", "event_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, index=True)
    direction: Mapped[str] = mapped_column(String(8))  # input | output
    dataset_namespace: Mapped[str] = mapped_column(String(255))
    dataset_name: Mapped[str] = mapped_column(String(255), index=True)
    event_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    event_type: Mapped[str | None] = mapped_column(String(16))
    job_name: Mapped[str | None] = mapped_column(String(255))
    user: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[int | None] = mapped_column(BigInteger)  # rows the run returned or wrote
    bytes: Mapped[int | None] = mapped_column(BigInteger)  # bytes it scanned, sent or wrote


class LineageForwarding(Base):
    """Outbox state of one external OpenLineage endpoint: events with ``id > last_event_id``
    are still to be sent (the append-only event table is the outbox's queue). ``endpoint`` is
    ``forward.endpoint_key`` of the URL (``sha256:<hex>``), never the URL itself."""

    __tablename__ = "lineage_forwarding"

    endpoint: Mapped[str] = mapped_column(String(512), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExportRequest(Base):
    """One request to take a result out of the platform, reviewed by a steward."""

    __tablename__ = "export_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), unique=True)
    requester: Mapped[str] = mapped_column(String(64), index=True)
    project: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # query | file
    sql: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(String(1024))  # relative to the requester's workspace home
    workspace_id: Mapped[int | None] = mapped_column(Integer)  # whose home ``path`` is in
    format: Mapped[str] = mapped_column(String(16), default="csv")
    purpose: Mapped[str] = mapped_column(Text)
    destination: Mapped[str] = mapped_column(String(500))
    # pending | approved | denied | downloaded | expired | failed (content changed after review)
    state: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    datasets: Mapped[list[str]] = mapped_column(JSON, default=list)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    reviewer: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)
    # Why a steward approved content that failed the risk check (audited as export.override).
    override_reason: Mapped[str | None] = mapped_column(Text)
    # The content-addressed snapshot pinned at request time (exports/objects/<sha256>).
    file_path: Mapped[str | None] = mapped_column(String(1024))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_bytes: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
