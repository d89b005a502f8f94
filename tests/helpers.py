"""Test helpers: a platform in a temporary state directory and an API client that acts
as a given user and checks invariants on every response (like datasette's client)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from datalibrary.api.middleware import SECURITY_HEADERS
from datalibrary.app import create_app
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.bootstrap import initialize
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.wiring import register_handlers

PASSWORD = "Correct-Horse-42-battery"


def check_invariants(response: httpx.Response) -> None:
    """What every response must satisfy, whatever the route."""
    for name in SECURITY_HEADERS:
        assert name in response.headers, f"{response.request.url.path}: missing header {name}"
    assert response.headers.get("X-Request-ID"), "every response carries a request id"
    path = response.request.url.path
    if path.startswith("/api/v1") and response.status_code != 204:
        kind = response.headers.get("content-type", "")
        if response.status_code >= 400:
            assert kind.startswith("application/problem+json"), f"{path}: errors are problems, got {kind}"
            body = response.json()
            assert body["type"].startswith("/problems/") and body["status"] == response.status_code
            assert "Traceback" not in response.text


class ApiClient:
    """Calls the app in-process; ``as_user`` returns a client that sends that user's token."""

    def __init__(self, app: FastAPI, token: str | None = None) -> None:
        self.app = app
        self.token = token
        self.http = TestClient(app, raise_server_exceptions=False)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        response = self.http.request(method, path, headers=headers, **kwargs)
        check_invariants(response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass
class Platform:
    settings: Settings
    db: Database
    app: FastAPI
    admin_password: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> ApiClient:
        return ApiClient(self.app)

    def add_user(self, name: str, *roles: str, password: str = PASSWORD) -> None:
        with self.db.session() as session:
            auth_service.create_user(
                session, Principal.system("test"), name, roles=set(roles), password=password
            )

    def as_user(self, name: str) -> ApiClient:
        """A client authenticated as ``name`` (created as a scientist if it does not exist)."""
        if name not in self.tokens:
            with self.db.session() as session:
                try:
                    auth_service.get_user(session, name)
                except Exception:
                    auth_service.create_user(
                        session, Principal.system("test"), name, roles={"scientist"}, password=PASSWORD
                    )
                issued = auth_service.create_token(session, Principal.system("test"), name, name="test")
                self.tokens[name] = issued.secret
        return ApiClient(self.app, self.tokens[name])


@contextmanager
def make_platform(home: Path, database_url: str) -> Iterator[Platform]:
    register_handlers()  # as every entry point does (create_app does too)
    settings = Settings(home=home, database_url=database_url)
    db = Database(database_url)
    result = initialize(settings, db)
    settings = Settings(home=home, database_url=database_url)  # picks up the new secret key
    assert result.admin_password is not None
    try:
        yield Platform(settings, db, create_app(settings, db), result.admin_password)
    finally:
        db.dispose()


class LiveServer:
    """The app served by uvicorn on a free loopback port, in a background thread.

    By default without the app's lifespan (no background loops: each test drives what it
    needs). ``lifespan="on"`` with ``unix_socket`` serves it as ``datalibrary up`` does
    (``api.serve.serve``): background loops running, the workspaces' Unix socket listening."""

    def __init__(self, app: FastAPI, *, lifespan: str = "off", unix_socket: Path | None = None) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=lifespan)
        self.server = uvicorn.Server(config)
        kwargs: dict[str, Any] = {}
        if unix_socket is not None:
            from datalibrary.http.serve import unix_listener

            kwargs["sockets"] = [config.bind_socket(), unix_listener(unix_socket)]
        self.thread = threading.Thread(target=self.server.run, kwargs=kwargs, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 60  # a lifespan's start-up on a loaded machine
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.server.should_exit = True
                raise RuntimeError("the test server did not start within 60 s (see its log above)")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port_url() -> str:
    """A PostgreSQL URL where nothing listens (a port the kernel just handed out and freed)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://nobody@127.0.0.1:{port}/none?connect_timeout=2"
