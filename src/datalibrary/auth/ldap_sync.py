"""Mirror an LDAP user into DataLibrary on each sign-in: the account, its display name and
e-mail, and its memberships of the DataLibrary groups that ``auth.ldap.group_map`` maps its
LDAP groups to. Memberships added by hand (``source="local"``) are never touched."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth import groups as groups_service
from datalibrary.auth.ldap import LdapDirectory, LdapIdentity
from datalibrary.auth.models import Group, User, WebSession
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.auth.service import USER_NAME, create_user
from datalibrary.config import LdapGroupMapping, LdapSettings
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict

SYNC = Principal.system("ldap-sync")


def mapped_groups(identity: LdapIdentity, settings: LdapSettings) -> dict[str, LdapGroupMapping]:
    """DataLibrary group name -> mapping, for the identity's LDAP groups that are mapped."""
    by_ldap_name = {key.lower(): mapping for key, mapping in settings.group_map.items()}
    return {m.group: m for g in identity.groups if (m := by_ldap_name.get(g)) is not None}


def _ensure_group(session: Session, mapping: LdapGroupMapping) -> Group:
    group = session.scalar(select(Group).where(Group.name == mapping.group))
    if group is None:
        return groups_service.create_group(
            session,
            SYNC,
            mapping.group,
            roles=set(mapping.roles),
            description="Synced from LDAP",
            source="ldap",
        )
    if group.source == "ldap" and group.role_names != set(mapping.roles):
        groups_service.set_group_roles(session, SYNC, group.name, set(mapping.roles))
    return group


def sync_user(session: Session, identity: LdapIdentity, settings: LdapSettings) -> User | None:
    """Create or update the user and its LDAP-sourced memberships; None when the user is in no
    mapped group and has no account (nobody is created who could not sign in)."""
    wanted = mapped_groups(identity, settings)
    user = session.scalar(select(User).where(User.name == identity.name))
    if user is None:
        if not wanted or not USER_NAME.match(identity.name):
            return None
        user = create_user(
            session,
            SYNC,
            identity.name,
            roles=set(),
            display_name=identity.display_name,
            email=identity.email,
            source="ldap",
        )
    elif user.source != "ldap":
        return user  # a local account of the same name wins; never merge the two
    else:
        user.display_name = identity.display_name or user.display_name
        user.email = identity.email
    for mapping in wanted.values():
        _ensure_group(session, mapping)
    current = {link.group.name for link in user.group_links if link.source == "ldap"}
    for name in sorted(current - set(wanted)):
        groups_service.remove_member(session, SYNC, name, user.name)
    for name in sorted(set(wanted) - current):
        if name not in user.group_names:
            groups_service.add_member(session, SYNC, name, user.name, source="ldap")
    session.flush()
    session.refresh(user)
    return user


def reconcile(session: Session, actor: Principal, settings: LdapSettings) -> dict[str, str]:
    """Between sign-ins: disable LDAP accounts that left the directory (their sessions and API
    tokens stop at once) and re-sync the groups of the others. Returns name -> what happened."""
    require(actor, Permission.USERS_MANAGE)
    if not settings.enabled:
        raise Conflict("LDAP is not enabled (auth.ldap.enabled)", field="auth.ldap.enabled")
    if not settings.bind_dn:
        raise Conflict(
            "reconciling LDAP accounts needs a service account: set auth.ldap.bind_dn and bind_password",
            field="auth.ldap.bind_dn",
        )
    directory = LdapDirectory(settings)
    report: dict[str, str] = {}
    users = session.scalars(
        select(User).where(User.source == "ldap", User.is_active.is_(True)).order_by(User.name)
    )
    for user in list(users):
        identity = directory.lookup(user.name)
        if identity is None:
            user.is_active = False
            session.execute(
                update(WebSession)
                .where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            audit.record(
                session,
                actor=actor,
                action="user.disable",
                target=f"user:{user.name}",
                details={"reason": "not in LDAP"},
            )
            report[user.name] = "disabled: no longer in the directory"
            continue
        before = user.group_names
        sync_user(session, identity, settings)
        after = user.group_names
        report[user.name] = "groups updated" if before != after else "unchanged"
    return report
