"""The ``slurm`` provisioner: a workspace is a Slurm job running the same sandbox on a node.

``start`` submits a batch job (``sbatch``) sized from the instance type (CPUs, memory, GPUs
as GRES); the job runs ``python -m datalibrary.workspaces.slurm_job`` on the node, which
starts the bubblewrap sandbox exactly as the ``sandbox`` provisioner does (own cgroup with the
instance type's limits, no network) and lives as long as JupyterLab does. ``stop`` is
``scancel`` (the job stops the sandbox on SIGTERM); ``pause``/``resume`` are ``scontrol
suspend``/``resume`` (SIGSTOP/SIGCONT of every process of the job). The job id and the
channel (below) are the whole provisioner state, so a restarted platform, or any other
replica, re-adopts the workspace with ``scontrol show job``. Usage intervals come from the
job's own StartTime/EndTime (``run_times``).

The node is not trusted to share this host: the platform reaches the workspace through the
authenticated channel (``channel_node``, ``channel_gateway``, ``upstream``). Each start issues
a fresh certificate for the run from the installation's channel CA and hands it, with the
rest of the job's spec, to the node inside the batch script (sent to slurmctld on sbatch's
standard input, never written to shared storage). The job listens on a port of
``workspaces.channel_node_ports`` and reports it in its own ``Comment`` (``dl-port:N``); the
node's address is Slurm's ``NodeAddr`` of the job's ``BatchHost``. Stopping forgets the run,
which revokes its certificate.

What the node needs: the same DataLibrary installation (the job runs this Python), bubblewrap,
root (cgroups, a private mount namespace), ``workspaces.channel_node_run_dir`` (node-local;
the job mounts its private run directory over it), and on shared storage the workspace homes,
the environments and the SDK. The Slurm commands read ``SLURM_CONF`` from
``workspaces.slurm_conf`` when set; ``workspaces.slurm_partition`` picks the partition.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datalibrary.errors import Unavailable
from datalibrary.workspaces import channel_ca, jupyter
from datalibrary.workspaces.provisioners import Capabilities, Provisioner, Status, WorkspaceSpec
from datalibrary.workspaces.upstream import TlsUpstream

PORT_COMMENT = "dl-port:"
# Slurm job states -> our status (COMPLETING and every final state are STOPPED).
LIVE = {"PENDING": Status.RUNNING, "CONFIGURING": Status.RUNNING, "RUNNING": Status.RUNNING}
PAUSED = {"SUSPENDED": Status.PAUSED}


def slurm_env(conf: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if conf:
        env["SLURM_CONF"] = conf
    return env


def _run(*args: str, conf: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603
            list(args), env=slurm_env(conf), capture_output=True, text=True, timeout=60, check=False,
            input=stdin,
        )  # fmt: skip
    except FileNotFoundError:
        raise Unavailable(
            f"'{args[0]}' is not installed: install Slurm's client tools (slurm-client)"
        ) from None


def job_info(job_id: str, conf: str | None = None) -> dict[str, str] | None:
    """``scontrol show job -o`` as a dict, or None when Slurm no longer knows the job."""
    return _show("job", job_id, "JobId=", conf)


def node_address(node: str, conf: str | None = None) -> str | None:
    """The address Slurm itself uses for ``node`` (its NodeAddr)."""
    info = _show("node", node, "NodeName=", conf)
    return info.get("NodeAddr") if info else None


def _show(kind: str, name: str, marker: str, conf: str | None) -> dict[str, str] | None:
    done = _run("scontrol", "show", kind, "-o", name, conf=conf)
    if done.returncode != 0 or marker not in done.stdout:
        return None
    info: dict[str, str] = {}
    for item in done.stdout.split():
        key, sep, value = item.partition("=")
        if sep and key not in info:
            info[key] = value
    return info


def _time(value: str | None) -> datetime | None:
    """Slurm prints local times without a zone; None for Unknown/None."""
    if not value or value in ("Unknown", "None", "(null)"):
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


class SlurmProvisioner(Provisioner):
    name = "slurm"
    # the job runs the sandbox: its cgroup enforces CPU and memory, its namespace the network
    capabilities = Capabilities(memory=True, cpu=True, network_isolation=True)
    isolated = True

    def __init__(self, spec: WorkspaceSpec) -> None:
        super().__init__(spec)
        self.job_id: str | None = None
        self.channel: dict[str, Any] = {}  # run, host, port
        self.conf = spec.backend.get("slurm_conf")
        self.partition = spec.backend.get("slurm_partition")
        self.node_run_dir = Path(spec.backend.get("channel_node_run_dir", "/var/tmp/datalibrary-workspaces"))  # noqa: S108

    def _slurm(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return _run(*args, conf=self.conf, stdin=stdin)

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"job_id": self.job_id} if self.job_id else {}
        if self.job_id and self.channel:
            state["channel"] = dict(self.channel)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.job_id = state.get("job_id")
        self.channel = dict(state.get("channel") or {})

    # --- status ---------------------------------------------------------------------

    def _state(self) -> str | None:
        if not self.job_id:
            return None
        info = job_info(self.job_id, self.conf)
        return info.get("JobState") if info else None

    async def poll(self) -> Status:
        state = await asyncio.to_thread(self._state)
        return LIVE.get(state or "", PAUSED.get(state or "", Status.STOPPED))

    def run_times(self) -> tuple[datetime | None, datetime | None]:
        """When the job actually started and ended (None while unknown or still running)."""
        info = job_info(self.job_id, self.conf) if self.job_id else None
        if not info:
            return None, None
        end = _time(info.get("EndTime")) if info.get("JobState") not in LIVE | PAUSED else None
        return _time(info.get("StartTime")), end

    # --- lifecycle ------------------------------------------------------------------

    def log_path(self) -> Path:
        """The job's output on its node (node-local: the platform cannot read it)."""
        return self.node_run_dir / f"ws-{self.spec.workspace_id}-%j.log"

    def sbatch_args(self) -> list[str]:
        spec = self.spec
        memory_mb = max(1, math.ceil(spec.memory_bytes / 1024**2))
        args = [
            "sbatch",
            "--parsable",
            f"--job-name=dl-{spec.installation}-ws-{spec.workspace_id}",
            "--ntasks=1",
            f"--cpus-per-task={max(1, math.ceil(spec.cpus))}",
            f"--mem={memory_mb}M",
            f"--output={self.log_path()}",
            f"--chdir={self.node_run_dir}",
        ]
        if self.partition:
            args.append(f"--partition={self.partition}")
        return args

    def node_spec(self, leaf: channel_ca.Leaf) -> dict[str, Any]:
        """What the job needs, as JSON: the workspace's spec with node-local run and API
        directories, and the channel (the run's certificate and key, the CA, the gateway)."""
        spec = self.spec
        local = self.node_run_dir / f"ws-{spec.workspace_id}"
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(spec).items()}
        data["run_dir"] = str(local / "run")
        data["api_socket_dir"] = str(local / "api")
        data["channel"] = {
            "cert": leaf.cert_pem,
            "key": leaf.key_pem,
            "ca": leaf.ca_pem,
            "gateway": spec.backend["channel_address"],
            "ports": spec.backend.get("channel_node_ports", "40000-40999"),
            "node_run_dir": str(self.node_run_dir),
        }
        return data

    def batch_script(self, leaf: channel_ca.Leaf) -> str:
        """The batch script, given to sbatch on standard input: slurmctld keeps it in its
        root-only state directory and hands it to the node over Slurm's authenticated RPC, so
        the run's key and the JupyterLab secret never touch shared storage. The job runs in a
        private mount namespace, where it mounts its own run directory."""
        payload = base64.encodebytes(json.dumps(self.node_spec(leaf)).encode()).decode()
        return (
            "#!/bin/sh\n"
            "exec unshare --mount --propagation private "
            f"{sys.executable} -m datalibrary.workspaces.slurm_job <<'DL_SPEC'\n"
            f"{payload}DL_SPEC\n"
        )

    def _alive(self) -> bool:
        return self._state() in LIVE

    def _upstream(self) -> TlsUpstream:
        ca_file = Path(self.spec.backend.get("channel_ca_file", ""))
        context = channel_ca.platform_identity(ca_file).client()
        name = channel_ca.run_name(self.spec.workspace_id, str(self.channel["run"]))
        return TlsUpstream(str(self.channel["host"]), int(self.channel["port"]), name, context)

    async def start(self) -> None:
        spec = self.spec
        if await asyncio.to_thread(self._alive):
            if self.channel.get("port"):  # already running (a repeated start, a re-adoption)
                await self._wait_ready()
                return
            await self.stop()  # a job whose channel was never recorded: start over
        spec.home_dir.mkdir(parents=True, exist_ok=True)
        ca = channel_ca.ChannelCA.load_or_create(Path(spec.backend["channel_ca_file"]))
        run = channel_ca.new_run()
        leaf = ca.issue(
            channel_ca.run_name(spec.workspace_id, run), float(spec.backend.get("channel_cert_days", 14))
        )
        done = await asyncio.to_thread(self._slurm, *self.sbatch_args(), stdin=self.batch_script(leaf))
        if done.returncode != 0:
            raise Unavailable(f"sbatch refused the workspace job: {done.stderr.strip()[-300:]}")
        self.job_id = done.stdout.strip().split(";")[0]
        self.channel = {"run": run}
        host, port = await asyncio.to_thread(self._wait_reported, 600)
        self.channel.update(host=host, port=port)
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        spec = self.spec
        await jupyter.wait_ready(self._upstream(), spec.base_url, spec.jupyter_token, 120, self._alive)

    def _wait_reported(self, timeout: float) -> tuple[str, int]:
        """The node's address and the port the job reported once its JupyterLab answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = job_info(self.job_id or "", self.conf)
            state = info.get("JobState") if info else None
            if state not in LIVE:
                log = str(self.log_path()).replace("%j", self.job_id or "")
                where = f" (the job's log: {info.get('BatchHost')}:{log})" if info else ""
                raise Unavailable(f"the workspace's Slurm job ended ({state}) while starting{where}")
            comment = (info or {}).get("Comment", "")
            if comment.startswith(PORT_COMMENT) and (info or {}).get("BatchHost"):
                host = node_address(info["BatchHost"], self.conf) or info["BatchHost"]  # type: ignore[index]
                return host, int(comment.removeprefix(PORT_COMMENT))
            time.sleep(0.5)
        raise Unavailable(f"the workspace's Slurm job did not report its channel within {timeout:.0f} s")

    async def stop(self) -> None:
        if self.job_id:
            state = await asyncio.to_thread(self._state)
            if state == "SUSPENDED":  # a suspended job gets the signal only once resumed
                await asyncio.to_thread(self._slurm, "scontrol", "resume", self.job_id)
            if state is not None:
                await asyncio.to_thread(self._slurm, "scancel", self.job_id)
            for _ in range(300):
                if await asyncio.to_thread(self._state) not in (*LIVE, *PAUSED, "COMPLETING"):
                    break
                await asyncio.sleep(0.2)
            else:
                raise Unavailable(f"Slurm job {self.job_id} did not end within 60 s of scancel")
        self.channel = {}  # the run's certificate is refused from now on (channel_gateway)

    async def pause(self) -> None:
        await self._control("suspend")

    async def resume(self) -> None:
        await self._control("resume")

    async def _control(self, verb: str) -> None:
        if not self.job_id:
            raise Unavailable("the workspace has no Slurm job")
        done = await asyncio.to_thread(self._slurm, "scontrol", verb, self.job_id)
        if done.returncode != 0:
            raise Unavailable(f"scontrol {verb} {self.job_id} failed: {done.stderr.strip()[-300:]}")
