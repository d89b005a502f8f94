"""HTTP over TCP or a Unix socket with the standard library only."""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlsplit

from datalibrary.sdk.files import FileCollection
from datalibrary.sdk.lake import Column, Query, Table

API_PREFIX = "/api/v1"
CLIENT_HEADER = "X-DataLibrary-Client"


class SdkError(Exception):
    """A problem answer from the platform (its ``detail`` says what to do)."""

    def __init__(self, status: int, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.problem = problem or {}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class Client:
    """A connection to one DataLibrary platform, authenticated with one token."""

    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "unix"):
            raise ValueError(f"unsupported URL {url!r}: use http(s)://host:port or unix:///path/to/api.sock")
        self._parts = parts

    def _connection(self) -> http.client.HTTPConnection:
        parts = self._parts
        if parts.scheme == "unix":
            return _UnixConnection(parts.path, self.timeout)
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.netloc, timeout=self.timeout)
        return http.client.HTTPConnection(parts.netloc, timeout=self.timeout)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``/api/v1{path}``; JSON in and out; problems raise ``SdkError``."""
        raw, _ = self.request_bytes(method, path, body)
        return json.loads(raw) if raw else None

    def request_bytes(self, method: str, path: str, body: Any = None) -> tuple[bytes, dict[str, str]]:
        """Call ``/api/v1{path}`` and return the raw answer and its headers (lower-case names)."""
        headers = {"Accept": "application/json", CLIENT_HEADER: "sdk"}  # audit: via "sdk"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        prefix = self._parts.path.rstrip("/") if self._parts.scheme != "unix" else ""
        connection = self._connection()
        try:
            connection.request(
                method, prefix + API_PREFIX + quote(path, safe="/?=&"), body=payload, headers=headers
            )
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            detail = data.get("detail", response.reason) if isinstance(data, dict) else response.reason
            raise SdkError(response.status, str(detail), data if isinstance(data, dict) else None)
        return raw, {name.lower(): value for name, value in response.getheaders()}

    def me(self) -> dict[str, Any]:
        """Who the token belongs to, with roles and permissions."""
        return self.request("GET", "/me")

    def version(self) -> str:
        return self.request("GET", "/version")["version"]

    def sql(self, sql: str, project: str | None = None) -> Query:
        """A query over ``NAMESPACE.TABLE`` names: ``.to_pandas()``, ``.to_arrow()``,
        ``.to_polars()`` or ``.rows()`` runs it (your grants, metering and lineage apply)."""
        return Query(self, sql, project)

    def tables(self) -> list[Table]:
        """The tables you may query, with the columns your grants show."""
        return [
            Table(t["name"], [Column(**c) for c in t["columns"]], t["row_filtered"])
            for t in self.request("GET", "/query/tables")
        ]

    def files(self, name: str) -> FileCollection:
        """A file collection ``NAMESPACE.COLLECTION``: ``.list()``, ``.read(path)``,
        ``.open(path)``, ``.download(path, target)`` under your grants."""
        return FileCollection(self, name)

    def collections(self) -> list[dict[str, Any]]:
        """The file collections you hold a grant on."""
        return self.request("GET", "/collections")

    def table(self, name: str) -> Table:
        for table in self.tables():
            if table.name == name.lower():
                return table
        raise SdkError(404, f"table {name} does not exist or you have no grant on it")


def connect(url: str | None = None, token: str | None = None) -> Client:
    """A client from explicit values or, inside a workspace, from its environment."""
    url = url or os.environ.get("DATALIBRARY_URL")
    token = token or os.environ.get("DATALIBRARY_TOKEN")
    if not url:
        raise ValueError("no platform URL: pass url=... or set DATALIBRARY_URL")
    return Client(url, token)
