"""Lineage graph latency at 100,000 events.

Inserts N OpenLineage events (default 100,000: 5 % ingestions, 80 % queries, 10 % downloads,
5 % exports over 1,000 datasets and 200 users; one "hot" dataset is read by 10 % of all
events) with their edges, then times the dataset lineage endpoint
(``GET /api/v1/lineage/datasets/{name}``) in-process over the real app, for the hot dataset
and for a typical one, and the user endpoint. The baseline, measured in the same run, is
``GET /api/v1/me`` (authentication + one small query): the ratios say what the lineage
lookups add. Payloads are real events built with ``lineage.service.emit``'s types (one per
kind, reused), inserted in bulk so that loading 100k events takes seconds.

Run: ``.venv/bin/python benchmarks/lineage.py [--events N] [--calls N] [--database-url URL]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from datalibrary.app import create_app
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.bootstrap import initialize
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.lineage.models import LineageEdge, LineageEvent
from datalibrary.lineage.service import DatasetRef, RunState, emit, new_run_id

KINDS = [("ingest", 0.05), ("query", 0.80), ("download", 0.10), ("export", 0.05)]
HOT = "study.hot"


def sample_payloads(db: Database) -> dict[str, dict]:
    """One real payload per kind (built and serialized by the emit path), then removed."""
    payloads = {}
    with db.session() as session:
        for kind, _ in KINDS:
            stored = emit(
                session,
                event_type=RunState.COMPLETE,
                run_id=new_run_id(),
                job_name=kind,
                user="u",
                project="p",
                inputs=[DatasetRef("ns.t")],
                via="api",
            )
            payloads[kind] = stored.payload
        session.rollback()
    return payloads


def load(db: Database, events: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    payloads = sample_payloads(db)
    datasets = [f"ns{i % 20}.t{i}" for i in range(1000)]
    users = [f"user{i}" for i in range(200)]
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    start = utcnow() - timedelta(days=365)
    batch = 5000
    next_id = 1
    with db.engine.begin() as conn:
        for offset in range(0, events, batch):
            rows, edges = [], []
            for i in range(offset, min(offset + batch, events)):
                kind = rng.choices(kinds, weights)[0]
                at = start + timedelta(seconds=i * 300)
                user = rng.choice(users)
                event_type = "START" if i % 2 == 0 else "COMPLETE"
                rows.append(
                    {
                        "id": next_id,
                        "event_time": at,
                        "event_type": event_type,
                        "run_id": new_run_id(),
                        "job_namespace": "datalibrary",
                        "job_name": kind,
                        "user": user,
                        "project": "p",
                        "payload": payloads[kind],
                    }
                )
                touched = [HOT] if rng.random() < 0.10 else [rng.choice(datasets)]
                if rng.random() < 0.3:
                    touched.append(rng.choice(datasets))
                direction = "output" if kind == "ingest" else "input"
                for name in touched:
                    edges.append(
                        {
                            "event_id": next_id,
                            "direction": direction,
                            "dataset_namespace": "datalibrary",
                            "dataset_name": name,
                            "event_time": at,
                            "event_type": event_type,
                            "job_name": kind,
                            "user": user,
                            "rows": rng.randint(1, 10_000),
                            "bytes": rng.randint(1, 10**8),
                        }
                    )
                next_id += 1
            conn.execute(insert(LineageEvent), rows)
            conn.execute(insert(LineageEdge), edges)


def timed(client: TestClient, path: str, calls: int) -> tuple[float, float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument(
        "--database-url", default=None, help="default: a SQLite file in a temporary directory"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(home=Path(tmp), database_url=url)
        db = Database(url)
        initialize(settings, db)
        settings = Settings(home=Path(tmp), database_url=url)
        with db.session() as session:
            auth_service.create_user(session, Principal.system("bench"), "audrey", roles={"auditor"})
            token = auth_service.create_token(
                session, Principal.system("bench"), "audrey", name="bench"
            ).secret
        started = time.perf_counter()
        load(db, args.events)
        loaded = time.perf_counter() - started
        if db.engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE lineage_events")
                conn.exec_driver_sql("ANALYZE lineage_edges")
        with db.session() as session:
            total = session.scalar(select(func.count()).select_from(LineageEvent))
            hot = session.scalar(select(func.count()).where(LineageEdge.dataset_name == HOT))
        client = TestClient(create_app(settings, db), headers={"Authorization": f"Bearer {token}"})
        client.get("/api/v1/me")  # warm up
        print(f"{total} events loaded in {loaded:.1f} s ({url.split(':')[0]}); {hot} edges on {HOT}")
        base = timed(client, "/api/v1/me", args.calls)
        cases = {
            "baseline GET /api/v1/me": base,
            f"dataset lineage, hot ({HOT})": timed(client, f"/api/v1/lineage/datasets/{HOT}", args.calls),
            "dataset lineage, typical (ns3.t3)": timed(client, "/api/v1/lineage/datasets/ns3.t3", args.calls),
            "user lineage (user7)": timed(client, "/api/v1/lineage/users/user7", args.calls),
        }
        print(f"{'case':40} {'median ms':>10} {'p95 ms':>8} {'x baseline':>11}")
        for name, (median, p95) in cases.items():
            print(f"{name:40} {median:10.1f} {p95:8.1f} {median / base[0]:11.1f}")
        db.dispose()


if __name__ == "__main__":
    main()
