"""What ``datalibrary up`` runs besides the routes: the app's lifespan, with its background loops
doing their real jobs. Every other test serves the app without its lifespan (each drives
the loop it needs by hand); here the server runs as ``up`` runs it (``api.serve.serve``:
uvicorn with the lifespan on, TCP and the workspaces' Unix socket), with short intervals set
through the settings, and nobody calls a loop's job: a delivery dropped in the landing folder
is ingested by the worker pool, the scheduler maintains the lake, the cost loops measure
storage and stop the workspace of a spent budget, the reconciler marks a crashed workspace
stopped, the idle loop stops an idle one, and a clean stop releases every task lease."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select

from datalibrary.audit import anchors
from datalibrary.audit.models import AuditEvent
from datalibrary.costs.models import StorageMeasurement
from datalibrary.db.base import utcnow
from datalibrary.db.leases import TASKS, holders
from datalibrary.ingest import background as ingest_background
from datalibrary.ingest.models import IngestJob
from datalibrary.lake.maintenance import last_run
from datalibrary.packages import server as packages_server
from datalibrary.workspaces import paths, service
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.sync import run_sync
from tests.helpers import LiveServer, Platform, check_invariants, make_platform
from tests.lake_helpers import add_policy, read_table, write_csv
from tests.test_costs_budgets import spend_queries
from tests.workspace_helpers import build_test_environment

T = TypeVar("T")

# One product, open to the process provisioner (it enforces no limits), that stops after one
# idle minute: the shortest idle timeout a catalog allows.
CATALOG = """
currency: EUR
instance_types:
  - {name: tiny, vcpu: 1, memory_gib: 0.5, price_per_hour: 0.02, max_processes: 256}
environments:
  - {name: python, kernels: [python], packages: [jupyterlab, ipykernel]}
products:
  - {name: quick, environment: python, instance_types: [tiny], roles: [scientist], requires: [],
     idle_timeout_minutes: 1}
"""

# The loops' intervals, shortened through the settings (as an operator would set them).
FAST = {
    "DATALIBRARY_HA__LEASE_SECONDS": "2",
    "DATALIBRARY_INGEST__POLL_SECONDS": "0.2",
    "DATALIBRARY_INGEST__WORKERS": "1",
    "DATALIBRARY_COSTS__ENFORCE_INTERVAL_SECONDS": "0.5",
    "DATALIBRARY_COSTS__MEASURE_INTERVAL_SECONDS": "0.5",
    "DATALIBRARY_COSTS__ENFORCE_AFTER_MINUTES": "0",
    "DATALIBRARY_WORKSPACES__PROVISIONER": "process",
    "DATALIBRARY_WORKSPACES__RECONCILE_INTERVAL_SECONDS": "1",
    "DATALIBRARY_WORKSPACES__IDLE_CHECK_INTERVAL_SECONDS": "1",
    "DATALIBRARY_WORKSPACES__IDLE_WARNING_MINUTES": "0",
    "DATALIBRARY_WORKSPACES__WARM_POOL_SIZE": "0",
    "DATALIBRARY_WORKSPACES__MAX_PER_USER": "2",
}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"the server did not {what} within {timeout:.0f} s"
        time.sleep(0.2)


class LiveClient:
    """Calls the running server over TCP as one user (the invariants of every response hold)."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        check_invariants(response)
        return response


@dataclass
class Running:
    platform: Platform
    url: str

    def client(self, user: str) -> LiveClient:
        self.platform.as_user(user)  # creates the user (a scientist) and a token
        return LiveClient(self.url, self.platform.tokens[user])

    def workspace(self, workspace_id: int) -> Workspace:
        with self.platform.db.session() as session:
            row = session.get(Workspace, workspace_id)
            assert row is not None
            session.expunge(row)
            return row


@pytest.fixture(scope="session")
def environment_dir() -> Path:
    """The workspaces' Python environment, built once per machine (cached)."""
    return build_test_environment().parent


