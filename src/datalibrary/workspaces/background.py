"""The server's background loops: reconcile at start-up and periodically, check idleness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.workspaces import idle, reconcile

log = logging.getLogger(__name__)


Gate = Callable[[str], bool]


def _always(_task: str) -> bool:
    return True


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
    """Run the reconciler (first pass immediately) and the idle stopper while the server runs;
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
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
