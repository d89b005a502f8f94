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

from datalibrary.api.serve import unix_listener
from datalibrary.workspaces.catalog import Environment
from datalibrary.workspaces.environments import build

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or "/tmp") / "datalibrary-test-envs"
ENVIRONMENT = Environment(name="python", kernels=["python"], packages=["jupyterlab", "ipykernel"])
CATALOG = """
currency: EUR
instance_types:
  - {name: tiny, vcpu: 1, memory_gib: 0.5, price_per_hour: 0.02}
  - {name: m5.2xlarge, vcpu: 8, memory_gib: 32, price_per_hour: 0.35}
  - {name: gpu, vcpu: 2, memory_gib: 4, gpu: 1, price_per_hour: 0.5}
environments:
  - {name: python, kernels: [python], packages: [jupyterlab, ipykernel]}
products:
  - {name: notebook, environment: python, instance_types: [tiny, m5.2xlarge], roles: [scientist]}
  - {name: open-notebook, environment: python, instance_types: [tiny], roles: [scientist], requires: []}
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


def wait_state(client, workspace_id: int, *states: str, timeout: float = 90) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/api/v1/workspaces/{workspace_id}").json()
        if data["state"] in states:
            return data
        assert time.monotonic() < deadline, f"workspace stayed {data['state']}: {data['state_reason']}"
        time.sleep(0.1)


def execute(http, workspace_id: int, code: str, timeout: float = 60) -> dict:  # type: ignore[no-untyped-def]
    """Start a kernel through the proxy and run ``code`` over its WebSocket; return outputs."""
    kernel = http.post(f"/workspaces/{workspace_id}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    return run_in_kernel(http, workspace_id, kernel_id, code, timeout)


def run_in_kernel(http, workspace_id: int, kernel_id: str, code: str, timeout: float = 60) -> dict:  # type: ignore[no-untyped-def]
    msg_id = uuid.uuid4().hex
    request = {
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",  # noqa: E501
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }  # fmt: skip
    result: dict = {"stdout": "", "error": None, "status": None}
    url = f"/workspaces/{workspace_id}/api/kernels/{kernel_id}/channels"
    with http.http.websocket_connect(url, headers={"Authorization": f"Bearer {http.token}"}) as ws:
        ws.send_text(json.dumps(request))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(ws.receive_text())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                result["stdout"] += message["content"]["text"]
            elif kind == "error":
                result["error"] = message["content"]["ename"] + ": " + message["content"]["evalue"]
            elif kind == "execute_reply":
                result["status"] = message["content"]["status"]
            elif kind == "status" and message["content"]["execution_state"] == "idle" and result["status"]:
                break
    return result
