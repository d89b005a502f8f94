"""The node's end of the channel, run by the workspace's Slurm job beside the sandbox.

Two relays, both TLS 1.3 with the run's certificate from the installation CA:

- **in** (platform -> JupyterLab): a TCP listener on the first free port of the configured
  range. A connection is accepted only from a certificate of the installation CA naming the
  platform (``channel_ca.PLATFORM_NAME``); anything else (no certificate, another CA, a
  workspace's certificate) is closed before a byte reaches JupyterLab. Accepted connections
  are piped to JupyterLab's Unix socket (pinned: the sandbox cannot redirect it), so HTTP and
  WebSockets pass unchanged.
- **out** (workspace SDK -> platform): the Unix socket the sandbox sees as
  ``/run/datalibrary/api.sock``; each connection is piped over TLS to the platform's gateway,
  which accepts this run's certificate only while the workspace runs.

Why the node listens for the proxy (and dials out for the SDK): every replica of the
platform can then reach the workspace (the address is in the database), the node needs no
state about replicas, and a site's firewall opens exactly one range towards the nodes
(from the platform) and one port towards the platform (from the nodes), as batchspawner's
deployments already do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl
from pathlib import Path

from datalibrary.errors import Unavailable
from datalibrary.workspaces import channel_ca, paths

CHUNK = 256 * 1024
HANDSHAKE_SECONDS = 10


def parse_ports(text: str) -> range:
    """``"40000-40999"`` (or one port) as a range; refuses anything else clearly."""
    low, sep, high = text.partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise ValueError(f"port range '{text}' is not 'FIRST-LAST' (e.g. 40000-40999)") from None
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"port range '{text}' must lie within 1024-65535, first <= last")
    return range(first, last + 1)


def split_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address '{text}' is not HOST:PORT")
    return host.strip("[]"), int(port)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close (TLS has no half-close: close instead)."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


async def splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
    for each in (writer, upstream_writer):
        with contextlib.suppress(Exception):
            each.close()


UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 40\r\n\r\nthe platform is not reachable right now\n"
)


class NodeChannel:
    def __init__(
        self,
        leaf: channel_ca.Leaf,
        jupyter_socket: Path,
        api_socket: Path,
        gateway: str,
        ports: str,
        bind: str = "0.0.0.0",  # noqa: S104 - the node's own address(es); TLS + the name check guard it
    ) -> None:
        self.leaf = leaf
        self.jupyter_socket = jupyter_socket
        self.api_socket = api_socket
        self.gateway = split_address(gateway)
        self.ports = parse_ports(ports)
        self.bind = bind
        self.port: int | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._pinned: paths.PinnedSocket | None = None
        self._open: set[asyncio.StreamWriter] = set()  # live connections, closed with the channel
        self.refused = 0

    # --- platform -> JupyterLab ---------------------------------------------------------

    async def listen(self) -> int:
        """Listen on the first free port of the range (from a random start, so jobs sharing
        a node rarely collide); returns it."""
        context = channel_ca.server_context(self.leaf)
        ports = list(self.ports)
        start = random.randrange(len(ports))  # noqa: S311 - spreading, not secrecy
        for port in ports[start:] + ports[:start]:
            try:
                server = await asyncio.start_server(
                    self._inbound, self.bind, port, ssl=context,
                    ssl_handshake_timeout=HANDSHAKE_SECONDS, reuse_address=False,
                )  # fmt: skip
            except OSError:
                continue
            self._servers.append(server)
            self.port = port
            return port
        raise OSError(f"no free port in {self.ports.start}-{self.ports.stop - 1} on this node")

    async def _inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if channel_ca.peer_name(writer.get_extra_info("ssl_object")) != channel_ca.PLATFORM_NAME:
            self.refused += 1
            writer.close()
            return
        try:
            address = self._jupyter_address()
            upstream = await asyncio.open_unix_connection(address)
        except (OSError, Unavailable):
            if self._pinned is not None:  # gone: find it again next time
                self._pinned.close()
                self._pinned = None
            writer.write(UNAVAILABLE)
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()
            return
        await self._tracked(reader, writer, *upstream)

    async def _tracked(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
    ) -> None:
        self._open.update((writer, upstream_writer))
        try:
            await splice(reader, writer, upstream_reader, upstream_writer)
        finally:
            self._open.difference_update((writer, upstream_writer))

    def _jupyter_address(self) -> str:
        """JupyterLab's socket, pinned by inode once found (``paths.PinnedSocket``): the
        sandbox owns the directory and could swap in a link to another socket of the node."""
        if self._pinned is None:
            self._pinned = paths.PinnedSocket(self.jupyter_socket)
        return self._pinned.address

    # --- workspace SDK -> platform ------------------------------------------------------

    async def relay_api(self) -> None:
        """The Unix socket the sandbox's SDK and forwarder connect to."""
        context = channel_ca.client_context(self.leaf)
        self.api_socket.parent.mkdir(parents=True, exist_ok=True)
        self.api_socket.unlink(missing_ok=True)

        async def outbound(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            host, port = self.gateway
            try:
                upstream = await asyncio.wait_for(
                    asyncio.open_connection(
                        host, port, ssl=context, server_hostname=channel_ca.PLATFORM_NAME,
                        ssl_handshake_timeout=HANDSHAKE_SECONDS,
                    ),
                    HANDSHAKE_SECONDS + 5,
                )  # fmt: skip
            except (OSError, TimeoutError, ssl.SSLError):
                writer.write(UNAVAILABLE)
                with contextlib.suppress(Exception):
                    await writer.drain()
                writer.close()
                return
            await self._tracked(reader, writer, *upstream)

        server = await asyncio.start_unix_server(outbound, path=str(self.api_socket))
        # the sandbox's unprivileged uid connects; every request still carries its token
        os.chmod(self.api_socket, 0o666)  # noqa: S103
        self._servers.append(server)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._open):
            writer.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._servers.clear()
        if self._pinned is not None:
            self._pinned.close()
            self._pinned = None
        self.api_socket.unlink(missing_ok=True)
