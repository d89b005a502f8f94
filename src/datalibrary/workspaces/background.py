"""The server's background loops: reconcile at start-up and periodically, check idleness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.workspaces import idle, reconcile

log = logging.getLogger(__name__)


async def _every(seconds: float, job, *args) -> None:  # type: ignore[no-untyped-def]
    while True:
        try:
            await job(*args)
        except Exception:
            log.exception("workspace background job %s failed", getattr(job, "__name__", job))
        await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def running(db: Database, settings: Settings) -> AsyncIterator[None]:
    """Run the reconciler (first pass immediately) and the idle stopper while the server runs."""
    tasks = [
        asyncio.create_task(
            _every(settings.workspaces.reconcile_interval_seconds, reconcile.reconcile, db, settings)
        ),
        asyncio.create_task(
            _every(settings.workspaces.idle_check_interval_seconds, idle.check, db, settings)
        ),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
