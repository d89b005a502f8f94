"""Cost engine speed: a month's report against reading the same rows (the floor), same run.

    .venv/bin/python benchmarks/costs.py [--users 200] [--intervals 20] [--queries 100]

Builds a month of usage in a fresh SQLite database (users x workspace intervals crossing days,
users x queries, a dataset measurement per user per day), then times ``costs.service.report``
(every line computed, cut at days and price changes, summed exactly) against a plain SELECT
of the same rows. Prints both and the ratio; tests never assert times."""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.bootstrap import initialize
from datalibrary.config import Settings
from datalibrary.costs import pricebook, service
from datalibrary.costs.models import StorageMeasurement
from datalibrary.db import Database
from datalibrary.query.models import QueryRecord
from datalibrary.workspaces.models import Workspace, WorkspaceUsage

SYSTEM = Principal.system("bench")
START = datetime(2026, 3, 1, tzinfo=UTC)


def build(db: Database, settings: Settings, users: int, intervals: int, queries: int) -> None:
    with db.session() as session:
        pricebook.ensure_seeded(session, settings)
        pricebook.add_version(session, SYSTEM, settings, {"query_per_tb": "6"},
                              effective_from=START + timedelta(days=15), now=START)  # fmt: skip
        for u in range(users):
            user = auth_service.create_user(
                session, SYSTEM, f"user{u}", roles={"scientist"}, password="Bench-Passw0rd-2026"
            )
            w = Workspace(owner_id=user.id, project="p", product="python-notebook",
                          instance_type="m5.large", environment="python", provisioner="process",
                          state="stopped", provisioner_state={})  # fmt: skip
            session.add(w)
            session.flush()
            rows = []
            for i in range(intervals):
                a = START + timedelta(hours=i * 36 + u % 7)
                rows.append({"workspace_id": w.id, "user_id": user.id, "project": "p",
                             "instance_type": "m5.large", "state": "running" if i % 2 == 0 else "stopped",
                             "started_at": a, "ended_at": a + timedelta(hours=30)})  # fmt: skip
            session.execute(insert(WorkspaceUsage), rows)
            session.execute(insert(QueryRecord), [
                {"run_id": f"{u}-{q}", "user": f"user{u}", "project": "p", "sql": "SELECT 1", "tables": [],
                 "bytes_scanned": 10**9 * (q + 1), "rows_returned": 0, "duration_ms": 0, "outcome": "success",
                 "started_at": START + timedelta(minutes=400 * q + u), "finished_at": None}
                for q in range(queries)
            ])  # fmt: skip
            session.execute(insert(StorageMeasurement), [
                {"kind": "dataset", "resource": f"ns.t{u}", "day": date(2026, 3, d), "user": f"user{u}",
                 "project": "p", "bytes": 10**10, "measured_at": START}
                for d in range(1, 32)
            ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--intervals", type=int, default=20)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home")
        db = Database(settings.connect_url())
        initialize(settings, db)
        settings = Settings(home=Path(tmp) / "home")
        build(db, settings, args.users, args.intervals, args.queries)
        with db.session() as session:
            t0 = time.perf_counter()
            n = sum(
                len(session.execute(select(m)).all())
                for m in (WorkspaceUsage, QueryRecord, StorageMeasurement)
            )
            floor = time.perf_counter() - t0
        with db.session() as session:
            t0 = time.perf_counter()
            report = service.report(session, SYSTEM, settings, by="user", start=date(2026, 3, 1),
                                    end=date(2026, 3, 31), now=datetime(2026, 4, 2, tzinfo=UTC))  # fmt: skip
            engine = time.perf_counter() - t0
        db.dispose()
    print(f"records: {n}, cost lines: {len(report.lines)}, total {report.total} {report.currency}")
    print(f"floor (SELECT the rows): {floor:.3f} s")
    print(f"month report by user:    {engine:.3f} s  ({engine / floor:.1f} x floor)")


if __name__ == "__main__":
    main()
