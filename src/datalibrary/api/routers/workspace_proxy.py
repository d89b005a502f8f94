"""The authenticated reverse proxy to workspaces: ``/workspaces/{id}/...`` (HTTP and
WebSocket) to the workspace's JupyterLab Unix socket. Only the owner passes (an admin only
with an audited reason); the platform's cookie and token never reach the workspace, which
gets its own JupyterLab token instead. Not part of the API document."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from websockets.asyncio.client import unix_connect
from websockets.exceptions import ConnectionClosed

from datalibrary.api.deps import SESSION_COOKIE, authenticate
from datalibrary.bounds import RecordId
from datalibrary.errors import Conflict, DataLibraryError, NotAuthenticated, Unavailable
from datalibrary.workspaces import access, paths

router = APIRouter(include_in_schema=False)
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "authorization", "cookie", "content-length",
}  # fmt: skip
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _target(connection: Request | WebSocket, workspace_id: int):  # type: ignore[no-untyped-def]
    """The workspace and its JupyterLab token, if the caller may open it."""
    app = connection.app
    with app.state.db.session() as session:
        principal = authenticate(connection, session, app.state.settings)  # type: ignore[arg-type]
        if principal is None:
            raise NotAuthenticated("sign in to open a workspace")
        workspace = access.can_open(session, principal, workspace_id)
        if workspace.state != "running":
            raise Conflict(f"workspace {workspace_id} is {workspace.state}; start or resume it first")
        return workspace, paths.jupyter_token(app.state.settings, workspace)


def _cookies_without_ours(header: str | None) -> str | None:
    if not header:
        return None
    kept = [part for part in header.split(";") if part.strip().split("=", 1)[0] != SESSION_COOKIE]
    return ";".join(kept).strip() or None


def _upstream(app, workspace_id: int) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    clients = app.state.__dict__.setdefault("_workspace_clients", {})
    client = clients.get(workspace_id)
    if client is None or client.is_closed:
        socket = paths.socket_path(app.state.settings, workspace_id)
        client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket)), timeout=httpx.Timeout(60, connect=5)
        )
        clients[workspace_id] = client
    return client


@router.api_route("/workspaces/{workspace_id}/{path:path}", methods=METHODS)
async def proxy_http(workspace_id: RecordId, path: str, request: Request) -> Response:
    try:
        workspace, token = _target(request, workspace_id)
    except NotAuthenticated:
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        raise
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
    cookies = _cookies_without_ours(request.headers.get("cookie"))
    if cookies:
        headers.append(("cookie", cookies))
    headers.append(("authorization", f"token {token}"))
    url = f"http://workspace{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
    paths.checked_socket(paths.socket_path(request.app.state.settings, workspace.id))
    client = _upstream(request.app, workspace.id)
    body = await request.body()
    try:
        upstream = await client.send(
            client.build_request(request.method, url, headers=headers, content=body), stream=True
        )
    except (httpx.TransportError, OSError) as exc:
        raise Unavailable(f"workspace {workspace_id} does not answer ({type(exc).__name__})") from exc
    response_headers = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in HOP_BY_HOP]
    response = StreamingResponse(
        upstream.aiter_raw(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
    )
    response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers]
    if "cache-control" not in upstream.headers:
        response.raw_headers.append((b"cache-control", b"no-store"))
    return response


@router.websocket("/workspaces/{workspace_id}/{path:path}")
async def proxy_websocket(websocket: WebSocket, workspace_id: RecordId, path: str) -> None:
    try:
        workspace, token = _target(websocket, workspace_id)
    except DataLibraryError:
        await websocket.close(code=1008)
        return
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host", "")
    if origin and urlsplit(origin).netloc != host:  # cross-site WebSocket hijacking
        await websocket.close(code=1008)
        return
    query = websocket.url.query
    uri = f"ws://{host or 'workspace'}{websocket.url.path}" + (f"?{query}" if query else "")
    headers = {"Authorization": f"token {token}"}
    if origin:
        headers["Origin"] = origin
    cookies = _cookies_without_ours(websocket.headers.get("cookie"))
    if cookies:
        headers["Cookie"] = cookies
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    try:
        socket = paths.checked_socket(paths.socket_path(websocket.app.state.settings, workspace.id))
        upstream = await unix_connect(
            str(socket), uri, additional_headers=headers, subprotocols=offered or None,
            max_size=None, open_timeout=10, compression=None,
        )  # fmt: skip
    except Exception:  # refused, gone or not a socket: the client sees a closed socket
        await websocket.close(code=1011)
        return
    await websocket.accept(subprotocol=upstream.subprotocol)

    async def client_to_upstream() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])

    async def upstream_to_client() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in upstream:
                if isinstance(message, bytes):
                    await websocket.send_bytes(message)
                else:
                    await websocket.send_text(message)

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await upstream.close()
        with contextlib.suppress(Exception):
            await websocket.close()
