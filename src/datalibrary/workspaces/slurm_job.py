"""What a workspace's Slurm job runs on the node: the channel and the sandbox, until it ends.

The batch script (``slurm.SlurmProvisioner.batch_script``) runs
``unshare --mount python -m datalibrary.workspaces.slurm_job`` with the job's spec on
standard input. In that private mount namespace the job mounts a fresh tmpfs over
``workspaces.channel_node_run_dir``: the run directory (JupyterLab's socket, the relay's API
socket, the run's key) exists for this job's processes only, not for the node's other users
or jobs, nor for the platform even when it shares the host. Then it

1. starts the node's end of the channel (``channel_node``): the TLS listener for the
   platform and the API relay for the sandbox;
2. starts the same bubblewrap sandbox as the ``sandbox`` provisioner (its own cgroup with the
   instance type's limits, no network), whose ``/run/datalibrary/api.sock`` is the relay;
3. reports the listening port in the job's own ``Comment`` (``scontrol update``), which the
   platform reads with the node's address from ``scontrol show job``/``show node``;

and waits while JupyterLab runs. On SIGTERM (``scancel``) it stops the sandbox and the
channel and exits, so a cancelled job leaves no process behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from datalibrary.workspaces.channel_ca import Leaf
from datalibrary.workspaces.channel_node import NodeChannel
from datalibrary.workspaces.provisioners import Status, WorkspaceSpec
from datalibrary.workspaces.sandbox import SandboxProvisioner

PATH_FIELDS = ("environment_dir", "home_dir", "run_dir", "sdk_dir", "api_socket_dir")


def load(text: str) -> tuple[WorkspaceSpec, dict[str, Any]]:
    """The spec and the channel settings from the script's base64 JSON."""
    data = json.loads(base64.b64decode(text))
    channel = data.pop("channel")
    for name in PATH_FIELDS:
        data[name] = Path(data[name])
    return WorkspaceSpec(**data), channel


def private_run_dir(directory: Path) -> None:
    """Mount a tmpfs over ``directory`` visible only in this job's mount namespace; refuse
    when this process shares its mount namespace with its parent (slurmstepd): the mount
    would then hide the directory node-wide."""
    if os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
        raise SystemExit("slurm_job must run in a private mount namespace (unshare --mount)")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603
        ["mount", "-t", "tmpfs", "-o", "mode=0700,size=64m,nosuid,nodev", "dl-workspace-run", str(directory)],  # noqa: S607
        check=True,
    )


def report_port(port: int) -> None:
    """Tell the platform, through Slurm, where the channel listens."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        raise SystemExit("not inside a Slurm job (SLURM_JOB_ID is unset)")
    subprocess.run(  # noqa: S603
        ["scontrol", "update", f"JobId={job}", f"Comment=dl-port:{port}"],  # noqa: S607
        check=True,
        capture_output=True,
    )


async def run(spec: WorkspaceSpec, channel: dict[str, Any]) -> int:
    private_run_dir(Path(channel["node_run_dir"]))
    tempfile.tempdir = channel["node_run_dir"]  # where the TLS loader briefly sees the run's key
    for directory in (spec.run_dir, spec.api_socket_dir):
        directory.mkdir(parents=True, exist_ok=True)
    node = NodeChannel(
        Leaf(cert_pem=channel["cert"], key_pem=channel["key"], ca_pem=channel["ca"]),
        jupyter_socket=spec.socket_path,
        api_socket=spec.api_socket_dir / "api.sock",
        gateway=channel["gateway"],
        ports=channel["ports"],
    )
    sandbox = SandboxProvisioner(spec)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        port = await node.listen()
        await node.relay_api()
        await sandbox.start()
        await asyncio.to_thread(report_port, port)
        print(f"workspace {spec.workspace_id}: JupyterLab ready, channel on port {port}", flush=True)
        while not stopping.is_set():
            if await sandbox.poll() == Status.STOPPED:
                print(f"workspace {spec.workspace_id}: JupyterLab exited", flush=True)
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 2)
    finally:
        await node.close()
        await sandbox.stop()
    print(f"workspace {spec.workspace_id}: stopped", flush=True)
    return 0


def main() -> None:
    spec, channel = load(sys.stdin.read())
    sys.exit(asyncio.run(run(spec, channel)))


if __name__ == "__main__":
    main()
