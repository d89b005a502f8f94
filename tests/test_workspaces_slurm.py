"""What only the Slurm provisioner does, against a real one-node Slurm (munged, slurmctld,
slurmd started by the fixture in tests/slurm_cluster.py): the job's resources, suspend and
resume as job states, a new job per start, cancel on terminate, usage intervals from the job's
times. What every backend does (JupyterLab through the proxy, the lake through the SDK with
grants, stop/start, re-adoption, a crash) is tests/test_provisioner_behaviour.py's.

Everything between the platform and the job goes through the authenticated channel (mutual
TLS over TCP to 127.0.0.1, a port the job picked): the job's run directory is a private
mount the platform cannot see, so no socket on shared storage can be what carries the
traffic. Attack tests probe the node's port and the platform's gateway with the wrong
certificates while the workspace runs."""

from __future__ import annotations

from pathlib import Path

from datalibrary.workspaces import channel_ca, paths
from datalibrary.workspaces.slurm import _time, job_info
from tests.channel_helpers import attacker_context, foreign_ca, http_get, probe, self_signed
from tests.helpers import Platform
from tests.slurm_cluster import job_logs, needs_slurm, slurm, slurm_platform  # noqa: F401 - fixtures
from tests.test_workspaces import client_of, environment_dir, make_ws_platform  # noqa: F401 - fixtures
from tests.workspace_helpers import execute, on_workspace, run_in_kernel, wait_state

pytestmark = needs_slurm


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


def test_slurm_jobs_carry_the_workspace(slurm_platform: Platform, tmp_path: Path) -> None:  # noqa: F811
    platform = slurm_platform
    client = client_of(platform, "alice")
    response = client.post("/api/v1/workspaces", json={"product": "notebook", "instance_type": "tiny"})
    assert response.status_code == 202, response.text
    wid = response.json()["id"]
    data = wait_state(client, wid, "running", "failed", timeout=240)
    assert data["state"] == "running", (data["state_reason"], job_logs(platform))
    # the instance type's resources are the job's
    job = job_of(platform, client, wid)
    assert job["JobState"] == "RUNNING" and job["NumCPUs"] == "1" and "mem=512M" in job["TRES"]

    # the SDK inside reaches the platform through the gateway
    through = platform.gateway.accepted  # type: ignore[attr-defined]
    out = execute(
        client, wid, "from datalibrary.sdk import connect; print(connect().me()['name'])", timeout=120
    )
    assert out["error"] is None and out["stdout"].strip() == "alice", out
    assert platform.gateway.accepted > through  # type: ignore[attr-defined]

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

    # start submits a new job with a new run; terminate cancels it
    assert client.post(f"/api/v1/workspaces/{wid}/start").status_code == 202
    wait_state(client, wid, "running", timeout=240)
    second = job_of(platform, client, wid)
    assert second["JobId"] != job["JobId"]
    assert channel_of(platform, wid)["run"] != channel["run"]  # a new run, a new certificate
    assert client.post(f"/api/v1/workspaces/{wid}/terminate").status_code == 202
    wait_state(client, wid, "terminated", timeout=120)
    assert job_of(platform, client, wid)["JobState"] in ("CANCELLED", "COMPLETED")
