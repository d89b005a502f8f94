"""The Admin section: users, groups, projects (``users.read`` to see, ``users.manage`` to
change) and the audit log viewer with CSV export (``audit.read``). Plain HTML forms that
post back here (with the CSRF token) and redirect after success; errors are shown next to
the field they concern."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from datalibrary.api.deps import DbSession, OptionalPrincipal
from datalibrary.audit import service as audit
from datalibrary.audit.models import AuditEvent
from datalibrary.auth import accounts, groups, projects, service
from datalibrary.auth.models import Group, Project, User
from datalibrary.auth.permissions import ROLES, Permission, Principal
from datalibrary.web.forms import attempt, form_page, guard
from datalibrary.web.pages import page_with
from datalibrary.web.rendering import render
from datalibrary.workspaces import service as workspace_service

router = APIRouter(include_in_schema=False)
AUDIT_PAGE_SIZE = 50
Csrf = Annotated[str, Form()]


def _done(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _show(request: Request, template: str, page, status: int = 200, **data: object) -> Response:  # type: ignore[no-untyped-def]
    return render(request, template, page_with(page, roles_all=ROLES, **data), status_code=status)


# --- overview ------------------------------------------------------------------------


@router.get("/admin")
def overview(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_READ)) is not None:
        return stop
    assert principal is not None
    counts = {
        "users": session.scalar(select(func.count(User.id))),
        "disabled": session.scalar(select(func.count(User.id)).where(User.is_active.is_(False))),
        "groups": session.scalar(select(func.count(Group.id))),
        "projects": session.scalar(select(func.count(Project.id))),
        "events": session.scalar(select(func.count(AuditEvent.id)))
        if principal.can(Permission.AUDIT_READ)
        else None,
    }
    page = form_page(request, session, principal, "Admin")
    return _show(request, "admin/overview.html", page, counts=counts)


# --- users ---------------------------------------------------------------------------


def _users_page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
):  # type: ignore[no-untyped-def]
    page = form_page(request, session, principal, "Users")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    data.setdefault("form", {"name": "", "display_name": "", "roles": ["scientist"], "project": ""})
    return _show(
        request,
        "admin/users.html",
        page,
        status,
        users=accounts.list_users(session, principal),
        projects_all=projects.list_projects(session, principal),
        **data,
    )


@router.get("/admin/users")
def users_list(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_READ)) is not None:
        return stop
    assert principal is not None
    return _users_page(request, session, principal)


@router.post("/admin/users")
def users_create(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    csrf_token: Csrf = "",
    name: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    project: Annotated[str, Form()] = "",
) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_MANAGE)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}
    name = name.strip()
    if not password:
        errors["password"] = "Set an initial password (the user can be given a new one later)."  # noqa: S105

    def create() -> User:
        user = service.create_user(
            session,
            principal,
            name,
            roles=set(roles or []),
            password=password,
            display_name=display_name.strip(),
        )
        if project:
            projects.add_member(session, principal, project, name, default=True)
        return user

    if not errors and attempt(session, principal, csrf_token, create, errors) is not None:
        return _done(f"/admin/users/{name}")
    if "role" in errors:
        errors["roles"] = errors.pop("role")
    form = {"name": name, "display_name": display_name, "roles": roles or [], "project": project}
    return _users_page(request, session, principal, 422, errors=errors, form=form)


def _user_page(
    request: Request, session: DbSession, principal: Principal, name: str, status: int = 200, **data: object
):  # type: ignore[no-untyped-def]
    user = accounts.read_user(session, principal, name)
    page = form_page(request, session, principal, f"User {user.name}")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    return _show(
        request,
        "admin/user.html",
        page,
        status,
        user=user,
        groups_all=groups.list_groups(session, principal),
        projects_all=projects.list_projects(session, principal),
        **data,
    )


@router.get("/admin/users/{name}")
def user_detail(request: Request, session: DbSession, principal: OptionalPrincipal, name: str) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_READ)) is not None:
        return stop
    assert principal is not None
    return _user_page(request, session, principal, name)


def _user_action(
    request: Request, session: DbSession, principal: Principal | None, name: str, csrf: str, action
):  # type: ignore[no-untyped-def]
    if (stop := guard(request, session, principal, Permission.USERS_MANAGE)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}
    if attempt(session, principal, csrf, action, errors) is not None:
        return _done(f"/admin/users/{name}")
    return _user_page(request, session, principal, name, 422, errors=errors)


@router.post("/admin/users/{name}/active")
def user_active(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    background: BackgroundTasks,
    csrf_token: Csrf = "",
    active: Annotated[str, Form()] = "",
) -> Response:
    def change():  # type: ignore[no-untyped-def]
        user = accounts.set_active(session, principal, name, active == "true")  # type: ignore[arg-type]
        for workspace_id in workspace_service.stop_disabled_owners(session):  # homes are kept
            background.add_task(
                workspace_service.execute, request.app.state.db, request.app.state.settings, workspace_id
            )
        return user

    response = _user_action(request, session, principal, name, csrf_token, change)
    response.background = background
    return response


@router.post("/admin/users/{name}/password")
def user_password(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    csrf_token: Csrf = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    return _user_action(
        request, session, principal, name, csrf_token,
        lambda: accounts.set_password(session, principal, name, password),  # type: ignore[arg-type]
    )  # fmt: skip


@router.post("/admin/users/{name}/roles")
def user_roles(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    csrf_token: Csrf = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    return _user_action(
        request, session, principal, name, csrf_token,
        lambda: accounts.set_roles(session, principal, name, set(roles or [])),  # type: ignore[arg-type]
    )  # fmt: skip


@router.post("/admin/users/{name}/groups")
def user_group_add(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    csrf_token: Csrf = "",
    group: Annotated[str, Form()] = "",
) -> Response:
    return _user_action(
        request, session, principal, name, csrf_token,
        lambda: groups.add_member(session, principal, group, name),  # type: ignore[arg-type]
    )  # fmt: skip


@router.post("/admin/users/{name}/groups/{group}/remove")
def user_group_remove(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    group: str,
    csrf_token: Csrf = "",
) -> Response:
    return _user_action(
        request, session, principal, name, csrf_token,
        lambda: groups.remove_member(session, principal, group, name),  # type: ignore[arg-type]
    )  # fmt: skip


@router.post("/admin/users/{name}/projects")
def user_project_add(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    csrf_token: Csrf = "",
    project: Annotated[str, Form()] = "",
    default: Annotated[str, Form()] = "",
) -> Response:
    return _user_action(
        request, session, principal, name, csrf_token,
        lambda: projects.add_member(session, principal, project, name, default=bool(default)),  # type: ignore[arg-type]
    )  # fmt: skip


@router.post("/admin/users/{name}/projects/{project}/remove")
def user_project_remove(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    project: str,
    csrf_token: Csrf = "",
) -> Response:
    return _user_action(
        request, session, principal, name, csrf_token,
        lambda: projects.remove_member(session, principal, project, name),  # type: ignore[arg-type]
    )  # fmt: skip


# --- groups --------------------------------------------------------------------------


def _groups_page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
):  # type: ignore[no-untyped-def]
    page = form_page(request, session, principal, "Groups")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    data.setdefault("form", {"name": "", "description": "", "roles": []})
    return _show(
        request, "admin/groups.html", page, status, groups=groups.list_groups(session, principal), **data
    )


@router.get("/admin/groups")
def groups_list(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_READ)) is not None:
        return stop
    assert principal is not None
    return _groups_page(request, session, principal)


@router.post("/admin/groups")
def groups_create(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    csrf_token: Csrf = "",
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_MANAGE)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}
    create = lambda: groups.create_group(  # noqa: E731
        session, principal, name.strip(), roles=set(roles or []), description=description.strip()
    )
    if attempt(session, principal, csrf_token, create, errors) is not None:
        return _done(f"/admin/groups/{name.strip()}")
    form = {"name": name, "description": description, "roles": roles or []}
    return _groups_page(request, session, principal, 422, errors=errors, form=form)


def _group_page(
    request: Request, session: DbSession, principal: Principal, name: str, status: int = 200, **data: object
):  # type: ignore[no-untyped-def]
    group = groups.read_group(session, principal, name)
    page = form_page(request, session, principal, f"Group {group.name}")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    users = accounts.list_users(session, principal, include_disabled=False)
    return _show(request, "admin/group.html", page, status, group=group, users_all=users, **data)


@router.get("/admin/groups/{name}")
def group_detail(request: Request, session: DbSession, principal: OptionalPrincipal, name: str) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_READ)) is not None:
        return stop
    assert principal is not None
    return _group_page(request, session, principal, name)


def _group_action(
    request: Request, session: DbSession, principal: Principal | None, name: str, csrf: str, action
):  # type: ignore[no-untyped-def]
    if (stop := guard(request, session, principal, Permission.USERS_MANAGE)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}
    if attempt(session, principal, csrf, action, errors) is not None:
        return _done(f"/admin/groups/{name}")
    return _group_page(request, session, principal, name, 422, errors=errors)


@router.post("/admin/groups/{name}/roles")
def group_roles(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    csrf_token: Csrf = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    return _group_action(
        request, session, principal, name, csrf_token,
        lambda: groups.set_group_roles(session, principal, name, set(roles or [])),  # type: ignore[arg-type]
    )  # fmt: skip


@router.post("/admin/groups/{name}/members")
def group_member_add(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    csrf_token: Csrf = "",
    user: Annotated[str, Form()] = "",
) -> Response:
    return _group_action(
        request, session, principal, name, csrf_token,
        lambda: groups.add_member(session, principal, name, user),  # type: ignore[arg-type]
    )  # fmt: skip


@router.post("/admin/groups/{name}/members/{user}/remove")
def group_member_remove(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    user: str,
    csrf_token: Csrf = "",
) -> Response:
    return _group_action(
        request, session, principal, name, csrf_token,
        lambda: groups.remove_member(session, principal, name, user),  # type: ignore[arg-type]
    )  # fmt: skip


# --- projects ------------------------------------------------------------------------


def _projects_page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
):  # type: ignore[no-untyped-def]
    page = form_page(request, session, principal, "Projects")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    data.setdefault("form", {"name": "", "description": ""})
    return _show(
        request,
        "admin/projects.html",
        page,
        status,
        projects=projects.list_projects(session, principal),
        **data,
    )


@router.get("/admin/projects")
def projects_list(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_READ)) is not None:
        return stop
    assert principal is not None
    return _projects_page(request, session, principal)


@router.post("/admin/projects")
def projects_create(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    csrf_token: Csrf = "",
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_MANAGE)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}
    create = lambda: projects.create_project(  # noqa: E731
        session, principal, name.strip(), description=description.strip()
    )
    if attempt(session, principal, csrf_token, create, errors) is not None:
        return _done(f"/admin/projects/{name.strip()}")
    form = {"name": name, "description": description}
    return _projects_page(request, session, principal, 422, errors=errors, form=form)


def _project_page(
    request: Request, session: DbSession, principal: Principal, name: str, status: int = 200, **data: object
):  # type: ignore[no-untyped-def]
    project = projects.read_project(session, principal, name)
    page = form_page(request, session, principal, f"Project {project.name}")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    users = accounts.list_users(session, principal, include_disabled=False)
    return _show(request, "admin/project.html", page, status, project=project, users_all=users, **data)


@router.get("/admin/projects/{name}")
def project_detail(request: Request, session: DbSession, principal: OptionalPrincipal, name: str) -> Response:
    if (stop := guard(request, session, principal, Permission.USERS_READ)) is not None:
        return stop
    assert principal is not None
    return _project_page(request, session, principal, name)


def _project_action(
    request: Request, session: DbSession, principal: Principal | None, name: str, csrf: str, action
):  # type: ignore[no-untyped-def]
    if (stop := guard(request, session, principal, Permission.USERS_MANAGE)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}
    if attempt(session, principal, csrf, action, errors) is not None:
        return _done(f"/admin/projects/{name}")
    return _project_page(request, session, principal, name, 422, errors=errors)


@router.post("/admin/projects/{name}/members")
def project_member_add(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    csrf_token: Csrf = "",
    user: Annotated[str, Form()] = "",
    default: Annotated[str, Form()] = "",
) -> Response:
    return _project_action(
        request, session, principal, name, csrf_token,
        lambda: projects.add_member(session, principal, name, user, default=bool(default)),  # type: ignore[arg-type]
    )  # fmt: skip


@router.post("/admin/projects/{name}/members/{user}/remove")
def project_member_remove(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    name: str,
    user: str,
    csrf_token: Csrf = "",
) -> Response:
    return _project_action(
        request, session, principal, name, csrf_token,
        lambda: projects.remove_member(session, principal, name, user),  # type: ignore[arg-type]
    )  # fmt: skip


# --- audit log -----------------------------------------------------------------------


def _day(value: str, field: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        errors[field] = "Enter a date as YYYY-MM-DD."
        return None


@router.get("/admin/audit")
def audit_log(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: str = "",
    until: str = "",
    page_no: int = 1,
) -> Response:
    if (stop := guard(request, session, principal, Permission.AUDIT_READ)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}
    start = _day(since, "since", errors)
    end = _day(until, "until", errors)
    if end is not None:
        end += timedelta(days=1)  # "until" is inclusive
    page_no = max(1, min(page_no, 100_000))
    filters = {
        "actor": actor.strip(),
        "action": action.strip(),
        "target": target.strip(),
        "since": since,
        "until": until,
    }
    events: list[AuditEvent] = []
    if not errors:
        events = audit.search(
            session,
            principal,
            actor=filters["actor"] or None,
            action=filters["action"] or None,
            target=filters["target"] or None,
            since=start,
            until=end,
            limit=AUDIT_PAGE_SIZE + 1,
            offset=(page_no - 1) * AUDIT_PAGE_SIZE,
        )
    query = {k: v for k, v in filters.items() if v}
    csv_query = dict(query)
    csv_query.pop("since", None)
    csv_query.pop("until", None)
    if start:
        csv_query["since"] = start.isoformat()
    if end:
        csv_query["until"] = end.isoformat()
    page = form_page(request, session, principal, "Audit log")
    page.errors.update(errors)
    return _show(
        request,
        "admin/audit.html",
        page,
        422 if errors else 200,
        events=events[:AUDIT_PAGE_SIZE],
        filters=filters,
        page_no=page_no,
        prev_url=f"/admin/audit?{urlencode({**query, 'page_no': page_no - 1})}" if page_no > 1 else None,
        next_url=f"/admin/audit?{urlencode({**query, 'page_no': page_no + 1})}"
        if len(events) > AUDIT_PAGE_SIZE
        else None,
        csv_url=f"/api/v1/audit/events.csv?{urlencode(csv_query)}",
    )
