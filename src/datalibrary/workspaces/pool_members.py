"""Who is a warm-pool member, and the pool's wake-up call: what a launch (``service``) and an
administrator's access (``access``) need of the warm pool (``pool``). Apart from the pool
because the pool itself drives ``service``: neither imports the other's caller."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datalibrary.auth.models import User
from datalibrary.workspaces.models import Workspace

ACCOUNT = "system:warm-pool"  # not a valid user name, so no person can ever hold it
STATE = "pooled"
_wake: asyncio.Event | None = None
_loop: asyncio.AbstractEventLoop | None = None


def account_id(session: Session, create: bool = True) -> int | None:
    """The pool account's user id (made on first use; disabled, no password)."""
    found = session.scalar(select(User.id).where(User.name == ACCOUNT))
    if found is not None or not create:
        return found
    try:
        with session.begin_nested():
            user = User(
                name=ACCOUNT, display_name="Warm pool (platform cost)", source="system", is_active=False
            )
            session.add(user)
            session.flush()
            return user.id
    except IntegrityError:  # another replica made it meanwhile
        return session.scalar(select(User.id).where(User.name == ACCOUNT))


def is_member(session: Session, workspace: Workspace) -> bool:
    return workspace.owner_id == account_id(session, create=False)


def wake() -> None:
    """Refill soon (a launch just took a member); callable from any thread."""
    if _wake is not None and _loop is not None and not _loop.is_closed():
        _loop.call_soon_threadsafe(_wake.set)


async def wait(seconds: float) -> None:
    """Sleep until the next round: ``seconds`` or an earlier ``wake``."""
    global _wake, _loop
    if _wake is None or _loop is not asyncio.get_running_loop():
        _wake, _loop = asyncio.Event(), asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_wake.wait(), seconds)
    _wake.clear()
