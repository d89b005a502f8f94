"""The ``slurm`` provisioner: a workspace is a Slurm job running the same sandbox on a node.

``start`` submits a batch job (``sbatch``) sized from the instance type (CPUs, memory, GPUs
as GRES); the job runs ``python -m datalibrary.workspaces.slurm_job SPEC`` on the node, which
starts the bubblewrap sandbox exactly as the ``sandbox`` provisioner does (own cgroup with the
instance type's limits, no network) and lives as long as JupyterLab does. ``stop`` is
``scancel`` (the job stops the sandbox on SIGTERM); ``pause``/``resume`` are ``scontrol
suspend``/``resume`` (SIGSTOP/SIGCONT of every process of the job). The job id is the whole
provisioner state, so a restarted platform re-adopts the workspace with ``scontrol show job``.
Usage intervals come from the job's own StartTime/EndTime (``run_times``).

What the node needs: the same DataLibrary installation (the job runs this Python), bubblewrap,
and the platform's state directory on shared storage (the workspace's home, its run
directory with JupyterLab's socket, the shared environments). The Slurm commands read
``SLURM_CONF`` from ``workspaces.slurm_conf`` when set; ``workspaces.slurm_partition`` picks
the partition.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datalibrary.errors import Unavailable
from datalibrary.workspaces import jupyter
from datalibrary.workspaces.provisioners import Capabilities, Provisioner, Status, WorkspaceSpec

SPEC_FILE = "slurm-spec.json"
# Slurm job states -> our status (COMPLETING and every final state are STOPPED).
LIVE = {"PENDING": Status.RUNNING, "CONFIGURING": Status.RUNNING, "RUNNING": Status.RUNNING}
PAUSED = {"SUSPENDED": Status.PAUSED}


def slurm_env(conf: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if conf:
        env["SLURM_CONF"] = conf
    return env


def _run(*args: str, conf: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603
            list(args), env=slurm_env(conf), capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise Unavailable(
            f"'{args[0]}' is not installed: install Slurm's client tools (slurm-client)"
        ) from None


def job_info(job_id: str, conf: str | None = None) -> dict[str, str] | None:
    """``scontrol show job -o`` as a dict, or None when Slurm no longer knows the job."""
    done = _run("scontrol", "show", "job", "-o", job_id, conf=conf)
    if done.returncode != 0 or "JobId=" not in done.stdout:
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
        self.conf = spec.backend.get("slurm_conf")
        self.partition = spec.backend.get("slurm_partition")

    def _slurm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(*args, conf=self.conf)

    def get_state(self) -> dict[str, Any]:
        return {"job_id": self.job_id} if self.job_id else {}

    def load_state(self, state: dict[str, Any]) -> None:
        self.job_id = state.get("job_id")

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
            f"--output={spec.run_dir.parent / f'{spec.run_dir.name}.slurm.log'}",
            f"--chdir={spec.run_dir.parent}",
        ]
        if self.partition:
            args.append(f"--partition={self.partition}")
        spec_file = spec.run_dir.parent / f"{spec.run_dir.name}.{SPEC_FILE}"
        args.append(f"--wrap=exec {sys.executable} -m datalibrary.workspaces.slurm_job {spec_file}")
        return args

    def _write_spec(self) -> None:
        spec = self.spec
        spec.run_dir.parent.mkdir(parents=True, exist_ok=True)
        path = spec.run_dir.parent / f"{spec.run_dir.name}.{SPEC_FILE}"
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(spec).items()}
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds the Jupyter token
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)

    def _alive(self) -> bool:
        return self._state() in LIVE

    async def start(self) -> None:
        spec = self.spec
        if await asyncio.to_thread(self._alive):
            await jupyter.wait_ready(spec.socket_path, spec.base_url, spec.jupyter_token, 300, self._alive)
            return
        for directory in (spec.home_dir, spec.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        spec.socket_path.unlink(missing_ok=True)
        self._write_spec()
        done = await asyncio.to_thread(self._slurm, *self.sbatch_args())
        if done.returncode != 0:
            raise Unavailable(f"sbatch refused the workspace job: {done.stderr.strip()[-300:]}")
        self.job_id = done.stdout.strip().split(";")[0]
        log = spec.run_dir.parent / f"{spec.run_dir.name}.slurm.log"
        await jupyter.wait_ready(spec.socket_path, spec.base_url, spec.jupyter_token, 600, self._alive, log)

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
        self.spec.socket_path.unlink(missing_ok=True)

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
