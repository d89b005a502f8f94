"""The server's background loops: reconcile at start-up and periodically, check idleness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.workspaces import idle, pool, pool_members, reconcile

log = logging.getLogger(__name__)


Gate = Callable[[str], bool]


def _always(_task: str) -> bool:
    return True


async def _pool_loop(db: Database, settings: Settings, gate: Gate) -> None:
    """Refill the warm pool every interval, or at once when a launch took a member."""
    while True:
        try:
            if gate("workspaces.pool"):
                await pool.refill(db, settings)
        except Exception:
            log.exception("workspace background job refill failed")
        await pool_members.wait(settings.workspaces.warm_pool_interval_seconds)


async def _every(seconds: float, task: str, gate: Gate, job, *args) -> None:  # type: ignore[no-untyped-def]
    """Run ``job`` every ``seconds`` while this replica holds the task's lease (``gate``)."""
    while True:
        try:
            if gate(task):
                await job(*args)
        except Exception:
            log.exception("workspace background job %s failed", getattr(job, "__name__", job))
        await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def running(db: Database, settings: Settings, gate: Gate = _always) -> AsyncIterator[None]:
    """Run the reconciler (first pass immediately), the idle stopper and the warm pool's refill
    while the server runs;
    with several replicas, only where ``gate`` says this replica holds the task's lease."""
    interval = settings.workspaces
    tasks = [
        asyncio.create_task(
            _every(
                interval.reconcile_interval_seconds,
                "workspaces.reconcile",
                gate,
                reconcile.reconcile,
                db,
                settings,
            )
        ),
        asyncio.create_task(
            _every(interval.idle_check_interval_seconds, "workspaces.idle", gate, idle.check, db, settings)
        ),
        asyncio.create_task(_pool_loop(db, settings, gate)),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
