"""What the front ends show of an account: one shape for the API, the CLI's ``--json`` and pages."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from datalibrary.auth.models import User


class UserOut(BaseModel):
    name: str
    display_name: str
    email: str | None
    source: str
    active: bool
    roles: list[str] = Field(description="Roles held directly")
    effective_roles: list[str] = Field(description="Own roles plus the roles of the user's groups")
    groups: list[str]
    projects: list[str]
    default_project: str | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            name=user.name,
            display_name=user.display_name,
            email=user.email,
            source=user.source,
            active=user.is_active,
            roles=sorted(user.role_names),
            effective_roles=sorted(user.effective_roles),
            groups=sorted(user.group_names),
            projects=sorted(user.project_names),
            default_project=user.default_project,
            created_at=user.created_at,
        )
