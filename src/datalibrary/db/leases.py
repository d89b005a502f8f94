"""Background tasks that run exactly once across replicas: one lease row per task.

Every server process (replica) runs a ``LeaseKeeper`` thread. Every ``ttl / 3`` seconds it
takes or renews the lease of each background task: an ``UPDATE ... WHERE holder = me OR
expired`` (compare-and-swap; the same statement on SQLite and PostgreSQL), or an ``INSERT``
for a task seen for the first time (the primary key lets one racing replica win). A loop asks
``keeper.owns(task)`` before each round and skips it otherwise. A replica believes it owns a
task only until ``ttl - ttl/4`` after its last successful renewal (monotonic clock), so it
stops before any other replica can take over, even when it cannot reach the database. When a
replica dies (kill -9), its leases expire after ``ttl`` and the next renewal round of a
survivor takes them: failover within ``ttl + ttl/3`` (default 20 s + 7 s). A replica that
stops cleanly releases its leases at once. Clocks of the replicas must agree to well under
``ttl/4`` (NTP).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import String, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow
from datalibrary.db.engine import Database
from datalibrary.errors import Conflict

log = logging.getLogger(__name__)

# The server's background tasks (each runs on exactly one replica at a time).
TASKS = (
    "workspaces.reconcile",
    "workspaces.idle",
    "workspaces.pool",
    "costs.enforce",
    "costs.measure",
    "lineage.forward",
    "lineage.expire_exports",
    "lake.maintenance",
    "ingest.watch_landing",
)


class TaskLease(Base):
    __tablename__ = "task_leases"

    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


def replica_name() -> str:
    """This process among the replicas: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def try_acquire(db: Database, task: str, holder: str, ttl: float) -> bool:
    """Take or renew ``task`` for ``holder``; True when ``holder`` holds it now."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    with db.session() as session:
        current = session.get(TaskLease, task)
        if current is None:
            try:
                with session.begin_nested():
                    session.execute(
                        insert(TaskLease).values(
                            task=task, holder=holder, acquired_at=now, expires_at=expires
                        )
                    )
                return True
            except IntegrityError:
                return False
        if current.holder != holder and current.expires_at > now:
            return False
        values = {"holder": holder, "expires_at": expires}
        if current.holder != holder:
            values["acquired_at"] = now
        done = session.execute(
            update(TaskLease)
            .where(
                TaskLease.task == task,
                (TaskLease.holder == holder) | (TaskLease.expires_at <= now),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return done.rowcount == 1


def release(db: Database, holder: str, tasks: Iterable[str]) -> None:
    with db.session() as session:
        session.execute(delete(TaskLease).where(TaskLease.holder == holder, TaskLease.task.in_(list(tasks))))


def holders(db: Database) -> list[dict[str, object]]:
    """Every task's lease: who runs it and until when (expired rows say nobody does)."""
    now = utcnow()
    with db.session() as session:
        rows = session.scalars(select(TaskLease).order_by(TaskLease.task)).all()
        return [
            {
                "task": row.task,
                "holder": row.holder,
                "acquired_at": row.acquired_at.isoformat(),
                "expires_at": row.expires_at.isoformat(),
                "live": row.expires_at > now,
            }
            for row in rows
        ]


class LeaseKeeper:
    """Keeps this replica's task leases; loops ask ``owns(task)`` before each round."""

    def __init__(self, db: Database, ttl: float, tasks: Iterable[str] = TASKS, holder: str | None = None):
        self.db, self.ttl, self.tasks = db, ttl, tuple(tasks)
        self.holder = holder or replica_name()
        self._valid_until: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
        self._lock = threading.Lock()

    def owns(self, task: str) -> bool:
        with self._lock:
            return time.monotonic() < self._valid_until.get(task, 0.0)

    def round(self) -> None:
        """Take or renew every task once (one pass of the keeper thread)."""
        for task in self.tasks:
            started = time.monotonic()
            try:
                mine = try_acquire(self.db, task, self.holder, self.ttl)
            except Exception as exc:  # database unreachable: keep believing only until validity ends
                log.warning("lease renewal of %s failed: %s", task, type(exc).__name__)
                continue
            with self._lock:
                had = time.monotonic() < self._valid_until.get(task, 0.0)
                self._valid_until[task] = started + self.ttl * 0.75 if mine else 0.0
            if mine and not had:
                log.info("background task %s now runs on this replica (%s)", task, self.holder)
            elif had and not mine:
                log.warning("background task %s moved to another replica", task)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self.ttl / 3)

    def start(self) -> LeaseKeeper:
        self.round()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            self._valid_until.clear()
        try:
            release(self.db, self.holder, self.tasks)
        except Exception:  # the leases then expire on their own
            log.warning("could not release background task leases; they expire in %.0f s", self.ttl)


class SqliteServerLock:
    """SQLite serves one replica: an OS lock next to the database file, held while the server
    runs (released by the kernel even after kill -9), refuses a second server."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.path = Path(str(make_url(database_url).database) + ".server.lock")
        self._fd: int | None = None

    def acquire(self) -> SqliteServerLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Conflict(
                f"another DataLibrary server (process {other}) already serves this SQLite database "
                f"({self.path.with_suffix('')}): SQLite supports one server. To run several replicas, "
                "use PostgreSQL (DATALIBRARY_DATABASE_URL=postgresql://...; "
                "docs/how-to/high-availability.md)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()}:{os.getpid()}".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
