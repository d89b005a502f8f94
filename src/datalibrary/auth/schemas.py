"""What the front ends show of accounts, groups, projects, tokens and the caller: one shape for
the API, the CLI's ``--json`` and pages, and the request bodies the API accepts for them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from datalibrary.auth.models import ApiToken, Group, Project, User
from datalibrary.auth.permissions import ROLES, Principal
from datalibrary.auth.service import USER_NAME

# Users, groups and projects share one naming rule (auth.service.USER_NAME).
AccountName = Annotated[str, StringConstraints(pattern=USER_NAME.pattern)]
Role = Literal[ROLES]  # type: ignore[valid-type]


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


class UserIn(BaseModel):
    name: AccountName
    roles: list[Role] = []
    password: str | None = Field(None, max_length=1024, description="Checked against the password policy")
    display_name: str = Field("", max_length=200)
    email: str | None = Field(None, max_length=320)
    projects: list[AccountName] = Field([], description="Projects to join; the first becomes the default")


class RolesIn(BaseModel):
    roles: list[Role]


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


class GroupOut(BaseModel):
    name: str
    description: str
    source: str
    roles: list[str]
    members: list[str]

    @classmethod
    def of(cls, group: Group) -> GroupOut:
        return cls(
            name=group.name,
            description=group.description,
            source=group.source,
            roles=sorted(group.role_names),
            members=sorted(m.user.name for m in group.members),
        )


class GroupIn(BaseModel):
    name: AccountName
    description: str = Field("", max_length=500)
    roles: list[Role] = []


class ProjectMemberOut(BaseModel):
    user: str
    default: bool


class ProjectOut(BaseModel):
    name: str
    description: str
    active: bool
    members: list[ProjectMemberOut]

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls(
            name=project.name,
            description=project.description,
            active=project.is_active,
            members=sorted(
                (ProjectMemberOut(user=m.user.name, default=m.is_default) for m in project.members),
                key=lambda m: m.user,
            ),
        )


class ProjectIn(BaseModel):
    name: AccountName
    description: str = Field("", max_length=500)


class MembershipIn(BaseModel):
    default: bool = Field(False, description="Make this the user's default project")


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    name: str
    csrf_token: str


class TokenIn(BaseModel):
    user: str | None = Field(None, description="Owner; defaults to the caller (others need users.manage)")
    name: str = Field("api", min_length=1, max_length=100)
    expires_days: int | None = Field(90, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    scope: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls.model_validate(token, from_attributes=True)


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret; shown only in this response")

    @classmethod
    def issued(cls, token: ApiToken, secret: str) -> IssuedTokenOut:
        return cls(**TokenOut.of(token).model_dump(), token=secret)


class Me(BaseModel):
    name: str
    roles: list[str]
    permissions: list[str]
    via: str
    groups: list[str]
    projects: list[str]
    default_project: str | None

    @classmethod
    def of(cls, principal: Principal) -> Me:
        return cls(
            name=principal.name,
            roles=sorted(principal.roles),
            permissions=sorted(p.value for p in principal.permissions),
            via=principal.via,
            groups=sorted(principal.groups),
            projects=sorted(principal.projects),
            default_project=principal.default_project,
        )
