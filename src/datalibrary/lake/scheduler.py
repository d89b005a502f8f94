"""Daily maintenance run by the server. Several replicas may run this loop: the last run's
time in the database and an exclusive lease decide which one works; per-table leases keep it
away from running commits."""

from __future__ import annotations

import logging
from datetime import timedelta

from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.errors import Unavailable
from datalibrary.lake import locks
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.maintenance import last_run, maintain

log = logging.getLogger(__name__)
SCHEDULER = Principal.system("scheduler")


def maintenance_due(settings: Settings, db: Database) -> bool:
    with db.session() as session:
        run = last_run(session)
    return run is None or utcnow() - run.started_at >= timedelta(hours=settings.lake.maintain_every_hours)


def run_if_due(settings: Settings, db: Database) -> dict | None:  # type: ignore[type-arg]
    """Run maintenance when the last run is older than ``lake.maintain_every_hours``."""
    if not maintenance_due(settings, db):
        return None
    try:
        with locks.lease(
            db.engine,
            "scheduler:maintain",
            locks.EXCLUSIVE,
            holder=locks.holder_name("scheduler"),
            ttl=6 * 3600,
            timeout=1,
        ):
            if not maintenance_due(settings, db):
                return None
            with db.session() as session:
                return maintain(session, SCHEDULER, open_lake(settings))
    except Unavailable:
        return None  # another replica is on it
