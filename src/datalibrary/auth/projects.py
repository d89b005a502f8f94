"""Projects (cost centers): workspaces and queries are charged to one. Admins manage them;
a user may belong to several and has at most one default, used when they name none."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.groups import check_name
from datalibrary.auth.models import Project, ProjectMember, User
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.auth.service import get_user
from datalibrary.errors import Conflict, InvalidInput, NotFound


def get_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"no project named '{name}'")
    return project


def list_projects(session: Session, actor: Principal) -> list[Project]:
    require(actor, Permission.USERS_READ)
    return list(session.scalars(select(Project).order_by(Project.name)))


def read_project(session: Session, actor: Principal, name: str) -> Project:
    if name not in actor.projects:
        require(actor, Permission.USERS_READ)
    return get_project(session, name)


def create_project(session: Session, actor: Principal, name: str, *, description: str = "") -> Project:
    require(actor, Permission.USERS_MANAGE)
    check_name(name, "project")
    if len(description) > 500:
        raise InvalidInput("description must be at most 500 characters", field="description")
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"a project named '{name}' already exists")
    project = Project(name=name, description=description)
    session.add(project)
    session.flush()
    audit.record(session, actor=actor, action="project.create", target=f"project:{name}")
    return project


def _make_default(user: User, project: Project) -> None:
    for link in user.project_links:
        link.is_default = link.project_id == project.id


def add_member(
    session: Session, actor: Principal, project_name: str, user_name: str, *, default: bool = False
) -> Project:
    """Add a user to a project (idempotent); ``default`` also makes it their default project."""
    require(actor, Permission.USERS_MANAGE)
    project = get_project(session, project_name)
    user = get_user(session, user_name)
    link = next((m for m in project.members if m.user_id == user.id), None)
    if link is None:
        project.members.append(ProjectMember(user_id=user.id))
        session.flush()
        session.expire(user, ["project_links"])
        audit.record(
            session,
            actor=actor,
            action="project.member_add",
            target=f"project:{project_name}",
            details={"user": user_name, "default": default},
        )
    if default:
        was_default = link is not None and link.is_default
        _make_default(user, project)
        session.flush()
        if link is not None and not was_default:
            audit.record(
                session,
                actor=actor,
                action="project.default",
                target=f"project:{project_name}",
                details={"user": user_name},
            )
    return project


def remove_member(session: Session, actor: Principal, project_name: str, user_name: str) -> Project:
    require(actor, Permission.USERS_MANAGE)
    project = get_project(session, project_name)
    user = get_user(session, user_name)
    link = next((m for m in project.members if m.user_id == user.id), None)
    if link is None:
        raise NotFound(f"'{user_name}' is not a member of '{project_name}'")
    project.members.remove(link)
    session.flush()
    session.expire(user, ["project_links"])
    audit.record(
        session,
        actor=actor,
        action="project.member_remove",
        target=f"project:{project_name}",
        details={"user": user_name},
    )
    return project
