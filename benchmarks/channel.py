"""The workspace channel's cost, as ratios against JupyterLab's Unix socket on one host.

The same small HTTP server on a Unix socket stands in for JupyterLab; the baseline reaches
it directly (what the ``sandbox`` provisioner's proxy does), the channel through the node's
TLS listener (``channel_node``) with the platform's certificate (what the ``slurm``
provisioner's proxy does; here over loopback, so only TLS and the relay are measured):

1. small requests on one kept-alive connection (proxied page and API calls);
2. a new connection per request (TLS handshake included: the first request of a client);
3. streaming a large body (a notebook download, a big kernel message).

Run: ``.venv/bin/python benchmarks/channel.py [--requests N] [--megabytes M] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from datalibrary.workspaces import channel_ca
from datalibrary.workspaces.channel_node import NodeChannel
from datalibrary.workspaces.upstream import TlsUpstream, UnixUpstream

SMALL = b'{"started": "2026-01-01T00:00:00Z", "last_activity": "now", "connections": 0, "kernels": 1}'


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, big: bytes) -> None:
    """HTTP/1.1 with keep-alive: ``/big`` answers ``big``, anything else a small JSON."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            body = big if head.startswith(b"GET /big") else SMALL
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n" % len(body))
            writer.write(body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def measure(upstream_of, requests: int, fresh: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    way = upstream_of()  # kept while in use: a Unix upstream holds the pinned socket's handle
    async with httpx.AsyncClient(transport=way.transport(), base_url="http://workspace") as http:
        await http.get("/warm")
        started = time.perf_counter()
        for _ in range(requests):
            (await http.get("/workspaces/1/api/status")).raise_for_status()
        kept = requests / (time.perf_counter() - started)
        started = time.perf_counter()
        response = await http.get("/big")
        megabytes = len(response.content) / 1024**2
        stream = megabytes / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(fresh):  # "Connection: close": each request opens its own connection
            (await http.get("/workspaces/1/api/status", headers={"Connection": "close"})).raise_for_status()
        new = (time.perf_counter() - started) / fresh * 1000
    return {"kept-alive requests/s": kept, "new connection + request ms": new, "stream MB/s": stream}


async def main(requests: int, megabytes: int, rounds: int) -> None:
    big = os.urandom(megabytes * 1024**2)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        socket_path = root / "jupyter.sock"
        server = await asyncio.start_unix_server(lambda r, w: serve(r, w, big), path=str(socket_path))
        ca_file = root / "channel-ca.pem"
        ca = channel_ca.ChannelCA.load_or_create(ca_file)
        name = channel_ca.run_name(1, channel_ca.new_run())
        node = NodeChannel(
            ca.issue(name, 1), socket_path, root / "api.sock", "127.0.0.1:9", "41900-41999", "127.0.0.1"
        )
        port = await node.listen()
        context = channel_ca.platform_identity(ca_file).client()
        fresh = max(20, requests // 20)
        runs: dict[str, list[dict[str, float]]] = {"unix": [], "tls": []}
        for _ in range(rounds):  # interleaved: a load swing hits both cases alike
            runs["unix"].append(await measure(lambda: UnixUpstream(socket_path), requests, fresh))
            tls = await measure(lambda: TlsUpstream("127.0.0.1", port, name, context), requests, fresh)
            runs["tls"].append(tls)
        await node.close()
        server.close()
    print(f"load average: {os.getloadavg()[0]:.2f}; best and median of {rounds} interleaved rounds")
    print(f"{'':30} {'Unix socket':>18} {'TLS channel':>18} {'ratio (median)':>15}")
    for key in runs["unix"][0]:
        lower_is_better = key.endswith("ms")
        pick = min if lower_is_better else max
        cells = []
        for case in ("unix", "tls"):
            values = [run[key] for run in runs[case]]
            cells.append((pick(values), statistics.median(values)))
        ratio = cells[1][1] / cells[0][1]
        shown = " ".join(f"{best:8.1f} / {median:7.1f}" for best, median in cells)
        print(f"{key:30} {shown} {ratio:15.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.megabytes, arguments.rounds))
