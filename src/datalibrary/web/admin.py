"""The Admin section: users, groups, projects (``users.read`` to see, ``users.manage`` to
change) and the audit log viewer with CSV export (``audit.read``). Plain HTML forms that
post back here (with the CSRF token) and redirect after success; errors are shown next to
the field they concern."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.audit.models import AuditEvent
from datalibrary.auth import accounts, groups, projects, service
from datalibrary.auth.models import User
from datalibrary.auth.permissions import ROLES, Permission, Principal
from datalibrary.http.deps import DbSession
from datalibrary.web.forms import Posted, form_page, posted
from datalibrary.web.guards import allowed
from datalibrary.web.pages import page_with
from datalibrary.web.rendering import render
from datalibrary.workspaces import service as workspace_service

router = APIRouter(include_in_schema=False)
AUDIT_PAGE_SIZE = 50
FormText = Annotated[str, Form()]
FormList = Annotated[list[str] | None, Form()]
Reader = Annotated[Principal, allowed(Permission.USERS_READ)]
Managing = Annotated[Posted, posted(Permission.USERS_MANAGE)]


def _done(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _show(request: Request, template: str, page, status: int = 200, **data: object) -> Response:  # type: ignore[no-untyped-def]
    return render(request, template, page_with(page, roles_all=ROLES, **data), status_code=status)


# --- overview ------------------------------------------------------------------------


@router.get("/admin")
def overview(request: Request, session: DbSession, principal: Reader) -> Response:
    counts = accounts.admin_counts(session, principal)
    page = form_page(request, session, principal, "Admin")
    return _show(request, "admin/overview.html", page, counts=counts)


# --- users ---------------------------------------------------------------------------


def _users_page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
):  # type: ignore[no-untyped-def]
    page = form_page(request, session, principal, "Users")
    page.errors.update(data.pop("errors", {}))
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
def users_list(request: Request, session: DbSession, principal: Reader) -> Response:
    return _users_page(request, session, principal)


@router.post("/admin/users")
def users_create(
    form: Managing,
    name: FormText = "",
    display_name: FormText = "",
    password: FormText = "",
    roles: FormList = None,
    project: FormText = "",
) -> Response:
    name = name.strip()
    values = {"name": name, "display_name": display_name, "roles": roles or [], "project": project}

    def again(errors: dict[str, str]) -> Response:
        if "role" in errors:
            errors["roles"] = errors.pop("role")
        return _users_page(form.request, form.session, form.principal, 422, errors=errors, form=values)

    if not password:
        return again({"password": "Set an initial password (the user can be given a new one later)."})  # noqa: S106

    def create() -> User:
        user = service.create_user(
            form.session, form.principal, name, roles=set(roles or []), password=password,
            display_name=display_name.strip(),
        )  # fmt: skip
        if project:
            projects.add_member(form.session, form.principal, project, name, default=True)
        return user

    return form.submit(create, f"/admin/users/{name}", again)


def _user_page(
    request: Request, session: DbSession, principal: Principal, name: str, status: int = 200, **data: object
):  # type: ignore[no-untyped-def]
    user = accounts.read_user(session, principal, name)
    page = form_page(request, session, principal, f"User {user.name}")
    page.errors.update(data.pop("errors", {}))
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
def user_detail(request: Request, session: DbSession, principal: Reader, name: str) -> Response:
    return _user_page(request, session, principal, name)


@dataclass(frozen=True)
class Edit(Posted):
    """A form posted to change one user, group or project (``name`` in the path)."""

    name: str

    def apply(self, action: Callable[[], object], done: str, redisplay: Callable[..., Response]) -> Response:
        """Run ``action``; redirect to ``done``, or show the page again with the errors."""
        return self.submit(action, done, self.again(redisplay, self.name))


def _edit(form: Managing, name: str) -> Edit:
    return Edit(form.request, form.session, form.principal, form.csrf, name)


Editing = Annotated[Edit, Depends(_edit)]


def _user_action(edit: Edit, action: Callable[[], object]) -> Response:
    return edit.apply(action, f"/admin/users/{edit.name}", _user_page)


@router.post("/admin/users/{name}/active")
def user_active(edit: Editing, background: BackgroundTasks, active: FormText = "") -> Response:
    def change() -> User:
        user = accounts.set_active(edit.session, edit.principal, edit.name, active == "true")
        for workspace_id in workspace_service.stop_disabled_owners(edit.session):  # homes are kept
            state = edit.request.app.state
            background.add_task(workspace_service.execute, state.db, state.settings, workspace_id)
        return user

    response = _user_action(edit, change)
    response.background = background
    return response


@router.post("/admin/users/{name}/password")
def user_password(edit: Editing, password: FormText = "") -> Response:
    return _user_action(
        edit, lambda: accounts.set_password(edit.session, edit.principal, edit.name, password)
    )


@router.post("/admin/users/{name}/roles")
def user_roles(edit: Editing, roles: FormList = None) -> Response:
    change = lambda: accounts.set_roles(edit.session, edit.principal, edit.name, set(roles or []))  # noqa: E731
    return _user_action(edit, change)


@router.post("/admin/users/{name}/groups")
def user_group_add(edit: Editing, group: FormText = "") -> Response:
    return _user_action(edit, lambda: groups.add_member(edit.session, edit.principal, group, edit.name))


@router.post("/admin/users/{name}/groups/{group}/remove")
def user_group_remove(edit: Editing, group: str) -> Response:
    return _user_action(edit, lambda: groups.remove_member(edit.session, edit.principal, group, edit.name))


@router.post("/admin/users/{name}/projects")
def user_project_add(edit: Editing, project: FormText = "", default: FormText = "") -> Response:
    add = lambda: projects.add_member(edit.session, edit.principal, project, edit.name, default=bool(default))  # noqa: E731
    return _user_action(edit, add)


@router.post("/admin/users/{name}/projects/{project}/remove")
def user_project_remove(edit: Editing, project: str) -> Response:
    return _user_action(
        edit, lambda: projects.remove_member(edit.session, edit.principal, project, edit.name)
    )


# --- groups and projects: the same pages, one implementation ----------------------------


@dataclass(frozen=True)
class Collection:
    """Groups or projects: a list with a create form, a detail page with members."""

    path: str  # "groups": /admin/groups, admin/groups.html, admin/group.html
    title: str  # "Group"
    blank: dict[str, object]
    listing: Callable[[Session, Principal], list[Any]]
    read: Callable[[Session, Principal, str], Any]
    remove_member: Callable[[Session, Principal, str, str], Any]

    @property
    def singular(self) -> str:
        return self.path[:-1]


GROUPS = Collection(
    "groups", "Group", {"name": "", "description": "", "roles": []},
    groups.list_groups, groups.read_group, groups.remove_member,
)  # fmt: skip
PROJECTS = Collection(
    "projects", "Project", {"name": "", "description": ""},
    projects.list_projects, projects.read_project, projects.remove_member,
)  # fmt: skip


def _list_page(
    kind: Collection, request: Request, session: Session, principal: Principal, status: int = 200, **data: Any
) -> Response:
    page = form_page(request, session, principal, kind.path.capitalize())
    page.errors.update(data.pop("errors", {}))
    data.setdefault("form", dict(kind.blank))
    listing = {kind.path: kind.listing(session, principal)}
    return _show(request, f"admin/{kind.path}.html", page, status, **listing, **data)


def _create(
    kind: Collection, form: Posted, name: str, values: dict[str, object], create: Callable[[], object]
) -> Response:
    again = form.again(partial(_list_page, kind), form=values)
    return form.submit(create, f"/admin/{kind.path}/{name.strip()}", again)


def _detail_page(
    kind: Collection, request: Request, session: Session, principal: Principal, name: str,
    status: int = 200, **data: Any,
) -> Response:  # fmt: skip
    item = kind.read(session, principal, name)
    page = form_page(request, session, principal, f"{kind.title} {item.name}")
    page.errors.update(data.pop("errors", {}))
    users = accounts.list_users(session, principal, include_disabled=False)
    detail = {kind.singular: item}
    return _show(request, f"admin/{kind.singular}.html", page, status, **detail, users_all=users, **data)


def _action(kind: Collection, edit: Edit, action: Callable[[], object]) -> Response:
    redisplay = partial(_detail_page, kind)
    return edit.apply(action, f"/admin/{kind.path}/{edit.name}", redisplay)


def _collection_routes(kind: Collection) -> None:
    """The routes both collections have: list, detail, remove a member."""

    def listing(request: Request, session: DbSession, principal: Reader) -> Response:
        return _list_page(kind, request, session, principal)

    def detail(request: Request, session: DbSession, principal: Reader, name: str) -> Response:
        return _detail_page(kind, request, session, principal, name)

    def member_remove(edit: Editing, user: str) -> Response:
        return _action(kind, edit, lambda: kind.remove_member(edit.session, edit.principal, edit.name, user))

    base = f"/admin/{kind.path}"
    for path, endpoint, method in (
        (base, listing, "GET"),
        (base + "/{name}", detail, "GET"),
        (base + "/{name}/members/{user}/remove", member_remove, "POST"),
    ):
        endpoint.__name__ = f"{kind.singular}_{endpoint.__name__}"
        router.add_api_route(path, endpoint, methods=[method])


_collection_routes(GROUPS)
_collection_routes(PROJECTS)


@router.post("/admin/groups")
def groups_create(
    form: Managing, name: FormText = "", description: FormText = "", roles: FormList = None
) -> Response:
    create = lambda: groups.create_group(  # noqa: E731
        form.session, form.principal, name.strip(), roles=set(roles or []), description=description.strip()
    )
    values = {"name": name, "description": description, "roles": roles or []}
    return _create(GROUPS, form, name, values, create)


@router.post("/admin/groups/{name}/roles")
def group_roles(edit: Editing, roles: FormList = None) -> Response:
    change = lambda: groups.set_group_roles(edit.session, edit.principal, edit.name, set(roles or []))  # noqa: E731
    return _action(GROUPS, edit, change)


@router.post("/admin/groups/{name}/members")
def group_member_add(edit: Editing, user: FormText = "") -> Response:
    return _action(GROUPS, edit, lambda: groups.add_member(edit.session, edit.principal, edit.name, user))


@router.post("/admin/projects")
def projects_create(form: Managing, name: FormText = "", description: FormText = "") -> Response:
    create = lambda: projects.create_project(  # noqa: E731
        form.session, form.principal, name.strip(), description=description.strip()
    )
    return _create(PROJECTS, form, name, {"name": name, "description": description}, create)


@router.post("/admin/projects/{name}/members")
def project_member_add(edit: Editing, user: FormText = "", default: FormText = "") -> Response:
    add = lambda: projects.add_member(edit.session, edit.principal, edit.name, user, default=bool(default))  # noqa: E731
    return _action(PROJECTS, edit, add)


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
    principal: Annotated[Principal, allowed(Permission.AUDIT_READ)],
    actor: str = "",
    action: str = "",
    target: str = "",
    since: str = "",
    until: str = "",
    on_behalf_of: str = "",
    page_no: int = 1,
) -> Response:
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
        "on_behalf_of": on_behalf_of.strip()[:64],
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
            on_behalf_of=filters["on_behalf_of"] or None,
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
