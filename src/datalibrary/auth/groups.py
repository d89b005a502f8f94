"""Groups: sets of users that grant roles. A user's effective roles are their own roles plus
the roles of every group they belong to. LDAP sync manages groups marked ``source="ldap"``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.accounts import check_roles
from datalibrary.auth.models import Group, GroupMember, GroupRole
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.auth.service import USER_NAME, get_user
from datalibrary.errors import Conflict, InvalidInput, NotFound


def check_name(name: str, kind: str) -> None:
    if not USER_NAME.match(name):
        raise InvalidInput(
            f"{kind} name must be 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter",
            field="name",
        )


def get_group(session: Session, name: str) -> Group:
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        raise NotFound(f"no group named '{name}'")
    return group


def list_groups(session: Session, actor: Principal) -> list[Group]:
    require(actor, Permission.USERS_READ)
    return list(session.scalars(select(Group).order_by(Group.name)))


def read_group(session: Session, actor: Principal, name: str) -> Group:
    require(actor, Permission.USERS_READ)
    return get_group(session, name)


def create_group(
    session: Session,
    actor: Principal,
    name: str,
    *,
    roles: set[str] = frozenset(),  # type: ignore[assignment]
    description: str = "",
    source: str = "local",
) -> Group:
    require(actor, Permission.USERS_MANAGE)
    check_name(name, "group")
    check_roles(set(roles))
    if len(description) > 500:
        raise InvalidInput("description must be at most 500 characters", field="description")
    if session.scalar(select(Group.id).where(Group.name == name)) is not None:
        raise Conflict(f"a group named '{name}' already exists")
    group = Group(
        name=name,
        description=description,
        source=source,
        roles=[GroupRole(role=r) for r in sorted(roles)],
    )
    session.add(group)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="group.create",
        target=f"group:{name}",
        details={"roles": sorted(roles), "source": source},
    )
    return group


def set_group_roles(session: Session, actor: Principal, name: str, roles: set[str]) -> Group:
    require(actor, Permission.USERS_MANAGE)
    check_roles(roles)
    group = get_group(session, name)
    before = sorted(group.role_names)
    if before == sorted(roles):
        return group
    group.roles = [GroupRole(role=r) for r in sorted(roles)]
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="group.roles",
        target=f"group:{name}",
        details={"before": before, "after": sorted(roles)},
    )
    return group


def add_member(
    session: Session, actor: Principal, group_name: str, user_name: str, *, source: str = "local"
) -> Group:
    require(actor, Permission.USERS_MANAGE)
    group = get_group(session, group_name)
    user = get_user(session, user_name)
    if any(m.user_id == user.id for m in group.members):
        return group
    group.members.append(GroupMember(user_id=user.id, source=source))
    session.flush()
    session.expire(user, ["group_links"])
    audit.record(
        session,
        actor=actor,
        action="group.member_add",
        target=f"group:{group_name}",
        details={"user": user_name, "source": source},
    )
    return group


def remove_member(session: Session, actor: Principal, group_name: str, user_name: str) -> Group:
    require(actor, Permission.USERS_MANAGE)
    group = get_group(session, group_name)
    user = get_user(session, user_name)
    link = next((m for m in group.members if m.user_id == user.id), None)
    if link is None:
        raise NotFound(f"'{user_name}' is not a member of '{group_name}'")
    group.members.remove(link)
    session.flush()
    session.expire(user, ["group_links"])
    audit.record(
        session,
        actor=actor,
        action="group.member_remove",
        target=f"group:{group_name}",
        details={"user": user_name},
    )
    return group
