"""One behaviour suite for every workspace backend (after pyiceberg's
``tests/catalog/test_catalog_behaviors.py``): the ``backend`` fixture is parametrized over the
provisioners installed in the ``datalibrary.provisioners`` entry-point group, so a new backend
runs the same contract as soon as it is installed, and an installed backend this module has no
fixture for fails the suite instead of passing it by absence.

The contract, through the API, the authenticated proxy and kernel WebSockets: create ->
running; JupyterLab through the proxy; a cell queries the lake through the SDK under the
owner's grant (its row filter); stop -> stopped and start keeps the home; pause/resume when
the backend is ``Pausable``, a refusal when it is not; terminate removes the home; a restarted
platform re-adopts a running workspace; the reconciler finishes an interrupted stop and
reports a workspace whose backend was killed under it. What one backend does beyond the contract stays
in its own module (tests/test_workspaces.py for the sandbox, tests/test_workspaces_slurm.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from datalibrary.db.base import utcnow
from datalibrary.workspaces import paths, procs, reconcile, service
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.provisioners import Pausable, Status, backends, provisioner_class
from datalibrary.workspaces.slurm import job_info
from datalibrary.workspaces.sync import run_sync
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.slurm_cluster import needs_slurm, slurm, slurm_platform  # noqa: F401 - fixtures
from tests.test_workspaces import (  # noqa: F401 - fixtures
    environment_dir,
    launch,
    make_ws_platform,
    needs_sandbox,
    process_platform,
    sandbox_platform,
    serving,
)
from tests.workspace_helpers import execute, on_workspace, run_in_kernel, wait_state

WAIT = 240  # seconds a state change may take before the test fails (a Slurm job is queued first)


def _row(platform: Platform, workspace_id: int) -> Workspace:
    with platform.db.session() as session:
        row = session.get(Workspace, workspace_id)
        session.expunge(row)
        return row


def _poll(platform: Platform, workspace_id: int) -> Status:
    return run_sync(service.build_provisioner(platform.settings, _row(platform, workspace_id)).poll())


def _kill_process(platform: Platform, row: Workspace) -> None:
    """SIGKILL JupyterLab's process group, as the kernel's OOM killer or a crash would."""
    pid = row.provisioner_state["pid"]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.state_letter(pid) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)


def _kill_sandbox(platform: Platform, row: Workspace) -> None:
    """SIGKILL every process of the sandbox's cgroup (waits until the group is empty)."""
    service.build_provisioner(platform.settings, row).cgroup.kill_all()  # type: ignore[attr-defined]


def _cancel_job(platform: Platform, row: Workspace) -> None:
    """``scancel`` the job behind the platform's back (an operator, a preemption, a node lost)."""
    conf = str(platform.settings.workspaces.slurm_conf)
    job_id = row.provisioner_state["job_id"]
    subprocess.run(["scancel", job_id], env={**os.environ, "SLURM_CONF": conf}, check=True)  # noqa: S603, S607
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (job_info(job_id, conf) or {}).get("JobState") in ("CANCELLED", "COMPLETED", "FAILED"):
            return
        time.sleep(0.2)
    raise AssertionError(f"Slurm job {job_id} did not end after scancel")


@dataclass(frozen=True)
class Backend:
    """How the suite serves a platform on one backend and kills a workspace under it."""

    fixture: str  # the fixture that yields the served platform
    kill: Callable[[Platform, Workspace], None]
    marks: tuple[pytest.MarkDecorator, ...] = ()  # the skips of the backend's own module


BACKENDS = {
    "sandbox": Backend("sandbox_platform", _kill_sandbox, (needs_sandbox,)),
    "process": Backend("process_platform", _kill_process),
    "slurm": Backend("slurm_platform", _cancel_job, (needs_slurm,)),
}


def _params() -> list[object]:
    return [
        pytest.param(name, marks=BACKENDS[name].marks if name in BACKENDS else ())
        for name in sorted(backends())
    ]


@pytest.fixture(params=_params())
def backend(request: pytest.FixtureRequest) -> Platform:
    """A platform served on the backend ``request.param``, every installed one in turn."""
    name = request.param
    if name not in BACKENDS:
        pytest.fail(f"provisioner '{name}' is installed but {__name__} has no fixture for it: add one")
    return request.getfixturevalue(BACKENDS[name].fixture)


def test_every_installed_backend_is_in_the_suite() -> None:
    assert sorted(backends()) == sorted(BACKENDS)


