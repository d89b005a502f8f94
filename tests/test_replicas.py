"""Several replicas on one database: every background task runs on exactly one replica and
moves to a survivor within 30 s when its replica dies; SQLite refuses a second server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from datalibrary.db import Database
from datalibrary.db.leases import TASKS, LeaseKeeper, holders
from tests.replica_helpers import Replica, cli, shared_env


def test_each_task_has_one_owner_and_moves_when_its_replica_dies(database_url: str) -> None:
    db = Database(database_url)
    ttl = 2.0
    first = LeaseKeeper(db, ttl, holder="replica-a").start()
    second = LeaseKeeper(db, ttl, holder="replica-b").start()
    try:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # never two owners, always one after start
            for task in TASKS:
                assert not (first.owns(task) and second.owns(task)), task
            time.sleep(0.05)
        assert all(first.owns(t) for t in TASKS)  # the first keeper took everything
        assert {row["holder"] for row in holders(db)} == {"replica-a"}
        # replica a dies without releasing (its thread stops, its rows stay)
        first._stop.set()
        first._thread.join(5)
        died = time.monotonic()
        while not all(second.owns(t) for t in TASKS):
            assert time.monotonic() - died < ttl + ttl / 3 + 2, "failover took too long"
            time.sleep(0.05)
        # a dead replica's process would stop believing it owns anything before b takes over
        assert not any(first.owns(t) for t in TASKS)
        assert {row["holder"] for row in holders(db) if row["live"]} == {"replica-b"}
        # a clean stop releases at once: a new keeper takes over on its first round
        second.stop()
        third = LeaseKeeper(db, ttl, holder="replica-c").start()
        assert all(third.owns(t) for t in TASKS)
        third.stop()
    finally:
        first.stop()
        second.stop()
        db.dispose()


def test_background_loops_skip_rounds_they_do_not_own(sqlite_platform) -> None:  # type: ignore[no-untyped-def]
    """The hook: a loop whose gate says no does not run its job."""
    import asyncio

    from datalibrary.workspaces import background

    ran: list[str] = []

    async def job() -> None:
        ran.append("x")

    async def drive(gate) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(background._every(0.01, "workspaces.reconcile", gate, job))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(drive(lambda _task: False))
    assert ran == []
    asyncio.run(drive(lambda task: task == "workspaces.reconcile"))
    assert ran


@pytest.mark.timeout(900)
def test_up_refuses_a_second_replica_on_sqlite(tmp_path: Path) -> None:
    env = shared_env(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")
    first = Replica(env, tmp_path / "a", "a")
    try:
        first.wait_ready()
        second = Replica(env, tmp_path / "b", "b")
        code = second.process.wait(60)
        second.stop()
        output = " ".join(second.log.read_text().split())
        assert code != 0
        assert "already serves this SQLite database" in output and "PostgreSQL" in output
        assert httpx.get(f"{first.url}/readyz", timeout=5).status_code == 200
    finally:
        first.stop()


@pytest.mark.postgres
@pytest.mark.timeout(900)  # two real server processes on a shared 2-core machine
def test_two_replicas_on_postgres_fail_over_within_30_seconds(
    postgres_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    url = postgres_server.new_database()
    env = shared_env(tmp_path, url, DATALIBRARY_HA__LEASE_SECONDS="6")
    assert cli(env, tmp_path / "a", "init").returncode == 0
    created = cli(env, tmp_path / "a", "tokens", "create", "--user", "admin", "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    headers = {"Authorization": f"Bearer {token['token']}"}
    replicas = [Replica(env, tmp_path / "a", "a"), Replica(env, tmp_path / "b", "b")]
    try:
        for replica in replicas:  # started together: the schema is already current
            replica.wait_ready()
        names = {}
        for replica in replicas:
            body = httpx.get(f"{replica.url}/api/v1/replicas", headers=headers, timeout=10).json()
            names[body["this_replica"]] = replica
        leases = {row["task"]: row for row in body["leases"] if row["live"]}
        assert set(leases) == set(TASKS)
        assert {row["holder"] for row in leases.values()} <= set(names)
        owner = names[leases["workspaces.reconcile"]["holder"]]
        survivor = next(r for r in replicas if r is not owner)
        owner.kill()
        killed = time.monotonic()
        while True:
            body = httpx.get(f"{survivor.url}/api/v1/replicas", headers=headers, timeout=10).json()
            live = {row["task"]: row["holder"] for row in body["leases"] if row["live"]}
            if all(live.get(task) == body["this_replica"] for task in TASKS):
                break
            assert time.monotonic() - killed < 30, f"tasks not taken over within 30 s: {live}"
            time.sleep(0.5)
        took = time.monotonic() - killed
        assert took < 30
        assert "now runs on this replica" in survivor.log.read_text()
        # the survivor keeps serving
        assert httpx.get(f"{survivor.url}/api/v1/me", headers=headers, timeout=10).status_code == 200
    finally:
        for replica in replicas:
            replica.stop()


def test_an_unreachable_database_is_a_503_to_retry(sqlite_platform) -> None:  # type: ignore[no-untyped-def]
    """While PostgreSQL restarts, requests get 503 + Retry-After (retried by HAProxy and
    clients), never a 500."""
    from datalibrary.app import create_app
    from tests.helpers import ApiClient, free_port_url

    db = Database(free_port_url())
    try:
        client = ApiClient(create_app(sqlite_platform.settings, db), "dl_not_checked_before_the_database")
        response = client.get("/api/v1/me")
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "2"
        assert response.json()["type"] == "/problems/unavailable"
        assert client.get("/readyz").status_code == 503
    finally:
        db.dispose()
