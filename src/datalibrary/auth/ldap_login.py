"""LDAP / Active Directory accounts (``source = ldap``): bind as the user, then mirror the
account and its mapped groups (``ldap_sync``). On when ``auth.ldap.enabled``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.auth.authenticators import WRONG, Authenticator
from datalibrary.auth.ldap import LdapDirectory
from datalibrary.auth.ldap_sync import mapped_groups, sync_user
from datalibrary.auth.models import User
from datalibrary.config import Settings
from datalibrary.errors import NotAuthenticated

# A right password of a user in no mapped group gets the answer of a wrong one (the cause goes
# to the audit log only): a reply that differed would tell a guesser the password was right.
NOT_MAPPED = WRONG


class LdapAuthenticator(Authenticator):
    source = "ldap"
    method = "ldap"

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.auth.ldap.enabled

    def authenticate(self, session: Session, name: str, password: str) -> User:
        """Bind to LDAP, then sync the account in a transaction of its own: what the directory
        says is recorded even when the sign-in is then refused."""
        ldap = self.settings.auth.ldap
        identity = LdapDirectory(ldap).authenticate(name, password)
        with Session(session.get_bind()) as own:
            synced = sync_user(own, identity, ldap)
            own.commit()
        if synced is None or not mapped_groups(identity, ldap):
            raise NotAuthenticated(NOT_MAPPED, reason="not-mapped")
        user = session.scalar(select(User).where(User.name == name))
        if user is None or not user.is_active or user.source != self.source:
            raise NotAuthenticated(WRONG)
        return user
