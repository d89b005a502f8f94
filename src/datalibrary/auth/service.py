"""Identity service: users, password login, API tokens and console sessions.

Functions take a SQLAlchemy session and, where an action needs one, the acting
``Principal``; they check permissions themselves so no front end can skip the check.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, bindparam, false, literal, select, true, union_all, update
from sqlalchemy.orm import Session

from datalibrary import audit
from datalibrary.audit import service as audit_service
from datalibrary.auth.authenticators import WRONG
from datalibrary.auth.models import (
    ApiToken,
    Group,
    GroupMember,
    GroupRole,
    Project,
    ProjectMember,
    User,
    UserRole,
    WebSession,
    default_project,
)
from datalibrary.auth.passwords import check_policy, generate_password, hash_password, verify_password
from datalibrary.auth.permissions import ROLES, Permission, Principal, require
from datalibrary.config import AuthSettings
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, PermissionDenied

TOKEN_PREFIX = "dl_"  # noqa: S105 - a public marker, not a secret
USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
FIRST_ADMIN = "admin"

assert audit  # the package, imported so its models are registered


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def principal_for(user: User, **kwargs: object) -> Principal:
    """The one place a user's ``Principal`` is built: own roles + groups' roles, projects."""
    return Principal.for_user(
        user.id,
        user.name,
        user.effective_roles,
        groups=user.group_names,
        projects=user.project_names,
        default_project=user.default_project,
        **kwargs,
    )


# --- users ---------------------------------------------------------------------------


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named '{name}'")
    return user


def create_user(
    session: Session,
    actor: Principal,
    name: str,
    *,
    roles: set[str],
    password: str | None = None,
    display_name: str = "",
    email: str | None = None,
    source: str = "local",
) -> User:
    require(actor, Permission.USERS_MANAGE)
    if not USER_NAME.match(name):
        raise InvalidInput(
            "user name must be 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter",
            field="name",
        )
    unknown = roles - set(ROLES)
    if unknown:
        raise InvalidInput(f"unknown role(s) {sorted(unknown)}; roles are {list(ROLES)}", field="role")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named '{name}' already exists")
    if password is not None:
        check_policy(password, name)
    user = User(
        name=name,
        display_name=display_name or name,
        email=email,
        password_hash=hash_password(password) if password else None,
        source=source,
        roles=[UserRole(role=role) for role in sorted(roles)],
    )
    session.add(user)
    session.flush()
    audit_service.record(
        session,
        actor=actor,
        action="user.create",
        target=f"user:{name}",
        details={"roles": sorted(roles), "source": source},
    )
    return user


def ensure_first_admin(session: Session) -> str | None:
    """Create the first admin with a random password; return it (once) or None if users exist."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    password = generate_password(FIRST_ADMIN)
    create_user(
        session,
        Principal.system("init"),
        FIRST_ADMIN,
        roles={"admin"},
        password=password,
        display_name="Administrator",
    )
    return password


def authenticate_password(session: Session, name: str, password: str) -> User:
    """Check a local password; the same error for unknown users and wrong passwords."""
    user = session.scalar(select(User).where(User.name == name))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        raise NotAuthenticated(WRONG)
    return user


# --- API tokens ----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(
    session: Session,
    actor: Principal,
    user_name: str,
    *,
    name: str = "cli",
    expires_days: int | None = 90,
    scope: str | None = None,
) -> IssuedToken:
    if actor.token_scope is not None:
        # a scoped token (a workspace's) must never turn itself into a broader, longer-lived one
        raise PermissionDenied("a scoped token cannot create tokens; use the console or your own token")
    user = get_user(session, user_name)
    if user.id != actor.user_id:
        require(actor, Permission.USERS_MANAGE)
    else:
        require(actor, Permission.TOKENS_OWN)
    if user.source == "system":  # e.g. the warm pool's account: no credential of any kind
        raise Conflict(f"'{user_name}' is a platform account; it cannot have tokens")
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise InvalidInput("token expiry must be between 1 and 3650 days", field="expires")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_sha256(secret),
        prefix=secret[:10],
        scope=scope,
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(token)
    session.flush()
    audit_service.record(
        session,
        actor=actor,
        action="token.create",
        target=f"user:{user.name}",
        details={"token_id": token.id, "name": name, "expires_days": expires_days},
    )
    return IssuedToken(token, secret)


