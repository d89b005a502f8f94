"""The platform's end of the workspace -> platform direction of the channel.

Each replica whose workspaces run on other machines (the Slurm provisioner) listens on
``workspaces.channel_listen`` with TLS 1.3. A node connects with its run's certificate; the
connection is accepted only when the certificate was issued by this installation's CA *and*
names the current run of a workspace that is running (``provisioner_state.channel.run`` in
the database, so every replica agrees, and a stopped or terminated workspace's certificate is
refused from that moment: that is the revocation). Accepted connections are piped to the
platform's own API Unix socket, so the SDK's requests are authenticated and authorized by
their workspace token exactly as on one host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path

from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.workspaces import channel_ca
from datalibrary.workspaces.channel_node import HANDSHAKE_SECONDS, splice, split_address
from datalibrary.workspaces.models import Workspace

log = logging.getLogger(__name__)
# a workspace's SDK may be used while these are under way (not while stopped or starting over)
SERVING = ("running", "pausing", "paused", "resuming", "stopping")


def current_run(db: Database, workspace_id: int, run: str) -> bool:
    """Is ``run`` the running channel of workspace ``workspace_id``?"""
    with db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None or workspace.state not in SERVING:
            return False
        channel = (workspace.provisioner_state or {}).get("channel") or {}
        return bool(channel.get("run")) and channel.get("run") == run


class Gateway:
    def __init__(self, settings: Settings, db: Database, api_socket: Path) -> None:
        self.settings = settings
        self.db = db
        self.api_socket = api_socket
        self.host, self.port = split_address(settings.workspaces.channel_listen)
        self.identity = channel_ca.platform_identity(Path(str(settings.workspaces.channel_ca_file)))
        self._server: asyncio.base_events.Server | None = None
        self.accepted = 0
        self.refused = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, ssl=self.identity.server(),
            ssl_handshake_timeout=HANDSHAKE_SECONDS,
        )  # fmt: skip
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = channel_ca.peer_name(writer.get_extra_info("ssl_object"))
        parsed = channel_ca.parse_run_name(name or "")
        allowed = parsed is not None and await asyncio.to_thread(current_run, self.db, *parsed)
        if not allowed:
            self.refused += 1
            why = "not a current workspace run" if parsed else "not a workspace's certificate"
            log.warning("workspace channel: refused %s (%s)", writer.get_extra_info("peername"), why)
            writer.close()
            return
        try:
            upstream = await asyncio.open_unix_connection(str(self.api_socket))
        except OSError:
            writer.close()
            return
        self.accepted += 1
        await splice(reader, writer, *upstream)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None


class GatewayThread:
    """The gateway on its own event loop in a daemon thread (``datalibrary up``, tests)."""

    def __init__(self, settings: Settings, db: Database, api_socket: Path) -> None:
        self.gateway = Gateway(settings, db, api_socket)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="workspace-gateway", daemon=True)

    def __enter__(self) -> GatewayThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.gateway.start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.gateway.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def needed(settings: Settings) -> bool:
    return settings.workspaces.provisioner == "slurm"
