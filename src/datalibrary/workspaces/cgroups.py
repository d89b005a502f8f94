"""Control groups behind one small interface: cgroup v1 (one hierarchy per controller) or v2.

A workspace gets its own group with a CPU quota and a memory limit; pausing freezes the
group (every process stops at once, memory is kept). The host decides the version: v2 when
``/sys/fs/cgroup/cgroup.controllers`` exists and offers cpu and memory, otherwise v1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from abc import ABC, abstractmethod
from pathlib import Path

from datalibrary.errors import Unavailable

ROOT = Path("/sys/fs/cgroup")
PARENT = "datalibrary"
CPU_PERIOD_US = 100_000


class CGroup(ABC):
    """One workspace's group; ``name`` is unique per workspace."""

    version: int

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def create(self, cpus: float, memory_bytes: int, max_processes: int = 1024) -> None: ...

    @abstractmethod
    def procs_files(self) -> list[Path]:
        """Files a launcher writes its pid into to join the group (before exec)."""

    @abstractmethod
    def pids(self) -> list[int]: ...

    @abstractmethod
    def freeze(self, frozen: bool) -> None: ...

    @abstractmethod
    def is_frozen(self) -> bool: ...

    @abstractmethod
    def cpu_seconds(self) -> float: ...

    @abstractmethod
    def memory_bytes(self) -> int: ...

    @abstractmethod
    def remove(self) -> None: ...

    def exists(self) -> bool:
        return all(path.parent.is_dir() for path in self.procs_files())

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process of the group (thawed first, or the kill waits)."""
        if not self.exists():
            return
        if self.is_frozen():
            self.freeze(False)
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []


class CGroupV1(CGroup):
    version = 1
    CONTROLLERS = ("cpu", "cpuacct", "memory", "freezer", "pids")

    def _dir(self, controller: str) -> Path:
        base = ROOT / controller
        # cpu and cpuacct are often one hierarchy mounted twice (cpu,cpuacct)
        return base / PARENT / self.name

    def create(self, cpus: float, memory_bytes: int, max_processes: int = 1024) -> None:
        for controller in self.CONTROLLERS:
            self._dir(controller).mkdir(parents=True, exist_ok=True)
        # processes and threads: a fork loop stops here instead of exhausting the host's PIDs
        _write(self._dir("pids") / "pids.max", str(max_processes))
        memory = self._dir("memory")
        _write(memory / "memory.limit_in_bytes", str(memory_bytes))
        swap_limit = memory / "memory.memsw.limit_in_bytes"
        if swap_limit.exists():  # no swapping around the limit
            _write(swap_limit, str(memory_bytes))
        cpu = self._dir("cpu")
        _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", str(int(cpus * CPU_PERIOD_US)))

    def procs_files(self) -> list[Path]:
        return [self._dir(c) / "cgroup.procs" for c in self.CONTROLLERS]

    def pids(self) -> list[int]:
        return _read_pids(self._dir("memory") / "cgroup.procs")

    def freeze(self, frozen: bool) -> None:
        state = self._dir("freezer") / "freezer.state"
        _write(state, "FROZEN" if frozen else "THAWED")
        wanted = "FROZEN" if frozen else "THAWED"
        deadline = time.monotonic() + 5
        while state.read_text().strip() != wanted and time.monotonic() < deadline:
            time.sleep(0.005)

    def is_frozen(self) -> bool:
        try:
            return (self._dir("freezer") / "freezer.state").read_text().strip() in ("FROZEN", "FREEZING")
        except FileNotFoundError:
            return False

    def cpu_seconds(self) -> float:
        try:
            return int((self._dir("cpuacct") / "cpuacct.usage").read_text()) / 1e9
        except FileNotFoundError:
            return 0.0

    def memory_bytes(self) -> int:
        try:
            return int((self._dir("memory") / "memory.usage_in_bytes").read_text())
        except FileNotFoundError:
            return 0

    def remove(self) -> None:
        for controller in self.CONTROLLERS:
            with contextlib.suppress(FileNotFoundError, OSError):
                self._dir(controller).rmdir()


class CGroupV2(CGroup):
    version = 2

    @property
    def _dir(self) -> Path:
        return ROOT / PARENT / self.name

    def create(self, cpus: float, memory_bytes: int, max_processes: int = 1024) -> None:
        parent = ROOT / PARENT
        parent.mkdir(exist_ok=True)
        _write(ROOT / "cgroup.subtree_control", "+cpu +memory +pids")
        _write(parent / "cgroup.subtree_control", "+cpu +memory +pids")
        self._dir.mkdir(exist_ok=True)
        _write(self._dir / "memory.max", str(memory_bytes))
        swap = self._dir / "memory.swap.max"
        if swap.exists():
            _write(swap, "0")
        _write(self._dir / "cpu.max", f"{int(cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
        _write(self._dir / "pids.max", str(max_processes))

    def procs_files(self) -> list[Path]:
        return [self._dir / "cgroup.procs"]

    def pids(self) -> list[int]:
        return _read_pids(self._dir / "cgroup.procs")

    def freeze(self, frozen: bool) -> None:
        _write(self._dir / "cgroup.freeze", "1" if frozen else "0")
        deadline = time.monotonic() + 5
        while self.is_frozen() != frozen and time.monotonic() < deadline:
            time.sleep(0.005)

    def is_frozen(self) -> bool:
        try:
            for line in (self._dir / "cgroup.events").read_text().splitlines():
                if line.startswith("frozen "):
                    return line.split()[1] == "1"
        except FileNotFoundError:
            pass
        return False

    def cpu_seconds(self) -> float:
        try:
            for line in (self._dir / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        except FileNotFoundError:
            pass
        return 0.0

    def memory_bytes(self) -> int:
        try:
            return int((self._dir / "memory.current").read_text())
        except FileNotFoundError:
            return 0

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self._dir.rmdir()


def host_version() -> int | None:
    """2 for a unified hierarchy with cpu and memory, 1 for v1 controllers, None if neither."""
    controllers = ROOT / "cgroup.controllers"
    if controllers.exists():
        offered = set(controllers.read_text().split())
        if {"cpu", "memory"} <= offered:
            return 2
    if all((ROOT / c).is_dir() for c in CGroupV1.CONTROLLERS) and os.access(ROOT / "memory", os.W_OK):
        return 1
    return None


def cgroup_for(name: str) -> CGroup:
    version = host_version()
    if version == 2:
        return CGroupV2(name)
    if version == 1:
        return CGroupV1(name)
    raise Unavailable(
        "no writable cgroup hierarchy with cpu and memory controllers; run as root on a host "
        "with cgroup v1 or v2, or use the 'process' provisioner (no isolation)"
    )