@functools.cache
def _token_grants() -> Select[Any]:
    """A token's user and everything their principal needs as rows of (kind, value,
    is default, is active): own roles, groups, groups' roles, projects. Built once."""
    roles = select(UserRole.user_id, literal("role"), UserRole.role, false(), true())
    groups = select(GroupMember.user_id, literal("group"), Group.name, false(), true()).join(
        Group, Group.id == GroupMember.group_id
    )
    group_roles = select(GroupMember.user_id, literal("role"), GroupRole.role, false(), true()).join(
        GroupRole, GroupRole.group_id == GroupMember.group_id
    )
    projects = select(
        ProjectMember.user_id, literal("project"), Project.name, ProjectMember.is_default, Project.is_active
    ).join(Project, Project.id == ProjectMember.project_id)
    grants = union_all(roles, groups, group_roles, projects).subquery()
    columns = list(grants.c)
    return (
        select(
            ApiToken.id,
            ApiToken.scope,
            ApiToken.expires_at,
            ApiToken.revoked_at,
            ApiToken.last_used_at,
            User.id,
            User.name,
            User.is_active,
            *columns[1:],
        )  # fmt: skip
        .join(User, User.id == ApiToken.user_id)
        .outerjoin(grants, columns[0] == User.id)
        .where(ApiToken.token_hash == bindparam("token_hash"))
    )


def principal_from_token(session: Session, secret: str) -> Principal:
    """One query for the token, its user, roles, groups and projects: every API, Git and
    package request starts here (``principal_for`` over the ORM took five)."""
    rows = session.execute(_token_grants(), {"token_hash": _sha256(secret)}).all()
    now = utcnow()
    if not rows:
        raise NotAuthenticated("the API token is unknown, revoked or expired")
    token_id, scope, expires_at, revoked_at, last_used_at, user_id, name, is_active = rows[0][:8]
    if revoked_at is not None or (expires_at and expires_at <= now):
        raise NotAuthenticated("the API token is unknown, revoked or expired")
    if not is_active:
        raise NotAuthenticated("the API token's user is disabled")
    if last_used_at is None or now - last_used_at > timedelta(minutes=1):
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    roles, groups, projects = set(), set(), []
    for kind, value, is_default, active in (row[8:] for row in rows):
        if kind == "role":
            roles.add(value)
        elif kind == "group":
            groups.add(value)
        elif kind == "project" and active:
            projects.append((value, bool(is_default)))
    return Principal.for_user(
        user_id,
        name,
        roles,
        groups=groups,
        projects={project for project, _ in projects},
        default_project=default_project(projects),
        via="token",
        token_scope=scope,
    )


def list_tokens(session: Session, actor: Principal, user_name: str) -> list[ApiToken]:
    user = get_user(session, user_name)
    require(actor, Permission.TOKENS_OWN if user.id == actor.user_id else Permission.USERS_MANAGE)
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def revoke_token(session: Session, actor: Principal, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no API token with id {token_id}")
    require(actor, Permission.TOKENS_OWN if token.user_id == actor.user_id else Permission.USERS_MANAGE)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit_service.record(session, actor=actor, action="token.revoke", target=f"token:{token.id}")
    return token


# --- console sessions ------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedSession:
    record: WebSession
    secret: str  # the cookie value


def create_session(session: Session, user: User, settings: AuthSettings) -> IssuedSession:
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    record = WebSession(
        id=_sha256(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
    )
    session.add(record)
    session.flush()
    return IssuedSession(record, secret)


def principal_from_session(session: Session, secret: str, settings: AuthSettings) -> Principal:
    """Resolve a cookie; enforce idle and absolute timeouts and slide the idle window."""
    return principal_from_session_id(session, _sha256(secret), settings)


def principal_from_session_id(session: Session, session_id: str, settings: AuthSettings) -> Principal:
    """The same, from the session's id (a workspace origin's cookie is bound to one)."""
    record = session.get(WebSession, session_id)
    now = utcnow()
    if (
        record is None
        or record.revoked_at is not None
        or record.expires_at <= now
        or now - record.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    ):
        raise NotAuthenticated("your session has ended; sign in again")
    user = session.get(User, record.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("this account is disabled")
    if now - record.last_seen_at > timedelta(seconds=30):
        record.last_seen_at = now
    return principal_for(user, via="session", session_id=record.id)


def csrf_token_for(session: Session, session_id: str) -> str:
    record = session.get(WebSession, session_id)
    if record is None:
        raise NotAuthenticated("your session has ended; sign in again")
    return record.csrf_token


def end_session(session: Session, session_id: str) -> None:
    record = session.get(WebSession, session_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
