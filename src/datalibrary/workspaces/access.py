"""Who may open a workspace through the proxy: its owner; an administrator only after
stating a reason, which is audited and grants access for a limited time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit_service
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from datalibrary.workspaces import pool_members
from datalibrary.workspaces.models import Workspace, WorkspaceAdminAccess

ADMIN_ACCESS_MINUTES = 60


def can_open(session: Session, principal: Principal, workspace_id: int) -> Workspace:
    """The workspace if ``principal`` may open it; otherwise an error (404 hides others' ids)."""
    require(principal, Permission.WORKSPACES_OWN)
    if principal.token_scope is not None:
        raise PermissionDenied("a workspace's token cannot open workspaces")
    workspace = session.get(Workspace, workspace_id)
    if workspace is None or workspace.state == "terminated":
        raise NotFound(f"no workspace with id {workspace_id}")
    if workspace.owner_id == principal.user_id:
        return workspace
    if not principal.can(Permission.WORKSPACES_ADMIN):
        raise NotFound(f"no workspace with id {workspace_id}")
    grant = session.scalar(
        select(WorkspaceAdminAccess.id).where(
            WorkspaceAdminAccess.workspace_id == workspace_id,
            WorkspaceAdminAccess.admin_id == principal.user_id,
            WorkspaceAdminAccess.expires_at > utcnow(),
        )
    )
    if grant is None:
        raise PermissionDenied(
            f"workspace {workspace_id} belongs to someone else; state a reason first "
            f"(POST /api/v1/workspaces/{workspace_id}/admin-access)"
        )
    return workspace


def grant_admin_access(
    session: Session, principal: Principal, workspace_id: int, reason: str
) -> WorkspaceAdminAccess:
    require(principal, Permission.WORKSPACES_ADMIN)
    reason = reason.strip()
    if len(reason) < 10:
        raise InvalidInput("say why you need to open this workspace (at least 10 characters)", field="reason")
    workspace = session.get(Workspace, workspace_id)
    if workspace is None or principal.user_id is None:
        raise NotFound(f"no workspace with id {workspace_id}")
    if pool_members.is_member(session, workspace):  # it holds nobody's data; a grant would outlive that
        raise Conflict(f"workspace {workspace_id} is a warm-pool member: there is nothing to open")
    now = utcnow()
    grant = WorkspaceAdminAccess(
        workspace_id=workspace_id,
        admin_id=principal.user_id,
        reason=reason[:1000],
        granted_at=now,
        expires_at=now + timedelta(minutes=ADMIN_ACCESS_MINUTES),
    )
    session.add(grant)
    session.flush()
    audit_service.record(
        session,
        actor=principal,
        action="workspace.admin_access",
        target=f"workspace:{workspace_id}",
        details={"reason": reason[:500], "minutes": ADMIN_ACCESS_MINUTES},
    )
    return grant
