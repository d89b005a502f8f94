"""What a workspace's Slurm job runs on the node: the sandbox, until it ends.

``python -m datalibrary.workspaces.slurm_job SPEC.json`` starts the same bubblewrap sandbox
as the ``sandbox`` provisioner (its own cgroup with the instance type's limits, no network)
and waits while it runs. On SIGTERM (``scancel``) it stops the sandbox and exits, so a
cancelled job leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from datalibrary.workspaces.provisioners import Status, WorkspaceSpec
from datalibrary.workspaces.sandbox import SandboxProvisioner

PATH_FIELDS = ("environment_dir", "home_dir", "run_dir", "sdk_dir", "api_socket_dir")


def load_spec(path: Path) -> WorkspaceSpec:
    data = json.loads(path.read_text())
    for name in PATH_FIELDS:
        data[name] = Path(data[name])
    return WorkspaceSpec(**data)


async def run(spec: WorkspaceSpec) -> int:
    sandbox = SandboxProvisioner(spec)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await sandbox.start()
    print(f"workspace {spec.workspace_id}: JupyterLab ready", flush=True)
    while not stopping.is_set():
        if await sandbox.poll() == Status.STOPPED:
            print(f"workspace {spec.workspace_id}: JupyterLab exited", flush=True)
            return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 2)
    await sandbox.stop()
    print(f"workspace {spec.workspace_id}: stopped", flush=True)
    return 0


def main() -> None:
    sys.exit(asyncio.run(run(load_spec(Path(sys.argv[1])))))


if __name__ == "__main__":
    main()
