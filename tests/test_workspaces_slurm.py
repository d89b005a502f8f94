"""The Slurm provisioner against a real one-node Slurm (munged, slurmctld, slurmd started by
the fixture): create, open JupyterLab, query the lake from a notebook, suspend, resume,
restart the platform and re-adopt, stop, cancel; usage intervals from the job's times.

Everything between the platform and the job goes through the authenticated channel (mutual
TLS over TCP to 127.0.0.1, a port the job picked): the job's run directory is a private
mount the platform cannot see, so no socket on shared storage can be what carries the
traffic. Attack tests probe the node's port and the platform's gateway with the wrong
certificates while the workspace runs."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from datalibrary.workspaces import channel_ca, paths, reconcile
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.channel_gateway import GatewayThread
from datalibrary.workspaces.provisioners import sandbox_possible
from datalibrary.workspaces.slurm import _time, job_info
from datalibrary.workspaces.sync import run_sync
from tests.channel_helpers import attacker_context, foreign_ca, http_get, probe, self_signed
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


NODE_PORTS = "41700-41799"


@pytest.fixture
def slurm_platform(
    slurm: SlurmCluster,
    make_ws_platform,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Platform]:  # type: ignore[no-untyped-def]  # noqa: F811
    gateway_port = free_port()
    node_run = slurm.root / "node-run"  # node-local: the job mounts its private run directory here
    node_run.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__SLURM_CONF", str(slurm.conf))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CHANNEL_LISTEN", f"127.0.0.1:{gateway_port}")
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CHANNEL_ADDRESS", f"127.0.0.1:{gateway_port}")
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CHANNEL_NODE_PORTS", NODE_PORTS)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CHANNEL_NODE_RUN_DIR", str(node_run))
    platform = make_ws_platform("slurm")
    api_socket = paths.api_socket(platform.settings)
    with (
        UnixServer(platform.app, api_socket),
        GatewayThread(platform.settings, platform.db, api_socket) as gateway,
        LiveServer(platform.app) as live,
    ):
        platform.live_url = live.url  # type: ignore[attr-defined]
        platform.gateway = gateway.gateway  # type: ignore[attr-defined]
        yield platform


def job_logs(platform: Platform) -> str:
    """The jobs' output (node-local; readable here because the node is this machine)."""
    node_run = platform.settings.workspaces.channel_node_run_dir
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(node_run.glob("*.log")))


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def channel_of(platform: Platform, wid: int) -> dict:  # type: ignore[type-arg]
    from datalibrary.workspaces.models import Workspace

    with platform.db.session() as session:
        return dict(session.get(Workspace, wid).provisioner_state.get("channel") or {})


def assert_nothing_shared(platform: Platform, wid: int) -> None:
    """No socket of the workspace on the platform's side: the only socket in the state
    directory is the platform's own API socket, and the node's run directory shows the
    platform nothing but the jobs' logs (the job mounted its private directory over it)."""
    home = platform.settings.home
    sockets = [p for p in home.rglob("*") if p.is_socket()]
    assert sockets == [paths.api_socket(platform.settings)], sockets
    assert not paths.run_dir(platform.settings, wid).exists()
    node_run = platform.settings.workspaces.channel_node_run_dir
    assert all(p.name.endswith(".log") for p in node_run.iterdir()), list(node_run.iterdir())


def attack_node(platform: Platform, wid: int, tmp_path: Path) -> None:
    """The node's port answers the platform only."""
    channel = channel_of(platform, wid)
    host, port = channel["host"], int(channel["port"])
    ca = channel_ca.ChannelCA.load_or_create(platform.settings.workspaces.channel_ca_file)
    request = http_get(f"/workspaces/{wid}/api/status")
    platform_leaf = ca.issue(channel_ca.PLATFORM_NAME, 1)
    assert probe(host, port, attacker_context(platform_leaf), request).startswith(b"HTTP/1.1 ")
    for what, leaf in {
        "no certificate": None,
        "another workspace's certificate": ca.issue(channel_ca.run_name(wid + 1, channel_ca.new_run()), 1),
        "this workspace's certificate of another run": ca.issue(
            channel_ca.run_name(wid, channel_ca.new_run()), 1
        ),
        "self-signed": self_signed(channel_ca.PLATFORM_NAME),
        "another installation's CA": foreign_ca(tmp_path).issue(channel_ca.PLATFORM_NAME, 1),
    }.items():
        assert probe(host, port, attacker_context(leaf), request) == b"", what


