"""Every domain's table models, imported so ``Base.metadata`` is complete for Alembic.

A new domain adds one import line here.
"""

from datalibrary.audit.models import AuditEvent
from datalibrary.auth.models import (
    ApiToken,
    Group,
    GroupMember,
    GroupRole,
    LoginThrottle,
    Project,
    ProjectMember,
    User,
    UserRole,
    WebSession,
)
from datalibrary.db.base import Base

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Group",
    "GroupMember",
    "GroupRole",
    "LoginThrottle",
    "Project",
    "ProjectMember",
    "User",
    "UserRole",
    "WebSession",
]
