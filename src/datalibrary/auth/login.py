"""Console and API sign-in: throttling, password check (local or LDAP, chosen by the account's
``source``), session issue, audit of every outcome."""

from __future__ import annotations

import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth import service, throttle
from datalibrary.auth.ldap import WRONG, LdapDirectory
from datalibrary.auth.ldap_sync import mapped_groups, sync_user
from datalibrary.auth.models import User
from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.errors import NotAuthenticated, TooManyRequests

# Every refused sign-in gets this one answer (the cause goes to the audit log only): a reply
# that differed for a right password ("not in a group") would tell a guesser it was right.
NOT_MAPPED = WRONG


def normalize_login(name: str) -> str:
    """A login name as the directory compares it: NFKC (fullwidth ``ａlice`` is ``alice``) and
    case folded, so throttling counts one account however its name is typed."""
    return unicodedata.normalize("NFKC", name or "").strip().casefold()


def _ldap_login(session: Session, settings: Settings, name: str, password: str) -> User:
    """Bind to LDAP, then sync the account in a transaction of its own: what the directory
    says is recorded even when the sign-in is then refused."""
    identity = LdapDirectory(settings.auth.ldap).authenticate(name, password)
    with Session(session.get_bind()) as own:
        synced = sync_user(own, identity, settings.auth.ldap)
        own.commit()
    if synced is None or not mapped_groups(identity, settings.auth.ldap):
        raise NotAuthenticated(NOT_MAPPED, reason="not-mapped")
    user = session.scalar(select(User).where(User.name == name))
    if user is None or not user.is_active or user.source != "ldap":
        raise NotAuthenticated(WRONG)
    return user


def authenticate(session: Session, settings: Settings, name: str, password: str) -> tuple[User, str]:
    """The user and the method that proved the password (``password`` or ``ldap``)."""
    user = session.scalar(select(User).where(User.name == name))
    ldap = settings.auth.ldap
    if user is not None and user.source == "ldap":
        if not ldap.enabled:
            raise NotAuthenticated(WRONG)
        return _ldap_login(session, settings, name, password), "ldap"
    if user is None and ldap.enabled:
        return _ldap_login(session, settings, name, password), "ldap"
    return service.authenticate_password(session, name, password), "password"


def password_login(
    session: Session, settings: Settings, name: str, password: str, *, client: str | None
) -> service.IssuedSession:
    name = normalize_login(name)  # user names are lower-case; "Ada" and "Ａda" sign in as "ada"
    failure = {"actor": name[:64], "action": "auth.login", "target": f"user:{name[:64]}", "client": client}
    try:
        throttle.check(session, name, client)
    except TooManyRequests:
        audit.record_now(session, **failure, outcome="denied", details={"reason": "locked"})
        raise
    try:
        user, method = authenticate(session, settings, name, password)
    except NotAuthenticated as exc:
        audit.record_now(
            session, **failure, outcome="failure", details={"reason": exc.extra.get("reason", "credentials")}
        )
        throttle.record_failure(session, settings.auth, name, client)
        raise NotAuthenticated(WRONG) from exc
    throttle.clear_account(session, name)
    issued = service.create_session(session, user, settings.auth)
    audit.record(
        session,
        actor=user.name,
        action="auth.login",
        target=f"user:{user.name}",
        client=client,
        details={"method": method},
    )
    return issued


def logout(session: Session, principal: Principal, *, client: str | None) -> None:
    if principal.session_id:
        service.end_session(session, principal.session_id)
    audit.record(
        session, actor=principal, action="auth.logout", target=f"user:{principal.name}", client=client
    )
