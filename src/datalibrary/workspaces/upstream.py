"""How the platform reaches a workspace's JupyterLab: the proxy (HTTP and WebSockets), the
readiness wait and the idle checker all go through one of these.

- ``UnixUpstream``: JupyterLab's Unix socket in the workspace's run directory on this host
  (the ``sandbox`` and ``process`` provisioners), pinned by inode (``paths.PinnedSocket``).
- ``TlsUpstream``: the workspace's node over the authenticated channel (``channel_node``):
  TCP to the address the provisioner recorded, TLS 1.3 with this replica's platform
  certificate, and the peer must present exactly the current run's certificate name. The
  HTTP requests keep their own Host header (JupyterLab's origin checks see the same values
  as on one host); only the transport changes.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Protocol

import httpx
from websockets.asyncio.client import ClientConnection, connect, unix_connect

from datalibrary.config import Settings
from datalibrary.workspaces import channel_ca, paths


class Upstream(Protocol):
    identity: tuple[Any, ...]  # equal while the same JupyterLab is behind it

    def transport(self) -> httpx.AsyncBaseTransport: ...

    async def websocket(self, host: str, target: str, **kwargs: Any) -> ClientConnection: ...

    def close(self) -> None: ...


class UnixUpstream:
    def __init__(self, socket: Path) -> None:
        self.pinned = paths.PinnedSocket(socket)
        self.identity: tuple[Any, ...] = ("unix", *self.pinned.identity)

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport(uds=self.pinned.address)

    async def websocket(self, host: str, target: str, **kwargs: Any) -> ClientConnection:
        return await unix_connect(self.pinned.address, f"ws://{host or 'workspace'}{target}", **kwargs)

    def close(self) -> None:
        self.pinned.close()


class _ToNode(httpx.AsyncBaseTransport):
    """Sends every request to the node over TLS, expecting ``name`` in its certificate;
    the request's URL (and so its Host header) is what the caller built."""

    def __init__(self, host: str, port: int, name: str, context: ssl.SSLContext) -> None:
        self.host, self.port, self.name = host, port, name
        self.inner = httpx.AsyncHTTPTransport(verify=context)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="https", host=self.host, port=self.port)
        request.extensions = {**request.extensions, "sni_hostname": self.name}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class TlsUpstream:
    def __init__(self, host: str, port: int, name: str, context: ssl.SSLContext) -> None:
        self.host, self.port, self.name, self.context = host, port, name, context
        self.identity = ("tls", host, port, name)

    def transport(self) -> httpx.AsyncBaseTransport:
        return _ToNode(self.host, self.port, self.name, self.context)

    async def websocket(self, host: str, target: str, **kwargs: Any) -> ClientConnection:
        return await connect(
            f"wss://{host or 'workspace'}{target}", host=self.host, port=self.port,
            ssl=self.context, server_hostname=self.name, **kwargs,
        )  # fmt: skip

    def close(self) -> None:
        pass


def channel_of(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """The channel a provisioner recorded (run, host, port), when the workspace has one."""
    channel = (state or {}).get("channel")
    if isinstance(channel, dict) and channel.get("host") and channel.get("port") and channel.get("run"):
        return channel
    return None


def for_workspace(settings: Settings, workspace_id: int, state: dict[str, Any] | None) -> Upstream:
    """The way to workspace ``workspace_id``'s JupyterLab, from its provisioner state."""
    channel = channel_of(state)
    if channel is None:
        return UnixUpstream(paths.socket_path(settings, workspace_id))
    context = channel_ca.platform_identity(Path(str(settings.workspaces.channel_ca_file))).client()
    return TlsUpstream(
        str(channel["host"]),
        int(channel["port"]),
        channel_ca.run_name(workspace_id, str(channel["run"])),
        context,
    )