def _lake_with_a_row_filter(platform: Platform, tmp_path: Path) -> None:
    """``study.dm``: 12 rows, of which alice's grant shows the 5 with ``age < 5``."""
    add_policy(platform)
    write_csv(tmp_path / "dm.csv", {"subj": [f"S{i}" for i in range(12)], "age": list(range(12))})
    assert ingest(platform, tmp_path / "dm.csv", "study.dm")[1] == "succeeded"
    platform.add_user("stew", "steward")
    granted = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:alice", "table": "study.dm", "row_filter": "age < 5"}
    )
    assert granted.status_code == 201, granted.text


def pause_and_resume(platform: Platform, client, wid: int) -> None:  # type: ignore[no-untyped-def]
    """Pause freezes and resume thaws where the workspace's backend declares it (``Pausable``);
    elsewhere pause is refused with a reason and the workspace keeps running (so resume never
    has a paused workspace to act on)."""
    name = _row(platform, wid).provisioner
    if issubclass(provisioner_class(name), Pausable):
        assert client.post(f"/api/v1/workspaces/{wid}/pause").status_code == 202
        wait_state(client, wid, "paused", timeout=WAIT)
        assert _poll(platform, wid) == Status.PAUSED  # what the backend finds, not just the row
        assert client.post(f"/api/v1/workspaces/{wid}/pause").status_code == 409
        assert client.post(f"/api/v1/workspaces/{wid}/resume").status_code == 202
        wait_state(client, wid, "running", timeout=WAIT)
        assert _poll(platform, wid) == Status.RUNNING
        return
    refused = client.post(f"/api/v1/workspaces/{wid}/pause")
    assert refused.status_code == 409, refused.text
    assert f"the '{name}' provisioner cannot pause" in refused.json()["detail"], refused.text
    assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "running"


COUNT = (
    "from datalibrary.sdk import connect\n"
    "print(connect().request('POST', '/query', {'sql': 'SELECT count(*) FROM study.dm'})['rows'][0][0])"
)


def test_lifecycle(backend: Platform, tmp_path: Path) -> None:
    platform = backend
    _lake_with_a_row_filter(platform, tmp_path)
    client, wid = launch(platform, timeout=WAIT)
    # JupyterLab opens through the authenticated proxy, on the workspace's own origin only
    lab = on_workspace(client, wid).get(f"/workspaces/{wid}/lab")
    assert lab.status_code == 200 and "JupyterLab" in lab.text, (lab.status_code, lab.text[:300])
    # JupyterLab has no token of its own, so none reaches the page; the proxy secret never does
    assert '"token": ""' in lab.text
    assert paths.jupyter_token(platform.settings, _row(platform, wid)) not in lab.text
    assert client.get(f"/workspaces/{wid}/api/status").status_code != 200
    # a cell writes to the persistent home; the SDK inside is alice's, with the workspace token
    kernel = (
        on_workspace(client, wid)
        .post(f"/workspaces/{wid}/api/kernels", json={"name": "python3"})
        .json()["id"]
    )
    code = "open('kept.txt', 'w').write('hello')\n"
    code += "from datalibrary.sdk import connect; me = connect().me(); print(me['name'], me['via'])"
    out = run_in_kernel(client, wid, kernel, code, timeout=120)
    assert out["error"] is None and out["stdout"].split() == ["alice", "token"], out
    # ... which reads the lake under alice's grant: 5 rows of the 12, not the others
    out = run_in_kernel(client, wid, kernel, COUNT, timeout=120)
    assert out["error"] is None and out["stdout"].strip() == "5", out
    # ... and cannot drive workspaces
    post = "try:\n    connect().request('POST', '/workspaces', {'product': 'x', 'instance_type': 'tiny'})\n"
    post += "except Exception as e:\n    print(e.status)"
    assert run_in_kernel(client, wid, kernel, post)["stdout"].strip() == "403"

    # stop keeps the home; start wakes it
    assert client.post(f"/api/v1/workspaces/{wid}/stop").status_code == 202
    assert wait_state(client, wid, "stopped", timeout=WAIT)["state"] == "stopped"
    assert on_workspace(client, wid).get(f"/workspaces/{wid}/lab").status_code == 409
    assert client.post(f"/api/v1/workspaces/{wid}/start").status_code == 202
    assert wait_state(client, wid, "running", "failed", timeout=WAIT)["state"] == "running"
    out = execute(client, wid, "print(open('kept.txt').read())", timeout=120)
    assert out["stdout"].strip() == "hello", out

    pause_and_resume(platform, client, wid)
    assert on_workspace(client, wid).get(f"/workspaces/{wid}/api/status").status_code == 200

    # usage: one interval per state, closed as the state changed
    usage = client.get(f"/api/v1/workspaces/{wid}/usage").json()
    states = [u["state"] for u in usage]
    assert states[:4] == ["starting", "running", "stopping", "stopped"] and states[-1] == "running"
    assert all(u["ended_at"] for u in usage[:-1]) and usage[-1]["ended_at"] is None

    # terminate archives and deletes the home
    assert client.post(f"/api/v1/workspaces/{wid}/terminate").status_code == 202
    wait_state(client, wid, "terminated", timeout=WAIT)
    assert not paths.home_dir(platform.settings, wid).exists()
    assert paths.archive_path(platform.settings, wid).exists()
    assert on_workspace(client, wid).get(f"/workspaces/{wid}/lab").status_code == 404
    assert client.get("/api/v1/workspaces").json() == []


