"""The Slurm provisioner against a real one-node Slurm (munged, slurmctld, slurmd started by
the fixture): create, open JupyterLab, query the lake from a notebook, suspend, resume,
restart the platform and re-adopt, stop, cancel; usage intervals from the job's times."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from datalibrary.workspaces import paths, reconcile
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.provisioners import sandbox_possible
from datalibrary.workspaces.slurm import _time, job_info
from datalibrary.workspaces.sync import run_sync
from tests.helpers import LiveServer, Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.slurm_cluster import SlurmCluster, available
from tests.test_workspaces import client_of, environment_dir, make_ws_platform  # noqa: F401 - fixtures
from tests.workspace_helpers import UnixServer, execute, on_workspace, run_in_kernel, wait_state

pytestmark = pytest.mark.skipif(
    bool(available()) or not (sandbox_possible() and host_version()),
    reason=available() or "bubblewrap, root and a writable cgroup hierarchy are needed",
)


@pytest.fixture(scope="module")
def slurm() -> Iterator[SlurmCluster]:
    # not under pytest's private tmp: munged runs as user munge and must reach its directory
    root = Path(tempfile.mkdtemp(prefix="dl-slurm-"))
    root.chmod(0o755)
    cluster = SlurmCluster(root)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def slurm_platform(
    slurm: SlurmCluster,
    make_ws_platform,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Platform]:  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__SLURM_CONF", str(slurm.conf))
    platform = make_ws_platform("slurm")
    with UnixServer(platform.app, paths.api_socket(platform.settings)), LiveServer(platform.app) as live:
        platform.live_url = live.url  # type: ignore[attr-defined]
        yield platform


def job_of(platform: Platform, client, wid: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from datalibrary.workspaces.models import Workspace

    with platform.db.session() as session:
        job_id = session.get(Workspace, wid).provisioner_state["job_id"]
    info = job_info(job_id, str(platform.settings.workspaces.slurm_conf))
    assert info is not None
    return info


def test_slurm_workspace_lifecycle(slurm_platform: Platform, tmp_path: Path) -> None:
    platform = slurm_platform
    add_policy(platform)
    write_csv(tmp_path / "dm.csv", {"SUBJ": [f"S{i}" for i in range(12)], "AGE": list(range(12))})
    assert ingest(platform, tmp_path / "dm.csv", "study.dm")[1] == "succeeded"
    platform.add_user("stew", "steward")
    client = client_of(platform, "alice")
    granted = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:alice", "table": "study.dm"}
    )
    assert granted.status_code == 201, granted.text

    response = client.post("/api/v1/workspaces", json={"product": "notebook", "instance_type": "tiny"})
    assert response.status_code == 202, response.text
    wid = response.json()["id"]
    data = wait_state(client, wid, "running", "failed", timeout=240)
    assert data["state"] == "running", data["state_reason"]
    job = job_of(platform, client, wid)
    assert job["JobState"] == "RUNNING" and job["NumCPUs"] == "1" and "mem=512M" in job["TRES"]

    # JupyterLab through the proxy; a notebook queries the lake through the SDK
    lab = on_workspace(client, wid).get(f"/workspaces/{wid}/lab")
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    code = "from datalibrary.sdk import connect\n"
    code += (
        "print(connect().request('POST', '/query', {'sql': 'SELECT count(*) FROM study.dm'})['rows'][0][0])"
    )
    out = execute(client, wid, code, timeout=120)
    assert out["error"] is None and out["stdout"].strip() == "12", out

    # pause = scontrol suspend; resume = scontrol resume
    assert client.post(f"/api/v1/workspaces/{wid}/pause").status_code == 202
    wait_state(client, wid, "paused")
    assert job_of(platform, client, wid)["JobState"] == "SUSPENDED"
    assert client.post(f"/api/v1/workspaces/{wid}/resume").status_code == 202
    wait_state(client, wid, "running")
    assert job_of(platform, client, wid)["JobState"] == "RUNNING"
    assert on_workspace(client, wid).get(f"/workspaces/{wid}/api/status").status_code == 200

    # a restarted platform re-adopts the job from its id
    from datalibrary.api import create_app
    from datalibrary.config import Settings
    from datalibrary.db import Database
    from tests.helpers import ApiClient

    settings = Settings(home=platform.settings.home, database_url=platform.settings.database_url)
    database = Database(str(settings.database_url))
    try:
        report = run_sync(reconcile.reconcile(database, settings))
        assert wid in report.adopted
        restarted = ApiClient(create_app(settings, database), platform.tokens["alice"])
        assert on_workspace(restarted, wid).get(f"/workspaces/{wid}/api/status").status_code == 200
    finally:
        database.dispose()

    # stop = scancel: the job ends, nothing of the sandbox is left
    kernel = (
        on_workspace(client, wid)
        .post(f"/workspaces/{wid}/api/kernels", json={"name": "python3"})
        .json()["id"]
    )
    assert run_in_kernel(client, wid, kernel, "print('alive')")["stdout"].strip() == "alive"
    assert client.post(f"/api/v1/workspaces/{wid}/stop").status_code == 202
    wait_state(client, wid, "stopped", timeout=120)
    ended = job_of(platform, client, wid)
    assert ended["JobState"] in ("CANCELLED", "COMPLETED", "FAILED"), ended["JobState"]
    # usage: the running interval is the job's own start .. end
    usage = client.get(f"/api/v1/workspaces/{wid}/usage").json()
    running = next(u for u in usage if u["state"] == "running")
    assert running["started_at"][:19] == _time(job["StartTime"]).isoformat()[:19]
    stopped = next(u for u in usage if u["state"] == "stopped")
    assert stopped["started_at"][:19] == _time(ended["EndTime"]).isoformat()[:19]

    # start submits a new job; terminate cancels it and removes the home
    assert client.post(f"/api/v1/workspaces/{wid}/start").status_code == 202
    wait_state(client, wid, "running", timeout=240)
    second = job_of(platform, client, wid)
    assert second["JobId"] != job["JobId"]
    assert client.post(f"/api/v1/workspaces/{wid}/terminate").status_code == 202
    wait_state(client, wid, "terminated", timeout=120)
    assert job_of(platform, client, wid)["JobState"] in ("CANCELLED", "COMPLETED")
