"""Leases in the database: commits hold a table ``shared``, maintenance holds it ``exclusive``.

Each party inserts its row first and then looks for the other kind, so at least one of two
racing parties sees the other (a shared holder backs off from an exclusive one; an exclusive
holder waits for shared holders to finish). Rows expire, so a holder killed with -9 does not
block the lake for longer than its lease.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from datalibrary.db.base import utcnow
from datalibrary.errors import Unavailable
from datalibrary.lake.models import LakeLock

SHARED, EXCLUSIVE = "shared", "exclusive"


def holder_name(what: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{what}"[:200]


def _insert(engine: Engine, resource: str, mode: str, holder: str, ttl: float) -> int:
    with Session(engine) as session:
        now = utcnow()
        session.execute(delete(LakeLock).where(LakeLock.expires_at < now))
        row = LakeLock(
            resource=resource,
            mode=mode,
            holder=holder,
            acquired_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
        session.add(row)
        session.commit()
        return row.id


def _others(engine: Engine, resource: str, mine: int) -> list[LakeLock]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(LakeLock).where(
                    LakeLock.resource == resource, LakeLock.id != mine, LakeLock.expires_at >= utcnow()
                )
            )
        )


def _release(engine: Engine, lock_id: int) -> None:
    with Session(engine) as session:
        session.execute(delete(LakeLock).where(LakeLock.id == lock_id))
        session.commit()


def renew(engine: Engine, lock_id: int, ttl: float) -> None:
    with Session(engine) as session:
        session.execute(
            update(LakeLock)
            .where(LakeLock.id == lock_id)
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
        )
        session.commit()


@contextmanager
def lease(
    engine: Engine, resource: str, mode: str, *, holder: str, ttl: float = 600, timeout: float = 300
) -> Iterator[int]:
    """Hold ``resource`` in ``mode`` for the block; raise ``Unavailable`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        lock_id = _insert(engine, resource, mode, holder, ttl)
        others = _others(engine, resource, lock_id)
        if mode == SHARED:
            blocked = any(o.mode == EXCLUSIVE for o in others)
        else:
            blocked = any(o.mode == EXCLUSIVE and o.id < lock_id for o in others)
        if not blocked and mode == EXCLUSIVE:
            # we own the exclusive claim: new shared holders back off; wait for current ones
            while any(o.mode == SHARED for o in _others(engine, resource, lock_id)):
                if time.monotonic() > deadline:
                    _release(engine, lock_id)
                    raise Unavailable(f"{resource} is busy (a commit is running); try again later")
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
        if not blocked:
            break
        _release(engine, lock_id)
        if time.monotonic() > deadline:
            raise Unavailable(f"{resource} is busy (maintenance is running); try again later")
        time.sleep(delay * (1 + random.random()))  # noqa: S311 - jitter, not security
        delay = min(delay * 1.5, 1.0)
    try:
        yield lock_id
    finally:
        _release(engine, lock_id)
