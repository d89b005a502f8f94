"""The workspace's loopback forwarder: ``127.0.0.1:8790`` inside the sandbox to the
platform's Unix socket (``DATALIBRARY_URL``), so tools that speak only TCP HTTP (git, pip,
uv, R's ``install.packages``) reach the platform with no network at all.

It forwards bytes and nothing else: every request still carries its own credentials (the
workspace's token) and the platform authorizes it as for any other caller. Started beside
JupyterLab by the sandbox (``python -m datalibrary.sdk.forward``); standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

PORT = int(os.environ.get("DATALIBRARY_LOCAL_PORT", "8790"))
CHUNK = 256 * 1024


def socket_path() -> str:
    url = os.environ.get("DATALIBRARY_URL", "unix:///run/datalibrary/api.sock")
    if not url.startswith("unix://"):
        raise SystemExit(f"DATALIBRARY_URL is not a Unix socket: {url}")
    return url.removeprefix("unix://")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def _serve(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(socket_path())
    except OSError:
        client_writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            b"Content-Length: 40\r\n\r\nthe platform is not reachable right now\n"
        )
        with contextlib.suppress(Exception):
            await client_writer.drain()
        client_writer.close()
        return
    await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
    for writer in (client_writer, upstream_writer):
        with contextlib.suppress(Exception):
            writer.close()


async def main() -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", PORT, reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except OSError as exc:  # the port is taken: say so in the workspace's log and stop
        print(f"datalibrary forwarder: cannot listen on 127.0.0.1:{PORT}: {exc}", file=sys.stderr)
        sys.exit(1)
