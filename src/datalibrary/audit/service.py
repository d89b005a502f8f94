"""Record and verify audit events.

Each event hashes its own content together with the previous event's hash. ``prev_hash`` is
unique, so two writers racing for the same tail cannot fork the chain: the loser retries.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datalibrary.audit.models import AuditEvent
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.db.base import utcnow
from datalibrary.logs import request_id_var

GENESIS = "0" * 64
SECRET_WORDS = ("password", "secret", "token", "key", "credential", "authorization", "cookie")
OUTCOMES = ("success", "failure", "denied")


def _scrub(details: Mapping[str, Any]) -> dict[str, Any]:
    """Drop values whose key names a secret; audit details must never carry one."""
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if any(word in key.lower() for word in SECRET_WORDS):
            clean[key] = "[redacted]"
        elif isinstance(value, Mapping):
            clean[key] = _scrub(value)
        else:
            clean[key] = value
    return clean


def event_hash(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    client: str | None,
    request_id: str | None,
    details: Mapping[str, Any],
) -> str:
    payload = json.dumps(
        [prev_hash, at.isoformat(), actor, action, target, outcome, client, request_id, details],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _tail_hash(session: Session) -> str:
    last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    return last or GENESIS


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    outcome: str = "success",
    details: Mapping[str, Any] | None = None,
    client: str | None = None,
    attempts: int = 60,
) -> AuditEvent:
    """Append one event inside the caller's transaction (a savepoint, retried on a race
    for the chain's tail with a jittered backoff so busy writers spread out)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be one of {OUTCOMES}, not {outcome!r}")
    clean = _scrub(details or {})
    request_id = request_id_var.get()
    for attempt in range(attempts):
        at = utcnow().replace(microsecond=utcnow().microsecond // 1000 * 1000)
        try:
            with session.begin_nested():
                prev = _tail_hash(session)
                event = AuditEvent(
                    at=at,
                    actor=actor,
                    action=action,
                    target=target,
                    outcome=outcome,
                    client=client,
                    request_id=request_id,
                    details=clean,
                    prev_hash=prev,
                    hash=event_hash(prev, at, actor, action, target, outcome, client, request_id, clean),
                )
                session.add(event)
                session.flush()
            return event
        except IntegrityError:
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))  # noqa: S311 - jitter, not crypto
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    broken_id: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok, "entries": self.entries}
        if not self.ok:
            data["first_broken"] = {"id": self.broken_id, "reason": self.reason}
        return data


def verify(session: Session) -> Verification:
    """Walk the chain in order; report the first entry whose content or link was altered."""
    prev = GENESIS
    count = 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().yield_per(1000)
    for event in rows:
        count += 1
        if event.prev_hash != prev:
            return Verification(False, count, event.id, "link to previous entry broken")
        expected = event_hash(
            event.prev_hash,
            event.at,
            event.actor,
            event.action,
            event.target,
            event.outcome,
            event.client,
            event.request_id,
            event.details,
        )
        if expected != event.hash:
            return Verification(False, count, event.id, "content does not match its hash")
        prev = event.hash
    return Verification(True, count)


def verify_as(session: Session, principal: Principal) -> Verification:
    require(principal, Permission.AUDIT_READ)
    return verify(session)


def search(
    session: Session,
    principal: Principal,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """Events newest first; ``action`` and ``target`` match as prefixes (``user.`` finds all)."""
    require(principal, Permission.AUDIT_READ)
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if target:
        query = query.where(AuditEvent.target.startswith(target, autoescape=True))
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    query = query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def record_now(session: Session, **event: Any) -> None:
    """Record in a transaction of its own: for failures and denials, which the caller's
    transaction will roll back but the audit log must keep. (On SQLite the caller must not
    hold flushed writes: the second connection would wait for its lock.)"""
    with Session(session.get_bind()) as own:
        record(own, **event)
        own.commit()
