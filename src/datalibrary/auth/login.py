"""Console and API sign-in: throttling, the password proven by an authenticator (the
backends of ``auth.authenticators``, chosen by the account's ``source``), session issue,
audit of every outcome."""

from __future__ import annotations

import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth import authenticators, service, throttle
from datalibrary.auth.authenticators import WRONG
from datalibrary.auth.models import User
from datalibrary.auth.passwords import verify_password
from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.errors import NotAuthenticated, TooManyRequests


def normalize_login(name: str) -> str:
    """A login name as the directory compares it: NFKC (fullwidth ``ａlice`` is ``alice``) and
    case folded, so throttling counts one account however its name is typed."""
    return unicodedata.normalize("NFKC", name or "").strip().casefold()


def authenticate(session: Session, settings: Settings, name: str, password: str) -> tuple[User, str]:
    """The user and how the password was proven (the authenticator's ``method``). An account
    asks only the authenticator of its ``source`` (none enabled: refused); a name without an
    account asks each enabled one in order, and the first that proves it wins. What an
    authenticator returns is checked here, so no backend can sign in another source's account
    or a disabled one."""
    candidates = authenticators.chain(settings)
    user = session.scalar(select(User).where(User.name == name))
    if user is not None:
        candidates = [one for one in candidates if one.source == user.source]
    if not candidates:  # a platform account, or LDAP's while LDAP is off: a wrong password's work
        verify_password(None, password)
    refusal = NotAuthenticated(WRONG)
    for authenticator in candidates:
        try:
            found = authenticator.authenticate(session, name, password)
        except NotAuthenticated as exc:
            if "reason" not in refusal.extra:  # the audit log keeps the first cause given
                refusal = exc
            continue
        if found.name != name or found.source != authenticator.source or not found.is_active:
            raise NotAuthenticated(WRONG, reason="wrong-account")
        return found, authenticator.method
    raise refusal


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
