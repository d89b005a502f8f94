"""Shared parts of the workspace tests: a small catalog, the environment built once per
machine (cached by its package list), the app served on its Unix socket, kernel calls."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import uvicorn

from datalibrary.http.serve import unix_listener
from datalibrary.workspaces.environments import build
from datalibrary.workspaces.products import Environment

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or "/tmp") / "datalibrary-test-envs"
ENVIRONMENT = Environment(name="python", kernels=["python"], packages=["jupyterlab", "ipykernel"])
R_ENVIRONMENT = Environment(name="r", kernels=["python", "r"], packages=["jupyterlab", "ipykernel"])
CATALOG = """
currency: EUR
instance_types:
  - {name: tiny, vcpu: 1, memory_gib: 0.5, price_per_hour: 0.02, max_processes: 256}
  - {name: m5.2xlarge, vcpu: 8, memory_gib: 32, price_per_hour: 0.35}
  - {name: gpu, vcpu: 2, memory_gib: 4, gpu: 1, price_per_hour: 0.5}
environments:
  - {name: python, kernels: [python], packages: [jupyterlab, ipykernel]}
  - {name: r, kernels: [python, r], packages: [jupyterlab, ipykernel]}
products:
  - {name: notebook, environment: python, instance_types: [tiny, m5.2xlarge], roles: [scientist]}
  - {name: open-notebook, environment: python, instance_types: [tiny], roles: [scientist], requires: []}
  - {name: r-notebook, environment: r, instance_types: [tiny], roles: [scientist]}
  - {name: gpu-notebook, environment: python, instance_types: [gpu], roles: [scientist]}
  - {name: oncology-only, environment: python, instance_types: [tiny], groups: [oncology]}
"""


def build_test_environment() -> Path:
    return build(CACHE, ENVIRONMENT, python="/usr/bin/python3")


class UnixServer:
    """The app served on a Unix socket in a thread, as ``datalibrary up`` does for workspaces."""

    def __init__(self, app, path: Path) -> None:  # type: ignore[no-untyped-def]
        self.path = path
        self.listener = unix_listener(path)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.listener]}, daemon=True
        )

    def __enter__(self) -> UnixServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def workspace_host(workspace_id: int, port: int | None = None) -> str:
    """The Host of workspace ``workspace_id``'s own origin (the default ``*.ws.localhost`` domain)."""
    return f"ws-{workspace_id}.ws.localhost" + (f":{port}" if port else "")


class OnWorkspace:
    """``client`` talking to a workspace's origin (Host: ws-N.ws.localhost) instead of the console."""

    def __init__(self, client, workspace_id: int) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.workspace_id = workspace_id

    def request(self, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        headers = {"Host": workspace_host(self.workspace_id), **dict(kwargs.pop("headers", None) or {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.request("PUT", path, **kwargs)


def on_workspace(client, workspace_id: int) -> OnWorkspace:  # type: ignore[no-untyped-def]
    return OnWorkspace(client, workspace_id)


def wait_state(client, workspace_id: int, *states: str, timeout: float = 90) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/api/v1/workspaces/{workspace_id}").json()
        if data["state"] in states:
            return data
        assert time.monotonic() < deadline, f"workspace stayed {data['state']}: {data['state_reason']}"
        time.sleep(0.1)


def execute(http, workspace_id: int, code: str, timeout: float = 60, kernel_name: str = "python3") -> dict:  # type: ignore[no-untyped-def]
    """Start a kernel through the proxy and run ``code`` over its WebSocket; return outputs."""
    kernel = on_workspace(http, workspace_id).post(
        f"/workspaces/{workspace_id}/api/kernels", json={"name": kernel_name}
    )
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    return run_in_kernel(http, workspace_id, kernel_id, code, timeout)


def _message(msg_type: str, content: dict) -> dict:
    return {
        "header": {"msg_id": uuid.uuid4().hex, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": msg_type, "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "content": content,
    }  # fmt: skip


def kernel_socket(http, workspace_id: int, kernel_id: str):  # type: ignore[no-untyped-def]
    """A WebSocket to the kernel through the proxy of the live server (``http.live_url``)."""
    import socket
    from urllib.parse import urlsplit

    from websockets.sync.client import connect

    live = urlsplit(http.live_url)
    host = workspace_host(workspace_id, live.port)
    url = f"ws://{host}/workspaces/{workspace_id}/api/kernels/{kernel_id}/channels"
    sock = socket.create_connection((live.hostname, live.port))  # *.localhost need not resolve here
    return connect(
        url, sock=sock, additional_headers={"Authorization": f"Bearer {http.token}"},
        open_timeout=15, max_size=None,
    )  # fmt: skip


def handshake(ws, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Messages sent before a kernel is up can be lost: ask for kernel_info until it answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = _message("kernel_info_request", {})
        ws.send(json.dumps(request))
        until = time.monotonic() + 2
        while time.monotonic() < until:
            try:
                message = json.loads(ws.recv(timeout=max(0.05, until - time.monotonic())))
            except TimeoutError:
                break
            if message.get("parent_header", {}).get("msg_id") == request["header"]["msg_id"]:
                return
    raise AssertionError("the kernel did not answer kernel_info")


def send_execute(ws, code: str) -> str:  # type: ignore[no-untyped-def]
    request = _message(
        "execute_request",
        {"code": code, "silent": False, "store_history": False, "user_expressions": {},
         "allow_stdin": False, "stop_on_error": True},
    )  # fmt: skip
    ws.send(json.dumps(request))
    return request["header"]["msg_id"]


def run_in_kernel(http, workspace_id: int, kernel_id: str, code: str, timeout: float = 60) -> dict:  # type: ignore[no-untyped-def]
    result: dict = {"stdout": "", "error": None, "status": None}
    with kernel_socket(http, workspace_id, kernel_id) as ws:
        handshake(ws)
        msg_id = send_execute(ws, code)
        idle = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                result["stdout"] += message["content"]["text"]
            elif kind == "error":
                result["error"] = message["content"]["ename"] + ": " + message["content"]["evalue"]
            elif kind == "execute_reply":
                result["status"] = message["content"]["status"]
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                idle = True
            # shell (reply) and iopub (idle) are separate channels: either may come first
            if idle and result["status"]:
                break
    return result
