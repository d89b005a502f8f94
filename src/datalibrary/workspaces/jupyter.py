"""Talking to a workspace's JupyterLab over its Unix socket (or, for a workspace on a node,
the authenticated channel: ``upstream``): the command line that starts it, readiness, and
the activity signals idle detection combines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from datalibrary.errors import Unavailable
from datalibrary.workspaces import paths
from datalibrary.workspaces.upstream import UnixUpstream, Upstream

# JupyterLab trusts requests carrying this secret (the platform's proxy); see
# inside/datalibrary_jupyter.py. The secret goes in through this environment variable.
SECRET_ENV = "DATALIBRARY_PROXY_SECRET"  # noqa: S105 - a name, not a secret
SECRET_HEADER = "X-DataLibrary-Proxy"  # noqa: S105 - a name, not a secret
VIA_HEADER = "X-DataLibrary-Via"
IDENTITY_PROVIDER = "datalibrary_jupyter.ProxyIdentityProvider"
EXTENSION = "datalibrary_jupyter"
POOL_ENV = "DATALIBRARY_POOL"
LAUNCHER = "datalibrary_lab.py"  # python -m jupyterlab, minus a slow step (in the staged SDK)
ASSIGN_PATH = "_dl/assign"


def proxy_headers(secret: str, via: str) -> dict[str, str]:
    """What the platform adds to every request it forwards: ``via`` is browser or token (and
    platform for its own control calls, which the proxy never forwards)."""
    return {SECRET_HEADER: secret, VIA_HEADER: via}


def jupyter_command(
    python: str, socket: str, base_url: str, root_dir: str, sdk_dir: str, allow_root: bool = False
) -> list[str]:
    """JupyterLab on a Unix socket only (no TCP port), with no token of its own: it trusts the
    platform's proxy secret (from ``DATALIBRARY_PROXY_SECRET``) and nothing else. ``sdk_dir``
    is the staged SDK as the workspace sees it, whose ``labextensions/`` holds the platform's
    JupyterLab plugins (``paths.staged_sdk``)."""
    return [
        python,
        # Only the platform's code and the environment's on the server's sys.path; the user's
        # stays on the kernels' and terminals' (they inherit PYTHONPATH, which -E ignores for
        # this process only). -E: not PYTHONPATH, whose ~/.local site-packages would shadow
        # the environment's (a "pip install --user" of another tornado or jupyterlab would
        # break the server, a sitecustomize.py there would run in it); -s: no user site; by
        # path, not "-m": "-m" puts the working directory, the home, first on sys.path. The
        # launcher's own directory, the staged SDK, comes first instead.
        "-E",
        "-s",
        f"{sdk_dir}/{LAUNCHER}",
        "--no-browser",
        f"--ServerApp.sock={socket}",
        "--ServerApp.sock_mode=0600",
        f"--ServerApp.base_url={base_url}",
        f"--ServerApp.root_dir={root_dir}",
        # reached only through the platform's authenticated proxy, which sends the secret
        "--ServerApp.allow_remote_access=True",
        f"--ServerApp.identity_provider_class={IDENTITY_PROVIDER}",
        # the same module: the warm pool's assignment endpoint (inert outside a pool sandbox)
        f"--ServerApp.jpserver_extensions={EXTENSION}=True",
        "--ServerApp.shutdown_no_activity_timeout=0",
        "--LanguageServerManager.autodetect=False",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.extra_labextensions_path={sdk_dir}/{paths.LABEXTENSIONS}",
        # what JupyterLab writes stays in the home's ~/.jupyter (the server starts with the
        # platform's configuration directory; see inside/datalibrary_lab.py)
        f"--LabApp.user_settings_dir={root_dir}/.jupyter/lab/user-settings",
        f"--LabApp.workspaces_dir={root_dir}/.jupyter/lab/workspaces",
        f"--ConfigManager.read_config_path={root_dir}/.jupyter/serverconfig",
        f"--ConfigManager.write_config_dir={root_dir}/.jupyter/serverconfig",
        *(["--allow-root"] if allow_root else []),
    ]


def client(
    socket: Path | Upstream | Callable[[], Upstream], token: str, timeout: float = 5.0
) -> httpx.AsyncClient:
    """A client of the JupyterLab behind ``socket``: a Unix socket path is connected through a
    pinned, symlink-safe handle (``paths.PinnedSocket``), so a link planted by the sandbox is
    never followed; an ``upstream.Upstream`` (a workspace on a node) brings its own transport
    (or a function making one, called here so that its errors count as "not reachable")."""
    if isinstance(socket, Path):
        target: Upstream = UnixUpstream(socket)
    else:
        target = socket() if callable(socket) else socket
    http = httpx.AsyncClient(
        transport=target.transport(),
        base_url="http://workspace",
        headers=proxy_headers(token, "token"),
        timeout=timeout,
    )
    http._pinned = target  # type: ignore[attr-defined]  # kept open as long as the client
    return http


async def wait_ready(
    socket: Path | Upstream | Callable[[], Upstream],
    base_url: str,
    token: str,
    timeout: float,
    alive: Callable[[], bool],
    log: Path | None = None,
) -> None:
    """Return once JupyterLab answers ``/api/status``; fail fast when the process died."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if not alive():
            raise Unavailable(f"the workspace exited while starting{_tail(log)}")
        try:
            async with client(socket, token, timeout=2) as http:
                response = await http.get(f"{base_url}api/status")
            if response.status_code == 200:
                return
        except (httpx.TransportError, OSError, Unavailable):
            pass
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.1)  # a refused connect costs microseconds: ask often
    raise Unavailable(f"JupyterLab did not become ready within {timeout:.0f} s{_tail(log)}")


