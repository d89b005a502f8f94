"""The ``process`` provisioner: JupyterLab as a plain process group, for laptops and
development. It enforces nothing (no memory or CPU limit, full network): the console labels
its workspaces "not isolated", and products that require a limit are refused."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Any

from datalibrary.workspaces import jupyter, procs
from datalibrary.workspaces.provisioners import Capabilities, Provisioner, Status


class ProcessProvisioner(Provisioner):
    name = "process"
    capabilities = Capabilities()
    isolated = False

    def __init__(self, spec) -> None:  # type: ignore[no-untyped-def]
        super().__init__(spec)
        self.pid: int | None = None
        self.started: int | None = None

    def get_state(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started} if self.pid else {}

    def load_state(self, state: dict[str, Any]) -> None:
        self.pid = state.get("pid")
        self.started = state.get("started")

    def _alive(self) -> bool:
        if self.pid:
            procs.reap(self.pid)
        return procs.is_same_process(self.pid, self.started)

    async def poll(self) -> Status:
        if not self._alive():
            return Status.STOPPED
        return Status.PAUSED if procs.state_letter(self.pid or 0) == "T" else Status.RUNNING

    async def start(self) -> None:
        spec = self.spec
        if self._alive():  # already running (a repeated start): just wait until it answers
            await jupyter.wait_ready(spec.socket_path, spec.base_url, spec.jupyter_token, 60, self._alive)
            return
        for directory in (spec.home_dir, spec.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        spec.socket_path.unlink(missing_ok=True)
        python = str(spec.environment_dir / "venv" / "bin" / "python")
        command = jupyter.jupyter_command(
            python,
            str(spec.socket_path),
            spec.base_url,
            str(spec.home_dir),
            str(spec.sdk_dir),
            allow_root=os.geteuid() == 0,
        )
        env = {
            "HOME": str(spec.home_dir),
            "PATH": f"{spec.environment_dir / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(spec.sdk_dir),
            "R_LIBS": str(spec.sdk_dir / "rlib"),  # library(datalibrary)
            jupyter.SECRET_ENV: spec.jupyter_token,
            **spec.env,
        }
        log_path = spec.run_dir.parent / f"{spec.run_dir.name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(  # noqa: S603
                command,
                cwd=spec.home_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.pid = process.pid
        self.started = procs.start_time(process.pid)
        await jupyter.wait_ready(
            spec.socket_path, spec.base_url, spec.jupyter_token, 60, self._alive, log_path
        )

    async def stop(self) -> None:
        if self.pid and self._alive():
            await asyncio.to_thread(procs.terminate_group, self.pid, 1.5)
        self.pid = None
        self.started = None
        self.spec.socket_path.unlink(missing_ok=True)

    async def pause(self) -> None:
        if self.pid and self._alive():
            procs.signal_group(self.pid, signal.SIGSTOP)

    async def resume(self) -> None:
        if self.pid and self._alive():
            procs.signal_group(self.pid, signal.SIGCONT)

    def cpu_seconds(self) -> float | None:
        if not self.pid or not self._alive():
            return None
        return procs.tree_cpu_seconds(self.pid)