@contextmanager
def serving(platform: Platform) -> Iterator[Running]:
    """The platform's app served as ``up`` serves it, lifespan on; on exit the server stops
    (its lifespan's shutdown runs), then what the server started and outlives it: the
    workspaces' processes (they survive a restart by design) and the package mirror."""
    settings = platform.settings
    try:
        with LiveServer(platform.app, lifespan="on", unix_socket=paths.api_socket(settings)) as live:
            yield Running(platform, live.url)
    finally:
        with platform.db.session() as session:
            rows = list(session.scalars(select(Workspace).where(Workspace.state != "terminated")))
        for workspace in rows:
            run_sync(service.build_provisioner(settings, workspace).stop())
        # wait for the start the lifespan began (its process is then known); a failed start
        # has nothing to stop
        with contextlib.suppress(Exception):
            packages_server.ensure_running(settings)
        packages_server.stop(settings)


@pytest.fixture
def fast_platform(
    database_url: str, tmp_path: Path, environment_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    """An installation whose background loops run every second or faster."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    for name, value in {
        **FAST,
        "DATALIBRARY_WORKSPACES__CATALOG": str(catalog),
        "DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR": str(environment_dir),
    }.items():
        monkeypatch.setenv(name, value)
    # the maintenance scheduler checks every 5 minutes: a module constant, not a setting
    monkeypatch.setattr(ingest_background, "SCHEDULER_CHECK_SECONDS", 0.5)
    with make_platform(tmp_path / "home", database_url) as platform:
        yield platform


@pytest.fixture
def running(fast_platform: Platform) -> Iterator[Running]:
    with serving(fast_platform) as server:
        yield server


def job_states(platform: Platform, table: str) -> list[str]:
    namespace, _, name = table.partition(".")
    with platform.db.session() as session:
        return list(
            session.scalars(
                select(IngestJob.state).where(IngestJob.namespace == namespace, IngestJob.table_name == name)
            )
        )


def launch(server: Running, client: LiveClient) -> int:
    response = client.request(
        "POST", "/api/v1/workspaces", json={"product": "quick", "instance_type": "tiny"}
    )
    assert response.status_code == 202, response.text
    workspace_id = int(response.json()["id"])
    state = wait_for(
        "start the workspace",
        lambda: (s := server.workspace(workspace_id).state) in ("running", "failed") and s,
    )
    assert state == "running", server.workspace(workspace_id).state_reason
    return workspace_id


def test_the_server_holds_every_task_lease_and_releases_them_on_a_clean_stop(
    fast_platform: Platform,
) -> None:
    with serving(fast_platform):
        wait_for(
            "take its task leases",
            lambda: {row["task"] for row in holders(fast_platform.db) if row["live"]} == set(TASKS),
        )
        assert len({row["holder"] for row in holders(fast_platform.db)}) == 1, "one replica holds them all"
        # the lifespan starts the package mirror in the background (nobody else did here: the
        # pid file is written by the start); it answers
        pid_file = packages_server.server_dir(fast_platform.settings) / "devpi.pid"
        wait_for("start the package mirror", pid_file.exists)
        assert packages_server.ensure_running(fast_platform.settings).exists()
    assert holders(fast_platform.db) == [], "a clean stop releases every lease at once"


def test_a_delivery_dropped_in_the_landing_folder_is_ingested_by_the_server(running: Running) -> None:
    platform = running.platform
    add_policy(platform)
    folder = platform.settings.home / "landing" / "site1" / "vitals"
    folder.mkdir(parents=True)
    (folder / "POLICY").write_text("keep-all\n")
    dropped = write_csv(folder / "vs.csv", {"ID": ["a", "b", "c"], "V": [1, 2, 3]})
    old = time.time() - 60  # written a minute ago: complete (the watcher waits for a stable file)
    os.utime(dropped, (old, old))
    states = wait_for(
        "ingest the dropped file",
        lambda: (
            (s := job_states(platform, "site1.vitals"))
            and set(s) <= {"succeeded", "failed", "quarantined"}
            and s
        ),
    )
    assert states == ["succeeded"]
    assert sorted(read_table(platform, "site1.vitals").column("ID").to_pylist()) == ["a", "b", "c"]
    assert not dropped.exists(), "the landing folder is emptied once the delivery is taken"
    with platform.db.session() as session:
        worker = session.scalar(select(IngestJob.worker))
    assert worker and "pool" in worker, "run by the server's worker pool"
    # the scheduler ran the day's maintenance and housekeeping on its own

    def maintained() -> bool:
        with platform.db.session() as session:  # a new transaction each time: new commits show
            return last_run(session) is not None

    wait_for("run the lake maintenance", maintained)
    ring = anchors.keyring_for(platform.db.engine)
    assert ring is not None
    wait_for("anchor the audit log outside the database", lambda: anchors.read_anchors(ring))


def test_the_cost_loops_measure_storage_and_stop_the_workspace_of_a_spent_budget(running: Running) -> None:
    platform = running.platform
    add_policy(platform)
    folder = platform.settings.home / "landing" / "study" / "dm"
    folder.mkdir(parents=True)
    (folder / "POLICY").write_text("keep-all\n")
    dropped = write_csv(folder / "dm.csv", {"USUBJID": [f"S-{i}" for i in range(50)], "AGE": list(range(50))})
    os.utime(dropped, (time.time() - 60, time.time() - 60))
    wait_for("ingest the table", lambda: job_states(platform, "study.dm") == ["succeeded"])
    data_files = (platform.settings.home / "lake").rglob("*.parquet")
    on_disk = sum(path.stat().st_size for path in data_files)

    def measured() -> StorageMeasurement | None:
        with platform.db.session() as session:
            row = session.scalar(
                select(StorageMeasurement).where(
                    StorageMeasurement.resource == "study.dm", StorageMeasurement.day == utcnow().date()
                )
            )
            if row is not None:
                session.expunge(row)
            return row

    measurement = wait_for("measure the new table's storage", measured)
    assert measurement.kind == "dataset" and measurement.bytes == on_disk > 0

    alice = running.client("alice")
    workspace_id = launch(running, alice)
    admin = running.client("admin")
    assert (
        admin.request("PUT", "/api/v1/costs/budgets/user/alice", json={"amount": "1.00"}).status_code == 200
    )
    spend_queries(platform, "alice", 0.25)  # 1.25 EUR of queries: the budget is spent
    stopped = wait_for(
        "stop the workspace of the spent budget",
        lambda: (row := running.workspace(workspace_id)).state == "stopped" and row,
    )
    assert "budget of user 'alice' spent" in (stopped.state_reason or "")
    with platform.db.session() as session:
        enforced = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "costs.budget_enforced")
        ).all()
        assert [event.details["stopped_workspaces"] for event in enforced] == [[workspace_id]]
        assert enforced[0].actor.startswith("system")


def test_the_workspace_loops_repair_a_crashed_workspace_and_stop_an_idle_one(running: Running) -> None:
    bob = running.client("bob")
    crashed, idle = launch(running, bob), launch(running, bob)
    pid = running.workspace(crashed).provisioner_state["pid"]
    os.killpg(pid, signal.SIGKILL)  # JupyterLab dies under the platform (no stop asked for)
    repaired = wait_for(
        "notice the crashed workspace", lambda: (row := running.workspace(crashed)).state == "stopped" and row
    )
    assert "by the reconciler" in (repaired.state_reason or "")
    # nobody uses the other one: stopped after its product's one idle minute (+ check interval)
    started = time.monotonic()
    stopped = wait_for(
        "stop the idle workspace",
        lambda: (row := running.workspace(idle)).state == "stopped" and row,
        timeout=240,
    )
    assert "idle for" in (stopped.state_reason or "")
    assert time.monotonic() - started < 200
    with running.platform.db.session() as session:
        reasons = [
            event.details.get("reason")
            for event in session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "workspace.stop", AuditEvent.target == f"workspace:{idle}"
                )
            )
        ]
    assert reasons == ["idle"]
    assert paths.home_dir(running.platform.settings, idle).is_dir(), "an idle stop keeps the home"