async def assign(socket: Path, base_url: str, secret: str, env: dict[str, str]) -> None:
    """Hand a waiting pool sandbox its user's variables (the token); it accepts this once."""
    async with client(socket, secret) as http:
        response = await http.post(
            f"{base_url}{ASSIGN_PATH}", json={"env": env}, headers=proxy_headers(secret, "platform")
        )
    if response.status_code != 204:
        raise Unavailable(f"the pool sandbox refused its assignment (HTTP {response.status_code})")


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    lines = log.read_text(errors="replace").strip().splitlines()[-3:]
    return (": " + " | ".join(lines))[:600] if lines else ""


@dataclass(frozen=True)
class Activity:
    """What JupyterLab reports: any of these means someone or something is working."""

    busy_kernels: int
    connections: int
    terminals: int
    last_activity: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "busy_kernels": self.busy_kernels,
            "connections": self.connections,
            "terminals": self.terminals,
            "last_activity": self.last_activity.isoformat() if self.last_activity else None,
        }


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


async def activity(
    socket: Path | Upstream | Callable[[], Upstream], base_url: str, token: str
) -> Activity | None:
    """Kernel execution states, open connections, terminals and the last activity; None if unreachable."""
    try:
        async with client(socket, token) as http:
            status = (await http.get(f"{base_url}api/status")).json()
            # jupyter-server counts every API request as activity unless told not to: without
            # this the check itself kept every workspace "active" and none was ever idle-stopped
            quiet = {"no_track_activity": "1"}
            kernels = (await http.get(f"{base_url}api/kernels", params=quiet)).json()
            terminals = (await http.get(f"{base_url}api/terminals", params=quiet)).json()
    except (httpx.HTTPError, OSError, ValueError, Unavailable):
        return None
    times = [_parse_time(status.get("last_activity"))]
    times += [_parse_time(t.get("last_activity")) for t in terminals if isinstance(t, dict)]
    known = [t for t in times if t is not None]
    return Activity(
        busy_kernels=sum(1 for k in kernels if k.get("execution_state") in ("busy", "starting")),
        connections=int(status.get("connections", 0) or 0),
        terminals=len(terminals),
        last_activity=max(known) if known else None,
    )
