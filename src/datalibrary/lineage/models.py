"""Stored OpenLineage events, indexed for the graph queries (dataset, user, run, time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime


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
    """One dataset touched by one event (input or output), for indexed graph lookups."""

    __tablename__ = "lineage_edges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, index=True)
    direction: Mapped[str] = mapped_column(String(8))  # input | output
    dataset_namespace: Mapped[str] = mapped_column(String(255))
    dataset_name: Mapped[str] = mapped_column(String(255), index=True)
