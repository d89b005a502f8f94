"""The workspace channel's two ends with real TLS sockets, without Slurm (the Slurm lifecycle
test runs the same code inside a real job): who the node listener lets through to
JupyterLab, and that the platform refuses a node that is not the workspace's current run."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from datalibrary.workspaces import channel_ca
from datalibrary.workspaces.channel_node import NodeChannel, parse_ports
from datalibrary.workspaces.upstream import TlsUpstream
from tests.channel_helpers import attacker_context, foreign_ca, http_get, probe, self_signed

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\njupyter"
)


class Node:
    """A NodeChannel in front of a Unix-socket HTTP server standing in for JupyterLab."""

    def __init__(self, root: Path, leaf: channel_ca.Leaf) -> None:
        self.root = root
        self.leaf = leaf
        self.loop = asyncio.new_event_loop()
        self.requests: list[bytes] = []

    async def _jupyter(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(ANSWER)
        await writer.drain()
        writer.close()

    def __enter__(self) -> Node:
        socket_path = self.root / "jupyter.sock"

        async def start() -> int:
            self.server = await asyncio.start_unix_server(self._jupyter, path=str(socket_path))
            api = self.root / "api" / "api.sock"
            self.channel = NodeChannel(self.leaf, socket_path, api, "127.0.0.1:9", "41500-41599", "127.0.0.1")
            return await self.channel.listen()

        import threading

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.channel.close(), self.loop).result(10)
        self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def ca(tmp_path: Path) -> channel_ca.ChannelCA:
    return channel_ca.ChannelCA.load_or_create(tmp_path / "channel-ca.pem")


@pytest.fixture
def node(tmp_path: Path, ca: channel_ca.ChannelCA) -> Iterator[Node]:
    with Node(tmp_path, ca.issue(channel_ca.run_name(7, "a" * 16), 1)) as running:
        yield running


def test_ca_file_is_private_and_reused(tmp_path: Path, ca: channel_ca.ChannelCA) -> None:
    path = tmp_path / "channel-ca.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    again = channel_ca.ChannelCA.load_or_create(path)
    assert again.cert == ca.cert
    (tmp_path / "broken.pem").write_text("not a key")
    with pytest.raises(Exception, match="not a DataLibrary channel CA"):
        channel_ca.ChannelCA.load_or_create(tmp_path / "broken.pem")


def test_node_lets_only_the_platform_through(tmp_path: Path, ca: channel_ca.ChannelCA, node: Node) -> None:
    platform = ca.issue(channel_ca.PLATFORM_NAME, 1)
    request = http_get("/workspaces/7/api/status")
    # the platform: through to JupyterLab
    assert probe("127.0.0.1", node.port, attacker_context(platform), request).startswith(b"HTTP/1.1 200")
    assert len(node.requests) == 1
    refused = {
        "no certificate": attacker_context(None),
        "another workspace's certificate": attacker_context(ca.issue(channel_ca.run_name(8, "b" * 16), 1)),
        "this workspace's own certificate": attacker_context(node.leaf),
        "self-signed, platform's name": attacker_context(self_signed(channel_ca.PLATFORM_NAME)),
        "another installation's platform": attacker_context(
            foreign_ca(tmp_path).issue(channel_ca.PLATFORM_NAME, 1)
        ),
        "expired platform certificate": attacker_context(ca.issue(channel_ca.PLATFORM_NAME, -1)),
    }
    for what, context in refused.items():
        assert probe("127.0.0.1", node.port, context, request) == b"", what
    assert len(node.requests) == 1  # none of them reached JupyterLab
    # the two of this CA that are not the platform passed the handshake and were closed by the name check
    assert node.channel.refused == 2


def test_platform_refuses_a_node_that_is_not_the_current_run(
    tmp_path: Path, ca: channel_ca.ChannelCA, node: Node
) -> None:
    context = channel_ca.platform_identity(tmp_path / "channel-ca.pem").client()

    async def get(name: str) -> httpx.Response:
        upstream = TlsUpstream("127.0.0.1", node.port, name, context)
        async with httpx.AsyncClient(transport=upstream.transport(), base_url="http://workspace") as http:
            return await http.get("/workspaces/7/api/status")

    assert asyncio.run(get(channel_ca.run_name(7, "a" * 16))).text == "jupyter"
    wrong = (channel_ca.run_name(7, "c" * 16), channel_ca.run_name(8, "a" * 16), channel_ca.PLATFORM_NAME)
    for name in wrong:  # an earlier run, another workspace, the platform's own name
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            asyncio.run(get(name))
    assert node.requests and all(b"Host: workspace" in r for r in node.requests)


def test_port_range_is_checked() -> None:
    assert parse_ports("40000-40002") == range(40000, 40003)
    assert parse_ports("40000") == range(40000, 40001)
    for bad in ("80-90", "50000-40000", "x-y", "40000-70000"):
        with pytest.raises(ValueError, match="port range"):
            parse_ports(bad)


def test_a_busy_range_is_reported(tmp_path: Path, ca: channel_ca.ChannelCA, node: Node) -> None:
    busy = f"{node.port}-{node.port}"
    sockets = (tmp_path / "j.sock", tmp_path / "a.sock")
    channel = NodeChannel(node.leaf, *sockets, "127.0.0.1:9", busy, "127.0.0.1")
    with pytest.raises(OSError, match="no free port"):
        asyncio.run(channel.listen())


def test_up_serves_the_gateway_with_the_installation_ca(tmp_path: Path) -> None:
    """``datalibrary up`` with the slurm provisioner listens on ``channel_listen``, presents the
    platform's certificate of the configured CA, and lets no unknown run through."""
    from tests.replica_helpers import Replica, free_port, shared_env

    gateway_port = free_port()
    ca_file = tmp_path / "shared-channel-ca.pem"  # as given to every replica
    env = shared_env(
        tmp_path,
        f"sqlite:///{tmp_path / 'shared.db'}",
        DATALIBRARY_WORKSPACES__PROVISIONER="slurm",
        DATALIBRARY_WORKSPACES__CHANNEL_LISTEN=f"127.0.0.1:{gateway_port}",
        DATALIBRARY_WORKSPACES__CHANNEL_CA_FILE=str(ca_file),
    )
    replica = Replica(env, tmp_path / "a", "a")
    try:
        replica.wait_ready()
        ca = channel_ca.ChannelCA.load_or_create(ca_file)
        assert ca_file.stat().st_mode & 0o777 == 0o600
        stranger = ca.issue(channel_ca.run_name(1, channel_ca.new_run()), 1)
        # the server is the platform of this CA (chain and name verified by the handshake) ...
        with (
            socket.create_connection(("127.0.0.1", gateway_port), timeout=10) as raw,
            channel_ca.client_context(stranger).wrap_socket(
                raw, server_hostname=channel_ca.PLATFORM_NAME
            ) as tls,
        ):
            assert channel_ca.peer_name(tls) == channel_ca.PLATFORM_NAME
            tls.sendall(http_get("/readyz"))
            # ... and a run the database does not know is closed without an answer
            with contextlib.suppress(ssl.SSLError, ConnectionError):  # closed, or reset: both refusals
                assert tls.recv(4096) == b""
        assert probe("127.0.0.1", gateway_port, attacker_context(None), http_get("/readyz")) == b""
        assert "refused" in replica.log.read_text()
        # a gateway is trusted only with this installation's CA
        foreign = foreign_ca(tmp_path).issue(channel_ca.run_name(1, "a" * 16), 1)
        with (
            pytest.raises(ssl.SSLCertVerificationError),
            socket.create_connection(("127.0.0.1", gateway_port), timeout=10) as raw,
        ):
            channel_ca.client_context(foreign).wrap_socket(raw, server_hostname=channel_ca.PLATFORM_NAME)
    finally:
        replica.stop()
