"""Workspace tables: the workspace and its lifecycle state, usage intervals, admin access.

The state lives here and nowhere else: the API, the reconciler, the idle stopper and any
replica read the same rows (JupyterHub's in-memory spawn flags are what we avoid).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project: Mapped[str | None] = mapped_column(String(64))
    product: Mapped[str] = mapped_column(String(64))
    instance_type: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(64))
    provisioner: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    # Why the last transition happened (user, idle, reconciler, error message).
    state_reason: Mapped[str] = mapped_column(Text, default="")
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Bumped on every transition: updates compare-and-swap on it.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    idle_timeout_minutes: Mapped[int] = mapped_column(Integer, default=60)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    idle_warning_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    cpu_sampled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The workspace-scoped API token of the current run (revoked when it stops).
    token_id: Mapped[int | None] = mapped_column(Integer)
    # The provisioner's own JSON state (pids, cgroup, socket), as in JupyterHub's get_state.
    provisioner_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # compare-and-swap: a concurrent transition makes the flush fail instead of overwriting
    __mapper_args__ = {"version_id_col": version}


class WorkspaceUsage(Base):
    """One interval of one state, for cost tracking; ``ended_at`` is empty while it lasts."""

    __tablename__ = "workspace_usage"
    __table_args__ = (Index("ix_workspace_usage_open", "workspace_id", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    project: Mapped[str | None] = mapped_column(String(64), index=True)
    instance_type: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkspaceAdminAccess(Base):
    """An administrator's time-limited, audited permission to open someone's workspace."""

    __tablename__ = "workspace_admin_access"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WorkspaceGrantUse(Base):
    """A console grant already redeemed (``origin.redeem_grant``): in the database, so that a
    grant works once across every replica, not once per process. Rows outlive the grant's 60 s
    by nothing; the next redemption deletes them."""

    __tablename__ = "workspace_grant_uses"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
