"""The lake's own tables: dataset metadata Iceberg properties hold badly, and lock leases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow


class Dataset(Base):
    """Catalog facts about one Iceberg table (the table itself lives in ``iceberg_tables``)."""

    __tablename__ = "lake_datasets"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_lake_datasets_namespace_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(64), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    sensitivity: Mapped[str] = mapped_column(String(16), default="confidential")
    source: Mapped[str] = mapped_column(String(200), default="")
    subject_column: Mapped[str | None] = mapped_column(String(128))
    column_labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    policy_name: Mapped[str | None] = mapped_column(String(100))
    policy_version: Mapped[str | None] = mapped_column(String(32))
    policy_hash: Mapped[str | None] = mapped_column(String(64))
    # Bytes of the source files behind the current rows (reset by an overwrite).
    source_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    profile_snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}"


class LakeLock(Base):
    """A lease on a resource: many ``shared`` holders (commits) or one ``exclusive`` (maintenance).

    Rows expire so a holder killed with -9 cannot block the lake forever."""

    __tablename__ = "lake_locks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource: Mapped[str] = mapped_column(String(200), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MaintenanceRun(Base):
    """One run of ``lake maintain`` (scheduled or by hand) and what it did."""

    __tablename__ = "lake_maintenance_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="maintain")  # maintain | erase
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