def attack_gateway(platform: Platform, wid: int, tmp_path: Path) -> channel_ca.Leaf:
    """The gateway lets the current run of a running workspace through, nothing else; returns
    a certificate of the current run (as the platform issued the job's) for later checks."""
    gateway = platform.gateway  # type: ignore[attr-defined]
    ca = channel_ca.ChannelCA.load_or_create(platform.settings.workspaces.channel_ca_file)
    run = channel_of(platform, wid)["run"]
    current = ca.issue(channel_ca.run_name(wid, run), 1)
    request = http_get("/api/v1/me", token=platform.tokens["alice"])
    answer = probe("127.0.0.1", gateway.port, attacker_context(current), request)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    for what, leaf in {
        "no certificate": None,
        "a replayed certificate of an earlier run": ca.issue(
            channel_ca.run_name(wid, channel_ca.new_run()), 1
        ),
        "another workspace's certificate": ca.issue(channel_ca.run_name(wid + 1, run), 1),
        "the platform's own name": ca.issue(channel_ca.PLATFORM_NAME, 1),
        "self-signed with the run's name": self_signed(channel_ca.run_name(wid, run)),
        "another installation's CA": foreign_ca(tmp_path).issue(channel_ca.run_name(wid, run), 1),
        "expired": ca.issue(channel_ca.run_name(wid, run), -1),
    }.items():
        assert probe("127.0.0.1", gateway.port, attacker_context(leaf), request) == b"", what
    return current


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
    write_csv(tmp_path / "ae.csv", {"SUBJ": ["S1", "S2"], "TERM": ["headache", "nausea"]})
    assert ingest(platform, tmp_path / "ae.csv", "study.ae")[1] == "succeeded"  # not granted
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
    assert data["state"] == "running", (data["state_reason"], job_logs(platform))
    job = job_of(platform, client, wid)
    assert job["JobState"] == "RUNNING" and job["NumCPUs"] == "1" and "mem=512M" in job["TRES"]

    # JupyterLab through the proxy; a notebook queries the lake through the SDK
    lab = on_workspace(client, wid).get(f"/workspaces/{wid}/lab")
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    code = "from datalibrary.sdk import connect\n"
    code += (
        "print(connect().request('POST', '/query', {'sql': 'SELECT count(*) FROM study.dm'})['rows'][0][0])"
    )
    through = platform.gateway.accepted  # type: ignore[attr-defined]
    out = execute(client, wid, code, timeout=120)
    assert out["error"] is None and out["stdout"].strip() == "12", out
    assert platform.gateway.accepted > through  # type: ignore[attr-defined]  # the SDK came through the gateway
    # ... with the grants applied: a table alice was not granted stays closed through the channel
    denied = execute(client, wid, code.replace("study.dm", "study.ae"), timeout=120)
    assert denied["error"] is not None and "study.ae" in str(denied), denied

    # the channel: TCP to the node's address and a port of the range; nothing on shared storage
    channel = channel_of(platform, wid)
    assert channel["host"] == "127.0.0.1" and int(channel["port"]) in range(41700, 41800), channel
    assert_nothing_shared(platform, wid)
    attack_node(platform, wid, tmp_path)
    current = attack_gateway(platform, wid, tmp_path)

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
    database = Database(settings.connect_url())
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
    # stopped: the run's certificate is refused by the gateway (revoked), the node port is closed
    request = http_get("/api/v1/me", token=platform.tokens["alice"])
    assert probe("127.0.0.1", platform.gateway.port, attacker_context(current), request) == b""  # type: ignore[attr-defined]
    assert probe(channel["host"], int(channel["port"]), attacker_context(None), request) == b""
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
    assert channel_of(platform, wid)["run"] != channel["run"]  # a new run, a new certificate
    assert on_workspace(client, wid).get(f"/workspaces/{wid}/api/status").status_code == 200
    assert client.post(f"/api/v1/workspaces/{wid}/terminate").status_code == 202
    wait_state(client, wid, "terminated", timeout=120)
    assert job_of(platform, client, wid)["JobState"] in ("CANCELLED", "COMPLETED")
