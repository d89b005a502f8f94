"""Brute-force protection: failed sign-ins counted per account and per client address in the
database (so every replica agrees), with a temporary lockout that is audited.

Keys are stored as SHA-256 of ``kind:value``: people type passwords into the user name
field, and this table must not keep them in clear.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.models import LoginThrottle
from datalibrary.config import AuthSettings
from datalibrary.db.base import utcnow
from datalibrary.errors import TooManyRequests

ACCOUNT = "account"
CLIENT = "client"


def _key(kind: str, value: str) -> str:
    folded = unicodedata.normalize("NFKC", value).strip().casefold()
    return hashlib.sha256(f"{kind}:{folded}".encode()).hexdigest()


def _keys(name: str, client: str | None) -> list[tuple[str, str]]:
    keys = [(ACCOUNT, _key(ACCOUNT, name))]
    if client:
        keys.append((CLIENT, _key(CLIENT, client)))
    return keys


def check(session: Session, name: str, client: str | None) -> None:
    """Raise TooManyRequests while the account or the client address is locked out."""
    now = utcnow()
    for kind, key in _keys(name, client):
        row = session.get(LoginThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            seconds = math.ceil((row.locked_until - now).total_seconds())
            subject = "for this account" if kind == ACCOUNT else "from your network address"
            raise TooManyRequests(
                f"too many failed sign-ins {subject}; try again in {math.ceil(seconds / 60)} minute(s)",
                retry_after=seconds,
            )


def _limit(kind: str, settings: AuthSettings) -> int:
    return settings.lockout_account_failures if kind == ACCOUNT else settings.lockout_client_failures


def record_failure(session: Session, settings: AuthSettings, name: str, client: str | None) -> None:
    """Count one failure in a transaction of its own (the caller's is rolled back); lock out and
    audit ``auth.lockout`` when a limit is reached within the window."""
    for attempt in range(3):
        try:
            with Session(session.get_bind()) as own:
                _count(own, settings, name, client)
                own.commit()
            return
        except IntegrityError:  # another replica inserted the same key first: count again
            if attempt == 2:
                raise


def _count(own: Session, settings: AuthSettings, name: str, client: str | None) -> None:
    now = utcnow()
    window = timedelta(minutes=settings.lockout_window_minutes)
    for kind, key in _keys(name, client):
        row = own.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())
        if row is None:
            row = LoginThrottle(key=key, kind=kind, failures=0, window_started_at=now)
            own.add(row)
        if now - row.window_started_at > window:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= _limit(kind, settings):
            row.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            row.failures = 0
            row.window_started_at = now
            audit.record(
                own,
                actor=name[:64] if kind == ACCOUNT else "anonymous",
                action="auth.lockout",
                target=f"user:{name[:64]}" if kind == ACCOUNT else f"client:{client}",
                outcome="denied",
                client=client,
                details={"scope": kind, "minutes": settings.lockout_minutes},
            )
        own.flush()


def clear_account(session: Session, name: str) -> None:
    """Forget an account's failures after a successful sign-in (the client's count remains)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == _key(ACCOUNT, name)))


def unlock(session: Session, name: str) -> bool:
    """Lift an account's lockout (admins, e.g. ``datalibrary users enable``)."""
    result = session.execute(delete(LoginThrottle).where(LoginThrottle.key == _key(ACCOUNT, name)))
    return bool(result.rowcount)  # type: ignore[attr-defined]
