"""Every domain's table models, imported so ``Base.metadata`` is complete for Alembic.

A new domain adds one import line here.
"""

from datalibrary.audit.models import AuditEvent
from datalibrary.auth.models import ApiToken, User, UserRole, WebSession
from datalibrary.db.base import Base
from datalibrary.workspaces.models import Workspace, WorkspaceAdminAccess, WorkspaceUsage

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "User",
    "UserRole",
    "WebSession",
    "Workspace",
    "WorkspaceAdminAccess",
    "WorkspaceUsage",
]