def test_the_reconciler_readopts_repairs_and_reports_a_crash(backend: Platform) -> None:
    platform = backend
    client, wid = launch(platform, timeout=WAIT)
    # a "restarted platform": a new app on the same state re-adopts the running workspace
    from datalibrary.app import create_app
    from datalibrary.config import Settings
    from datalibrary.db import Database
    from tests.helpers import ApiClient

    settings = Settings(home=platform.settings.home, database_url=platform.settings.database_url)
    database = Database(settings.connect_url())
    try:
        report = run_sync(reconcile.reconcile(database, settings))
        assert wid in report.adopted and wid not in report.repaired
        restarted = ApiClient(create_app(settings, database), platform.tokens["alice"])
        assert on_workspace(restarted, wid).get(f"/workspaces/{wid}/api/status").status_code == 200
    finally:
        database.dispose()

    # stuck in "stopping" (the platform died mid-way): the reconciler finishes the stop
    with platform.db.session() as session:
        session.execute(
            update(Workspace)
            .where(Workspace.id == wid)
            .values(state="stopping", state_changed_at=utcnow() - timedelta(hours=1))
        )
    report = run_sync(reconcile.reconcile(platform.db, platform.settings))
    assert report.repaired[wid] == "stopped"
    assert on_workspace(client, wid).get(f"/workspaces/{wid}/lab").status_code == 409

    # killed under the platform (no stop asked for): the database still says running ...
    assert client.post(f"/api/v1/workspaces/{wid}/start").status_code == 202
    assert wait_state(client, wid, "running", "failed", timeout=WAIT)["state"] == "running"
    BACKENDS[platform.settings.workspaces.provisioner].kill(platform, _row(platform, wid))
    assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "running"
    # ... until the reconciler looks
    report = run_sync(reconcile.reconcile(platform.db, platform.settings))
    assert report.repaired == {wid: "stopped"} and wid not in report.adopted
    shown = client.get(f"/api/v1/workspaces/{wid}").json()
    assert shown["state"] == "stopped" and "by the reconciler" in shown["state_reason"], shown
    assert paths.home_dir(platform.settings, wid).is_dir()  # the home stays


UNPAUSABLE = """
from datalibrary.workspaces.process import ProcessProvisioner
from datalibrary.workspaces.provisioners import Provisioner


class UnpausableFake(Provisioner):
    \"\"\"A fake on purpose: the process backend without pause/resume.\"\"\"

    name = "unpausable"
    capabilities = ProcessProvisioner.capabilities
    isolated = False

    def __init__(self, spec):
        super().__init__(spec)
        self.inner = ProcessProvisioner(spec)

    async def start(self):
        await self.inner.start()

    async def stop(self):
        await self.inner.stop()

    async def poll(self):
        return await self.inner.poll()

    def get_state(self):
        return self.inner.get_state()

    def load_state(self, state):
        self.inner.load_state(state)
"""


def test_a_backend_without_pause_refuses_it(
    make_ws_platform,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """The refusal half of ``pause_and_resume``, which no built-in backend reaches (all three
    are ``Pausable``): a plugin backend that declares no pause, selected by the settings."""
    (tmp_path / "unpausable_fake.py").write_text(UNPAUSABLE)
    info = tmp_path / "unpausable_fake-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unpausable-fake\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[datalibrary.provisioners]\nunpausable = unpausable_fake:UnpausableFake\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not issubclass(provisioner_class("unpausable"), Pausable)
    with serving(make_ws_platform("unpausable")) as platform:
        client, wid = launch(platform)
        assert _row(platform, wid).provisioner == "unpausable"
        pause_and_resume(platform, client, wid)
        assert on_workspace(client, wid).get(f"/workspaces/{wid}/api/status").status_code == 200
