"""Administering user accounts: list, disable/enable, roles, passwords.

Creating a user lives in ``auth.service.create_user``; this module changes existing ones.
Every change is audited in the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth import throttle
from datalibrary.auth.models import ApiToken, User, UserRole, WebSession
from datalibrary.auth.passwords import check_policy, hash_password
from datalibrary.auth.permissions import ROLES, Permission, Principal, require
from datalibrary.auth.service import get_user
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput


def check_roles(roles: set[str], field: str = "roles") -> None:
    unknown = roles - set(ROLES)
    if unknown:
        raise InvalidInput(f"unknown role(s) {sorted(unknown)}; roles are {list(ROLES)}", field=field)


def list_users(session: Session, actor: Principal, *, include_disabled: bool = True) -> list[User]:
    require(actor, Permission.USERS_READ)
    query = select(User).order_by(User.name)
    if not include_disabled:
        query = query.where(User.is_active.is_(True))
    return list(session.scalars(query))


def read_user(session: Session, actor: Principal, name: str) -> User:
    if name != actor.name:
        require(actor, Permission.USERS_READ)
    return get_user(session, name)


def _end_sessions(session: Session, user: User) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _revoke_tokens(session: Session, user: User) -> None:
    """Every token of the user, workspace-scoped ones included: enabling the account again
    must not bring old secrets back."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def set_active(session: Session, actor: Principal, name: str, active: bool) -> User:
    """Disable or enable an account. A disabled user's sessions end and tokens stop working at once
    (every request re-reads ``is_active``); enabling also lifts a sign-in lockout."""
    require(actor, Permission.USERS_MANAGE)
    user = get_user(session, name)
    if active and user.source == "system":  # e.g. the warm pool's account: nobody signs in as it
        raise Conflict(f"'{name}' is a platform account; it cannot be enabled")
    if not active and user.id == actor.user_id:
        raise Conflict("you cannot disable your own account; ask another administrator")
    if active and throttle.unlock(session, name):
        audit.record(session, actor=actor, action="auth.unlock", target=f"user:{name}")
    if user.is_active == active:
        return user
    user.is_active = active
    if not active:
        _end_sessions(session, user)
        _revoke_tokens(session, user)
    audit.record(
        session, actor=actor, action="user.enable" if active else "user.disable", target=f"user:{name}"
    )
    return user


def set_roles(session: Session, actor: Principal, name: str, roles: set[str]) -> User:
    """Replace the roles a user holds directly (group roles are unchanged)."""
    require(actor, Permission.USERS_MANAGE)
    check_roles(roles)
    user = get_user(session, name)
    if user.id == actor.user_id and "admin" in user.role_names and "admin" not in roles:
        raise Conflict("you cannot remove your own admin role; ask another administrator")
    before = sorted(user.role_names)
    if before == sorted(roles):
        return user
    user.roles = [UserRole(role=role) for role in sorted(roles)]
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.roles",
        target=f"user:{name}",
        details={"before": before, "after": sorted(roles)},
    )
    return user


def set_password(session: Session, actor: Principal, name: str, password: str) -> User:
    """Set a local user's password (policy checked); their other sessions end."""
    user = get_user(session, name)
    if user.id != actor.user_id:
        require(actor, Permission.USERS_MANAGE)
    if user.source != "local":
        raise Conflict(f"'{name}' signs in through {user.source.upper()}; change the password there")
    check_policy(password, name)
    user.password_hash = hash_password(password)
    _end_sessions(session, user)
    audit.record(session, actor=actor, action="user.password", target=f"user:{name}")
    return user
