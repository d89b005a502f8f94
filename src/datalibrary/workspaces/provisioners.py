"""The provisioner contract (after JupyterHub's Spawner) and the registry of backends.

A provisioner runs one workspace. It is created from a ``WorkspaceSpec`` and, for an existing
workspace, the JSON it returned from ``get_state`` last time (kept in the database), so a
restarted platform re-adopts running workspaces: ``load_state`` then ``poll``.

Backends are named by short name and imported lazily; each declares what it enforces
(``Capabilities``), and a product that requires a limit the backend cannot enforce is refused.
Pausing is a separate, optional protocol (``Pausable``).
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from datalibrary import plugins
from datalibrary.errors import InvalidInput, Unavailable


class Status(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Capabilities:
    """What a backend enforces; a product's ``requires`` must be a subset."""

    memory: bool = False
    cpu: bool = False
    network_isolation: bool = False
    gpu: bool = False

    def enforced(self) -> set[str]:
        return {name for name, on in vars(self).items() if on}

    def missing(self, required: list[str]) -> list[str]:
        return sorted(set(required) - self.enforced())


@dataclass(frozen=True)
class WorkspaceSpec:
    """Everything a backend needs to run one workspace (no database access)."""

    workspace_id: int
    owner: str
    cpus: float
    memory_bytes: int
    environment_dir: Path  # the built, shared, read-only environment
    home_dir: Path  # persistent
    run_dir: Path  # shared with the platform: JupyterLab's socket lives here
    sdk_dir: Path  # the DataLibrary SDK, put on the kernel's PYTHONPATH
    api_socket_dir: Path  # the platform's API socket directory
    base_url: str  # /workspaces/<id>/
    jupyter_token: str
    env: dict[str, str] = field(default_factory=dict)  # DATALIBRARY_* for the SDK
    # Distinguishes installations sharing a host (cgroup names, ...).
    installation: str = "default"
    # Backend settings (e.g. slurm_conf, slurm_partition), strings only.
    backend: dict[str, str] = field(default_factory=dict)
    max_processes: int = 1024  # processes + threads (cgroup pids.max)
    host_uid: int | None = None  # the sandbox's unprivileged host uid (None: the platform's own)
    # A warm-pool member: starts with an empty home and no token; a launch assigns it later.
    pooled: bool = False

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "jupyter.sock"


class Provisioner(ABC):
    """Runs one workspace. All methods are async and safe to call again (idempotent)."""

    name: str
    capabilities: Capabilities
    isolated: bool

    def __init__(self, spec: WorkspaceSpec) -> None:
        self.spec = spec

    @abstractmethod
    async def start(self) -> None:
        """Start the workspace and return once JupyterLab answers on ``spec.socket_path``."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop every process of the workspace; the home directory stays."""

    @abstractmethod
    async def poll(self) -> Status:
        """The actual status. Before the first start it is STOPPED; after a platform restart,
        with the state given to ``load_state``, it is what is really running."""

    @abstractmethod
    def get_state(self) -> dict[str, Any]:
        """JSON-serializable state the database keeps between calls and restarts."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None: ...

    def cpu_seconds(self) -> float | None:
        """CPU time used so far (for idle detection); None when the backend cannot tell."""
        return None

    def memory_bytes(self) -> int | None:
        return None


@runtime_checkable
class Pausable(Protocol):
    async def pause(self) -> None: ...

    async def resume(self) -> None: ...


ENTRY_POINTS = plugins.PROVISIONERS  # pyproject.toml lists the built-in ones; a plugin adds its own
PLANNED = {
    "kubernetes": "the Kubernetes provisioner is not available yet; use 'sandbox', 'process' or 'slurm'"
}


def backends() -> dict[str, EntryPoint]:
    """The installed provisioners by short name (the package's own and any plugin's)."""
    return plugins.installed(ENTRY_POINTS)


def provisioner_class(name: str) -> type[Provisioner]:
    """Resolve a backend by short name, importing it only now; what it names must be a
    ``Provisioner`` (a plugin that registers anything else is refused, not run)."""
    if name in PLANNED:
        raise Unavailable(PLANNED[name])
    try:
        return plugins.load(ENTRY_POINTS, name, Provisioner)
    except LookupError as exc:
        raise InvalidInput(f"unknown provisioner '{name}'; {exc}") from exc
    except TypeError as exc:
        raise Unavailable(f"provisioner {exc}") from exc
    except ImportError as exc:
        raise Unavailable(f"provisioner '{name}' cannot be loaded ({exc}); install what it names") from exc


def sandbox_possible() -> bool:
    """bubblewrap is installed and we are root (cgroups need it) with user namespaces."""
    return shutil.which("bwrap") is not None and os.geteuid() == 0


def resolve_name(configured: str) -> str:
    if configured == "auto":
        return "sandbox" if sandbox_possible() else "process"
    return configured
