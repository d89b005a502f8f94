"""Identity benchmarks, as ratios against baselines measured in the same run.

1. Resolving an API token into a ``Principal`` for a user in 10 groups and 5 projects,
   against a user in none: the cost of effective roles on every request.
2. Exporting audit events as spreadsheet-safe CSV, against a plain ``csv.writer`` over the
   same rows fetched with a bare SELECT: the cost of the ORM and of neutralizing cells.

Run: ``.venv/bin/python benchmarks/bench_identity.py [--events N]``
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select

from datalibrary.audit import export
from datalibrary.audit import service as audit
from datalibrary.audit.models import AuditEvent
from datalibrary.auth import groups, projects, service
from datalibrary.auth.permissions import Principal
from datalibrary.db import Database, upgrade
from datalibrary.db.base import utcnow

SYSTEM = Principal.system("bench")


def best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_principal(db: Database, calls: int) -> None:
    with db.session() as session:
        service.create_user(session, SYSTEM, "plain", roles={"scientist"})
        service.create_user(session, SYSTEM, "busy", roles={"scientist"})
        for i in range(10):
            groups.create_group(session, SYSTEM, f"group{i}", roles={"steward"} if i % 2 else {"auditor"})
            groups.add_member(session, SYSTEM, f"group{i}", "busy")
        for i in range(5):
            projects.create_project(session, SYSTEM, f"project{i}")
            projects.add_member(session, SYSTEM, f"project{i}", "busy", default=i == 0)
        plain = service.create_token(session, SYSTEM, "plain").secret
        busy = service.create_token(session, SYSTEM, "busy").secret

    def resolve(secret: str) -> None:
        for _ in range(calls):
            with db.session() as session:
                service.principal_from_token(session, secret)

    base = best_of(3, lambda: resolve(plain))
    measured = best_of(3, lambda: resolve(busy))
    print(f"principal from token, no groups:         {base / calls * 1e3:.3f} ms/request (baseline)")
    print(f"principal from token, 10 groups + 5 proj: {measured / calls * 1e3:.3f} ms/request")
    print(f"  ratio: {measured / base:.2f}x")


def bench_export(db: Database, events: int) -> None:
    with db.session() as session:
        audit.record(session, actor="bench", action="bench.start")
        now = utcnow()
        rows = [
            {
                "at": now,
                "actor": f"user{i % 50}",
                "action": "query.run" if i % 3 else "=cmd|' /C calc'!A0",
                "target": f"table:t{i % 20}",
                "outcome": "success",
                "client": "127.0.0.1",
                "request_id": f"req{i}",
                "details": {"rows": i},
                "prev_hash": f"b{i:063d}",
                "hash": f"c{i:063d}",
            }
            for i in range(events)
        ]
        session.execute(insert(AuditEvent), rows)  # bulk: the chain itself is not under test here

    def baseline() -> None:
        with db.session() as session:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in session.execute(select(AuditEvent.__table__)):
                writer.writerow(row)

    def measured() -> None:
        with db.session() as session:
            found = audit.search(session, SYSTEM, limit=events + 1)
            "".join(export.csv_lines(found))

    base = best_of(3, baseline)
    took = best_of(3, measured)
    print(f"audit CSV, plain SELECT + csv.writer:   {events / base:,.0f} events/s (baseline)")
    print(f"audit CSV, search + neutralized export: {events / took:,.0f} events/s")
    print(f"  ratio: {took / base:.2f}x slower")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(db.engine)
        bench_principal(db, args.calls)
        bench_export(db, args.events)
        db.dispose()


if __name__ == "__main__":
    main()
