"""Serve the app on its TCP address and on the Unix socket that workspaces reach it through.

Workspaces have no network; the SDK inside them talks to the platform over this socket,
which is mounted into every sandbox. Both listeners serve the same app, so the same
authentication and permissions apply. Workspaces on other machines (Slurm) reach the same
socket through the channel gateway (``workspaces.channel_gateway``), started here when needed."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from datalibrary.workspaces import channel_gateway


def unix_listener(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o666)  # noqa: S103 - reachable only where mounted; every request needs a token
    listener.listen(128)
    return listener


def serve(app: FastAPI, host: str, port: int, api_socket: Path) -> None:
    config = uvicorn.Config(app, host=host, port=port, log_config=None, proxy_headers=False)
    server = uvicorn.Server(config)
    tcp = config.bind_socket()
    unix = unix_listener(api_socket)
    with contextlib.ExitStack() as stack:
        settings = app.state.settings
        if channel_gateway.needed(settings):  # workspaces on other machines reach the API here
            stack.enter_context(channel_gateway.GatewayThread(settings, app.state.db, api_socket))
        try:
            server.run(sockets=[tcp, unix])
        finally:
            api_socket.unlink(missing_ok=True)
