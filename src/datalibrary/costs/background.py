"""The server's cost loops: the budget enforcer and the daily storage measurement."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from datalibrary.config import Settings
from datalibrary.costs import enforcer, storage
from datalibrary.db import Database
from datalibrary.db.base import utcnow

log = logging.getLogger(__name__)


async def measure_today(db: Database, settings: Settings) -> None:
    """Measure storage once per UTC day (the first pass after midnight does it)."""

    def run() -> None:
        with db.session() as session:
            if not storage.measured(session, utcnow().date()):
                storage.measure(session, settings)

    await asyncio.to_thread(run)


def _always(_task: str) -> bool:
    return True


async def _every(seconds: float, task: str, gate: Callable[[str], bool], job, *args) -> None:  # type: ignore[no-untyped-def]
    while True:
        try:
            if gate(task):
                await job(*args)
        except Exception:
            log.exception("cost background job %s failed", getattr(job, "__name__", job))
        await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def running(
    db: Database, settings: Settings, gate: Callable[[str], bool] = _always
) -> AsyncIterator[None]:
    """With several replicas each loop runs only where ``gate`` says this one holds its lease."""
    costs = settings.costs
    tasks = [
        asyncio.create_task(
            _every(costs.enforce_interval_seconds, "costs.enforce", gate, enforcer.enforce, db, settings)
        ),
        asyncio.create_task(
            _every(costs.measure_interval_seconds, "costs.measure", gate, measure_today, db, settings)
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
