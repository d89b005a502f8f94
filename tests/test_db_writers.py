"""Several processes writing one database at once: every write lands, none fails on a race."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from sqlalchemy import func, select

from datalibrary.audit import anchors
from datalibrary.audit.models import AuditEvent
from datalibrary.audit.service import record, verify
from datalibrary.db.engine import Database
from tests.helpers import Platform

PROCESSES, EVENTS = 4, 25


def _append_events(url: str, home: str) -> None:
    anchors.register(url, Path(home))  # what the CLI's and server's start does
    database = Database(url)
    for i in range(EVENTS):
        with database.session() as session:  # a fresh transaction each time, as a CLI call has
            record(session, actor="writer", action="test.race", target=str(i))
    database.dispose()


def test_processes_appending_audit_events_at_once_all_land(platform: Platform) -> None:
    """The audit chain reads its tail and then appends: on SQLite a transaction that read first
    used to be refused outright ("database is locked") when another process had committed in
    between; now each one waits its turn, and the chain stays whole."""
    url = platform.settings.connect_url()
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_append_events, args=(url, str(platform.settings.home)))
        for _ in range(PROCESSES)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert [w.exitcode for w in writers] == [0] * PROCESSES
    with platform.db.session() as session:
        assert verify(session).ok
        count = session.scalar(select(func.count()).where(AuditEvent.action == "test.race"))
    assert count == PROCESSES * EVENTS
