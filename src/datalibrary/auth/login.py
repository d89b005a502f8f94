"""Console and API sign-in: password check, session issue, audit of every outcome."""

from __future__ import annotations

from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth import service
from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.errors import NotAuthenticated


def password_login(
    session: Session, settings: Settings, name: str, password: str, *, client: str | None
) -> service.IssuedSession:
    try:
        user = service.authenticate_password(session, name, password)
    except NotAuthenticated:
        audit.record_now(
            session,
            actor=name[:64],
            action="auth.login",
            target=f"user:{name[:64]}",
            outcome="failure",
            client=client,
            details={"method": "password"},
        )
        raise
    issued = service.create_session(session, user, settings.auth)
    audit.record(
        session,
        actor=user.name,
        action="auth.login",
        target=f"user:{user.name}",
        client=client,
        details={"method": "password"},
    )
    return issued


def logout(session: Session, principal: Principal, *, client: str | None) -> None:
    if principal.session_id:
        service.end_session(session, principal.session_id)
    audit.record(
        session, actor=principal.name, action="auth.logout", target=f"user:{principal.name}", client=client
    )
