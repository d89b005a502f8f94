"""Users, groups and projects: read with ``users.read``, change with ``users.manage``."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request

from datalibrary.auth import accounts, groups, ldap_sync, projects, service
from datalibrary.auth.permissions import Permission
from datalibrary.auth.schemas import (
    GroupIn,
    GroupOut,
    MembershipIn,
    PasswordIn,
    ProjectIn,
    ProjectOut,
    RolesIn,
    UserIn,
    UserOut,
)
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.workspaces import service as workspace_service

router = APIRouter()
READ = [Requires(Permission.USERS_READ)]
MANAGE = [Requires(Permission.USERS_MANAGE)]


# --- users ---------------------------------------------------------------------------


@router.get("/users", tags=["users"], summary="List users", dependencies=READ)
def list_users(principal: CurrentPrincipal, session: DbSession) -> list[UserOut]:
    return [UserOut.of(u) for u in accounts.list_users(session, principal)]


@router.post("/users", tags=["users"], summary="Create a local user", status_code=201, dependencies=MANAGE)
def create_user(body: UserIn, principal: CurrentPrincipal, session: DbSession) -> UserOut:
    user = service.create_user(
        session,
        principal,
        body.name,
        roles=set(body.roles),
        password=body.password,
        display_name=body.display_name,
        email=body.email,
    )
    for index, project in enumerate(body.projects):
        projects.add_member(session, principal, project, user.name, default=index == 0)
    session.refresh(user)
    return UserOut.of(user)


@router.get("/users/{name}", tags=["users"], summary="One user", dependencies=READ)
def read_user(name: str, principal: CurrentPrincipal, session: DbSession) -> UserOut:
    return UserOut.of(accounts.read_user(session, principal, name))


@router.post(
    "/users/{name}/disable",
    tags=["users"],
    summary="Disable a user: their sessions and tokens stop working at once",
    dependencies=MANAGE,
)
def disable_user(
    name: str, principal: CurrentPrincipal, session: DbSession, request: Request, background: BackgroundTasks
) -> UserOut:
    user = UserOut.of(accounts.set_active(session, principal, name, False))
    stopping = workspace_service.stop_disabled_owners(session)  # homes are kept
    session.commit()
    for workspace_id in stopping:
        background.add_task(
            workspace_service.execute, request.app.state.db, request.app.state.settings, workspace_id
        )
    return user


@router.post("/users/{name}/enable", tags=["users"], summary="Enable a disabled user", dependencies=MANAGE)
def enable_user(name: str, principal: CurrentPrincipal, session: DbSession) -> UserOut:
    return UserOut.of(accounts.set_active(session, principal, name, True))


@router.put("/users/{name}/roles", tags=["users"], summary="Replace a user's own roles", dependencies=MANAGE)
def set_user_roles(name: str, body: RolesIn, principal: CurrentPrincipal, session: DbSession) -> UserOut:
    return UserOut.of(accounts.set_roles(session, principal, name, set(body.roles)))


@router.put(
    "/users/{name}/password",
    tags=["users"],
    summary="Set a local user's password (policy checked; their sessions end)",
    status_code=204,
    dependencies=MANAGE,
)
def set_user_password(name: str, body: PasswordIn, principal: CurrentPrincipal, session: DbSession) -> None:
    accounts.set_password(session, principal, name, body.password)


@router.post(
    "/users/sync-ldap",
    tags=["users"],
    summary="Disable LDAP accounts that left the directory; re-sync LDAP groups",
    dependencies=MANAGE,
)
def sync_ldap(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> dict[str, str]:
    return ldap_sync.reconcile(session, principal, settings.auth.ldap)


# --- groups --------------------------------------------------------------------------


@router.get("/groups", tags=["groups"], summary="List groups", dependencies=READ)
def list_groups(principal: CurrentPrincipal, session: DbSession) -> list[GroupOut]:
    return [GroupOut.of(g) for g in groups.list_groups(session, principal)]


@router.post("/groups", tags=["groups"], summary="Create a group", status_code=201, dependencies=MANAGE)
def create_group(body: GroupIn, principal: CurrentPrincipal, session: DbSession) -> GroupOut:
    group = groups.create_group(
        session, principal, body.name, roles=set(body.roles), description=body.description
    )
    return GroupOut.of(group)


@router.get("/groups/{name}", tags=["groups"], summary="One group", dependencies=READ)
def read_group(name: str, principal: CurrentPrincipal, session: DbSession) -> GroupOut:
    return GroupOut.of(groups.read_group(session, principal, name))


@router.put("/groups/{name}/roles", tags=["groups"], summary="Replace a group's roles", dependencies=MANAGE)
def set_group_roles(name: str, body: RolesIn, principal: CurrentPrincipal, session: DbSession) -> GroupOut:
    return GroupOut.of(groups.set_group_roles(session, principal, name, set(body.roles)))


@router.put(
    "/groups/{name}/members/{user}", tags=["groups"], summary="Add a member to a group", dependencies=MANAGE
)
def add_group_member(name: str, user: str, principal: CurrentPrincipal, session: DbSession) -> GroupOut:
    return GroupOut.of(groups.add_member(session, principal, name, user))


@router.delete(
    "/groups/{name}/members/{user}",
    tags=["groups"],
    summary="Remove a member from a group",
    dependencies=MANAGE,
)
def remove_group_member(name: str, user: str, principal: CurrentPrincipal, session: DbSession) -> GroupOut:
    return GroupOut.of(groups.remove_member(session, principal, name, user))


# --- projects ------------------------------------------------------------------------


@router.get("/projects", tags=["projects"], summary="List projects", dependencies=READ)
def list_projects(principal: CurrentPrincipal, session: DbSession) -> list[ProjectOut]:
    return [ProjectOut.of(p) for p in projects.list_projects(session, principal)]


@router.post(
    "/projects",
    tags=["projects"],
    summary="Create a project (cost center)",
    status_code=201,
    dependencies=MANAGE,
)
def create_project(body: ProjectIn, principal: CurrentPrincipal, session: DbSession) -> ProjectOut:
    return ProjectOut.of(projects.create_project(session, principal, body.name, description=body.description))


@router.get("/projects/{name}", tags=["projects"], summary="One project", dependencies=READ)
def read_project(name: str, principal: CurrentPrincipal, session: DbSession) -> ProjectOut:
    return ProjectOut.of(projects.read_project(session, principal, name))


@router.put(
    "/projects/{name}/members/{user}",
    tags=["projects"],
    summary="Add a member to a project (optionally as their default)",
    dependencies=MANAGE,
)
def add_project_member(
    name: str, user: str, principal: CurrentPrincipal, session: DbSession, body: MembershipIn | None = None
) -> ProjectOut:
    default = body.default if body else False
    return ProjectOut.of(projects.add_member(session, principal, name, user, default=default))


@router.delete(
    "/projects/{name}/members/{user}",
    tags=["projects"],
    summary="Remove a member from a project",
    dependencies=MANAGE,
)
def remove_project_member(
    name: str, user: str, principal: CurrentPrincipal, session: DbSession
) -> ProjectOut:
    return ProjectOut.of(projects.remove_member(session, principal, name, user))
