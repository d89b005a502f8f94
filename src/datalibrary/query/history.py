"""The query history: a caller's own queries; auditors and admins may name another user."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.query.models import QueryRecord


def history(
    session: Session, principal: Principal, user: str | None = None, limit: int = 50
) -> list[QueryRecord]:
    """The newest ``limit`` queries of ``user`` (default: the caller), newest first."""
    require(principal, Permission.QUERY_RUN)
    if user and user != principal.name:
        require(principal, Permission.AUDIT_READ)
    query = (
        select(QueryRecord)
        .where(QueryRecord.user == (user or principal.name))
        .order_by(QueryRecord.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
