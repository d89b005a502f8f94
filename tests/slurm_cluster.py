"""A real one-node Slurm cluster for tests: munged (as user munge, a private 1 KiB key and
socket), slurmctld and slurmd with one slurm.conf on private ports and state directories.
Nothing of the machine's own Slurm or munge configuration is used or changed.

The fixtures ``slurm`` (the cluster, once per module) and ``slurm_platform`` (a platform whose
workspaces are jobs of it, served with the channel's gateway) are shared by the behaviour suite
(tests/test_provisioner_behaviour.py) and the Slurm-only tests (tests/test_workspaces_slurm.py);
``slurm_platform`` needs ``make_ws_platform`` (tests/test_workspaces.py) beside it."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from datalibrary.workspaces import paths
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.channel_gateway import GatewayThread
from datalibrary.workspaces.provisioners import sandbox_possible
from tests.helpers import LiveServer, Platform
from tests.workspace_helpers import UnixServer

SLURM_CONF = """
ClusterName=dltest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/ctld
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
MinJobAge=600
InactiveLimit=0
KillWait=5
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def available() -> str | None:
    """Why a cluster cannot start here, or None."""
    for tool in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "a private Slurm cluster needs root here (slurmd runs jobs as their users)"
    return None


def unavailable() -> str | None:
    """Why Slurm workspaces cannot run here (the cluster, or the sandbox each job runs), or None."""
    if not (sandbox_possible() and host_version()):
        return "bubblewrap, root and a writable cgroup hierarchy are needed"
    return available()


needs_slurm = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")


class SlurmCluster:
    def __init__(self, root: Path, cpus: int = 2, memory_mb: int = 4096) -> None:
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.socket"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.cpus, self.memory_mb = cpus, memory_mb

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def _start_munge(self) -> None:
        munge = pwd.getpwnam("munge")
        directory = self.munge_socket.parent
        directory.mkdir(parents=True)
        key = directory / "munge.key"
        key.write_bytes(os.urandom(1024))
        for path in (directory, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        directory.chmod(0o700)
        key.chmod(0o400)
        # munged refuses a socket directory others can traverse into: give it its own
        self.processes.append(
            subprocess.Popen(  # noqa: S603
                [
                    "runuser",
                    "-u",
                    "munge",
                    "--",
                    "/usr/sbin/munged",
                    "--foreground",
                    "--force",
                    f"--socket={self.munge_socket}",
                    f"--key-file={key}",
                    f"--pid-file={directory / 'munged.pid'}",
                    f"--log-file={directory / 'munged.log'}",
                    f"--seed-file={directory / 'munged.seed'}",
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        self._wait(lambda: self.munge_socket.exists(), "munged")
        # slurmd/slurmctld run as root and must reach the socket; its directory stays private
        directory.chmod(0o755)

    def start(self) -> SlurmCluster:
        for name in ("ctld", "spool"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self.conf.write_text(
            SLURM_CONF.format(
                host=self.host,
                ctld_port=_free_port(),
                d_port=_free_port(),
                munge_socket=self.munge_socket,
                root=self.root,
                cpus=self.cpus,
                memory=self.memory_mb,
            )
        )
        env = {**os.environ, **self.env}
        self.processes.append(
            subprocess.Popen(  # noqa: S603
                ["/usr/sbin/slurmctld", "-D", "-i", "-f", str(self.conf)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        )
        self.processes.append(
            subprocess.Popen(  # noqa: S603
                ["/usr/sbin/slurmd", "-D", "-f", str(self.conf), "-N", self.host],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        )
        self._wait(self._node_idle, "the Slurm node", timeout=90)
        return self

    def _node_idle(self) -> bool:
        out = subprocess.run(  # noqa: S603
            ["sinfo", "-h", "-o", "%T"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode == 0 and out.stdout.strip().startswith(("idle", "mixed", "allocated"))

    def _wait(self, check, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{what}: a daemon exited ({process.args[0]}); see {self.root}")
            time.sleep(0.3)
        raise RuntimeError(f"{what} did not come up within {timeout} s; see the logs in {self.root}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


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
    make_ws_platform,  # tests/test_workspaces.py, imported by the module that uses this fixture
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    gateway_port = _free_port()
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
