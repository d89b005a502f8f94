"""Mirror an LDAP user into DataLibrary on each sign-in: the account, its display name and
e-mail, and its memberships of the DataLibrary groups that ``auth.ldap.group_map`` maps its
LDAP groups to. Memberships added by hand (``source="local"``) are never touched."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.auth import groups as groups_service
from datalibrary.auth.ldap import LdapIdentity
from datalibrary.auth.models import Group, User
from datalibrary.auth.permissions import Principal
from datalibrary.auth.service import USER_NAME, create_user
from datalibrary.config import LdapGroupMapping, LdapSettings

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
