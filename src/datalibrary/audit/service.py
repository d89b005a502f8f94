"""Record and verify audit events.

Each event hashes its own content together with the previous event's hash: an HMAC with the
chain key kept outside the database (``audit.anchors``), so an entry cannot be rewritten and
the chain recomputed by someone who only reaches the database. ``prev_hash`` is unique, so
two writers racing for the same tail cannot fork the chain: the loser retries. After each
commit that added entries the head is written outside the database, so deleting the newest
entries is detected too; periodic anchors add the entry count.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datalibrary.audit import anchors
from datalibrary.audit.models import AuditEvent
from datalibrary.auth.permissions import Actor, Permission, Principal, require
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
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 with the chain key; plain SHA-256 only without one (legacy entries)."""
    payload = json.dumps(
        [prev_hash, at.isoformat(), actor, action, target, outcome, client, request_id, details],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()
    if key is None:
        return hashlib.sha256(payload).hexdigest()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _track_head(session: Session, ring: anchors.Keyring, added: AuditEvent) -> None:
    """Write the head outside the database once the entry's transaction commits."""
    pending = session.info.setdefault("audit_head", {})
    if not pending.get("id") or added.id > pending["id"]:
        pending.update(id=added.id, hash=added.hash, ring=ring)
    if session.info.get("audit_listening"):
        return
    session.info["audit_listening"] = True

    def committed(done: Session) -> None:
        head = done.info.pop("audit_head", None)
        if head and head.get("id"):
            try:
                anchors.write_head(head["ring"], head["id"], head["hash"])
            except OSError:
                anchors.log.warning("could not write the audit head anchor", exc_info=True)

    def rolled_back(done: Session) -> None:
        done.info.pop("audit_head", None)

    orm_event.listen(session, "after_commit", committed)
    orm_event.listen(session, "after_rollback", rolled_back)


def _tail_hash(session: Session) -> str:
    last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    return last or GENESIS


def _actor(actor: str | Actor | Principal, details: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The actor's name and the details naming its client and on whose behalf it acted (a
    caller's own ``via`` stays: repositories say which Git client pushed)."""
    if isinstance(actor, str):
        return actor, dict(details or {})
    who = actor.actor if isinstance(actor, Principal) else actor
    return who.name, {**who.details(), **(details or {})}


def record(
    session: Session,
    *,
    actor: str | Actor | Principal,
    action: str,
    target: str = "",
    outcome: str = "success",
    details: Mapping[str, Any] | None = None,
    client: str | None = None,
    attempts: int = 60,
) -> AuditEvent:
    """Append one event inside the caller's transaction (a savepoint, retried on a race
    for the chain's tail with a jittered backoff so busy writers spread out).

    Pass the ``Principal`` as ``actor``: the entry then names who acted (the operator when
    the CLI acts ``--as`` a user), on whose behalf, and the client (``details.via``)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be one of {OUTCOMES}, not {outcome!r}")
    actor, details = _actor(actor, details)
    clean = _scrub(details)
    request_id = request_id_var.get()
    ring = anchors.keyring_for(session.get_bind())
    key = ring.key if ring else None
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
                    hash=event_hash(prev, at, actor, action, target, outcome, client, request_id, clean, key),
                )
                session.add(event)
                session.flush()
            if ring is not None:
                _track_head(session, ring, event)
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
    anchors: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok, "entries": self.entries}
        if self.anchors is not None:
            data["anchors"] = self.anchors
        if not self.ok:
            data["first_broken"] = {"id": self.broken_id, "reason": self.reason}
        return data


def _fields(event: AuditEvent) -> tuple[Any, ...]:
    return (
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


def verify(session: Session) -> Verification:
    """Walk the chain in order; report the first entry whose content or link was altered, and
    check the anchors kept outside the database (head and periodic counts): a chain cut short,
    reordered or recomputed without the key does not verify."""
    ring = anchors.keyring_for(session.get_bind())
    key = ring.key if ring else None
    prev = GENESIS
    count = 0
    legacy = 0
    keyed_seen = False
    seen: dict[int, tuple[int, str]] = {}
    wanted = _anchor_ids(ring)
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().yield_per(1000)
    for event in rows:
        count += 1
        if event.prev_hash != prev:
            return Verification(False, count, event.id, "link to previous entry broken")
        if event.hash != event_hash(*_fields(event), key):
            plain = key is not None and event.hash == event_hash(*_fields(event))
            if not plain or keyed_seen:
                reason = "content does not match its hash"
                if plain:
                    reason += " (recomputed without the chain key)"
                return Verification(False, count, event.id, reason)
            legacy += 1  # written before the chain was keyed: covered by the first keyed entry
        else:
            keyed_seen = keyed_seen or key is not None
        if event.id in wanted:
            seen[event.id] = (count, event.hash)
        prev = event.hash
    if ring is None:
        return Verification(True, count)
    return _check_anchors(ring, count, seen, legacy)


def _anchor_ids(ring: anchors.Keyring | None) -> set[int]:
    if ring is None:
        return set()
    ids = {int(a["id"]) for a in anchors.read_anchors(ring)}
    head = anchors.read_head(ring)
    if head:
        ids.add(int(head["id"]))
    return ids


def _check_anchors(
    ring: anchors.Keyring, count: int, seen: dict[int, tuple[int, str]], legacy: int
) -> Verification:
    head = anchors.read_head(ring)
    periodic = anchors.read_anchors(ring)
    summary: dict[str, Any] = {
        "keyed": True,
        "legacy_entries": legacy,
        "head": {"id": head["id"], "hash": head["hash"]} if head else None,
        "anchors_checked": len(periodic),
        "last_anchor": {k: periodic[-1][k] for k in ("at", "count", "id", "hash")} if periodic else None,
    }
    if head is not None:
        if head.get("mac") != ring.mac(f"head:{head['id']}:{head['hash']}"):
            return Verification(False, count, head["id"], "the head anchor was altered", summary)
        found = seen.get(int(head["id"]))
        if found is None:
            return Verification(
                False,
                count,
                head["id"],
                "the chain was truncated: the anchored head entry is missing",
                summary,
            )
        if found[1] != head["hash"]:
            return Verification(False, count, head["id"], "the anchored head entry was rewritten", summary)
    for anchor in periodic:
        text = f"anchor:{anchor['count']}:{anchor['id']}:{anchor['hash']}:{anchor['at']}"
        if anchor.get("mac") != ring.mac(text):
            return Verification(False, count, anchor["id"], "an anchor line was altered", summary)
        found = seen.get(int(anchor["id"]))
        if found is None:
            return Verification(
                False, count, anchor["id"], "the chain was truncated: an anchored entry is missing", summary
            )
        if found != (int(anchor["count"]), anchor["hash"]):
            return Verification(
                False,
                count,
                anchor["id"],
                f"the anchor of {anchor['at']} says {anchor['count']} entries up to this one; "
                f"the chain has {found[0]}: entries were removed or reordered",
                summary,
            )
    return Verification(True, count, anchors=summary)


def anchor(session: Session) -> dict[str, Any] | None:
    """Append a periodic anchor (entry count and head) outside the database; None when the
    database has no state dir known, or the head did not move since the last anchor."""
    ring = anchors.keyring_for(session.get_bind())
    if ring is None:
        return None
    last = session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    if last is None:
        return None
    previous = anchors.read_anchors(ring)
    if previous and int(previous[-1]["id"]) == last.id:
        return previous[-1]
    count = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.id <= last.id)) or 0
    return anchors.append_anchor(ring, int(count), last.id, last.hash, utcnow().isoformat())


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
    on_behalf_of: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEvent]:
    """Events newest first; ``action`` and ``target`` match as prefixes (``user.`` finds all);
    ``on_behalf_of``: what someone else (the operator's CLI, ``--as``) did with that user's rights."""
    require(principal, Permission.AUDIT_READ)
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if on_behalf_of:
        query = query.where(AuditEvent.details["on_behalf_of"].as_string() == on_behalf_of)
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
