"""The workspace origins: ``ws-N.<app_domain>`` serves workspace N's JupyterLab (HTTP and
WebSocket) from its Unix socket, and nothing else; the console is never served there and
JupyterLab is never served on the console's origin (see ``workspaces.origin``).

Who passes: the person holding this origin's cookie (from a console grant; SameSite=Strict,
so a cross-site request carries none) or an API client with a personal token (never a
workspace's own token). Browser requests that change state must come from this origin
(Origin header), and JupyterLab's own XSRF check stays on for them. API tokens cannot read or
write files (files leave only through the export airlock); uploads are audited and scanned. JupyterLab has
no token of its own: the proxy vouches for the caller with a secret header."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import html
import json
import re
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.exceptions import ConnectionClosed

from datalibrary.api import problems
from datalibrary.audit import service as audit_service
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.errors import (
    Conflict,
    DataLibraryError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from datalibrary.workspaces import access, jupyter, lab_static, origin, paths, upstream
from datalibrary.workspaces.models import Workspace

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "authorization", "cookie", "content-length",
    jupyter.SECRET_HEADER.lower(), jupyter.VIA_HEADER.lower(),
}  # fmt: skip

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SAFE = {"GET", "HEAD", "OPTIONS"}
# Routes that read or write files of the home: never for API tokens (#21).
FILE_ROUTES = re.compile(r"^(files|view|nbconvert|api/contents)(/|$)")
DOWNLOADS = re.compile(r"^(files|nbconvert)(/|$)")
UPLOADS = re.compile(r"^api/contents(/|$)")
LAB_PAGE = re.compile(r"^lab(/|$)")
# User content: may run its own scripts (and JupyterLab's from the static origin), but
# connect only to its own origin.
CSP = (
    "default-src 'self' {static} data: blob: 'unsafe-inline' 'unsafe-eval'; connect-src 'self'; "
    "frame-ancestors 'self'; form-action 'self'; base-uri 'self'; object-src 'none'"
)
WORKSPACE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "SAMEORIGIN",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# JupyterLab's public files on the static origin: any workspace page may load them (fonts are
# fetched with CORS), none of them is ever a page.
STATIC_HEADERS = {
    "Cache-Control": lab_static.IMMUTABLE,
    "Access-Control-Allow-Origin": "*",
    "Timing-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
# Not passed back: hop-by-hop ones, the ones the platform sets itself (WORKSPACE_HEADERS) and
# the ones its server writes (a workspace's own would make a second, conflicting one).
DROPPED_RESPONSE_HEADERS = HOP_BY_HOP | {h.lower() for h in WORKSPACE_HEADERS} | {"date", "server"}


class WorkspaceHosts:
    """ASGI dispatch on the Host header: workspace origins go to the workspace app, every
    other host to the console."""

    def __init__(self, app: ASGIApp, settings: Settings, workspace_app: ASGIApp, static_app: ASGIApp) -> None:
        self.app = app
        self.settings = settings
        self.workspace_app = workspace_app
        self.static_app = static_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            workspace_id = origin.workspace_of_host(self.settings, host)
            if workspace_id is not None:
                scope = {**scope, "datalibrary.workspace": workspace_id}
                await self.workspace_app(scope, receive, send)
                return
            if origin.is_static_host(self.settings, host):
                await self.static_app(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(parent: FastAPI) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.settings = parent.state.settings
    app.state.db = parent.state.db
    problems.install(app)
    app.add_api_route(origin.ENTER_PATH, enter, methods=["GET"])
    app.add_api_route("/workspaces/{workspace_id}/{path:path}", proxy_http, methods=METHODS)
    app.add_api_websocket_route("/workspaces/{workspace_id}/{path:path}", proxy_websocket)
    app.add_api_route("/{path:path}", not_here, methods=METHODS)
    return app


def build_static_app(parent: FastAPI) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.settings = parent.state.settings
    problems.install(app)
    app.add_api_route("/{path:path}", static_file, methods=["GET", "HEAD"])
    return app


def install(parent: FastAPI) -> None:
    parent.add_middleware(
        WorkspaceHosts,
        settings=parent.state.settings,
        workspace_app=build_app(parent),
        static_app=build_static_app(parent),
    )


def static_file(path: str, request: Request) -> Response:
    """``static.<app_domain>/lab/<environment key>/<file>``: a built environment's JupyterLab
    file (``workspaces.lab_static``), the same bytes for every workspace; nothing else."""
    match = lab_static.STATIC_PATH.match(f"/{path}")
    directory = lab_static.directory_of(request.app.state.settings, match["key"]) if match else None
    name = lab_static.asset_name(f"{lab_static.PREFIX}{match['name']}") if match else None
    found = lab_static.read(directory, name) if directory and name else None
    if found is None:
        raise NotFound("not found")
    data, media = found
    body = data if request.method == "GET" else b""
    return Response(body, media_type=media, headers=STATIC_HEADERS)


def _host_workspace(connection: Request | WebSocket) -> int:
    return int(connection.scope["datalibrary.workspace"])


def _with_headers(response: Response, settings: Settings) -> Response:
    for name, value in WORKSPACE_HEADERS.items():
        response.headers[name] = value.format(static=origin.static_source(settings))
    return response


def not_here(path: str, request: Request) -> Response:
    wid = _host_workspace(request)
    if request.method == "GET" and path in ("", "lab"):
        redirect = Response(status_code=303, headers={"Location": f"/workspaces/{wid}/lab"})
        return _with_headers(redirect, request.app.state.settings)
    raise NotFound("this is a workspace's address; the console is elsewhere")


def enter(request: Request, grant: str = "") -> Response:
    """Redeem a console grant for this origin's own cookie, then go to JupyterLab."""
    settings = request.app.state.settings
    wid = _host_workspace(request)
    with request.app.state.db.session() as session:
        session_id = origin.redeem_grant(session, settings, wid, grant)
    target = f"/workspaces/{wid}/lab"
    # A same-origin page, not a redirect: the navigation that follows starts on this origin,
    # so the SameSite=Strict cookie is sent with it. The script goes on at once and replaces
    # this entry in the history (no way back to a spent grant); the refresh, which Chromium
    # runs about 70 ms later, is for browsers without script.
    page = (
        '<!doctype html><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={html.escape(target)}">'
        f"<title>Opening workspace {wid}</title><p>Opening workspace {wid}...</p>"
        f"<script>location.replace({json.dumps(target)})</script>"
    )
    response = HTMLResponse(page, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        origin.COOKIE,
        origin.cookie_value(settings, wid, session_id),
        max_age=origin.COOKIE_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=settings.server.https,
        path="/",
    )
    return _with_headers(response, settings)


def _caller(connection: Request | WebSocket, workspace_id: int) -> tuple[Workspace, Principal, str, str]:
    """The workspace, who calls, how (browser | token) and the proxy secret - or an error."""
    app = connection.app
    settings: Settings = app.state.settings
    if workspace_id != _host_workspace(connection):
        raise NotFound(f"no workspace with id {workspace_id} here")
    with app.state.db.session() as session:
        header = connection.headers.get("authorization", "")
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise NotAuthenticated("send 'Authorization: Bearer <personal API token>'")
            principal, via = auth_service.principal_from_token(session, secret.strip()), "token"
        else:
            value = connection.cookies.get(origin.COOKIE)
            if not value:
                raise NotAuthenticated("open the workspace from the console")
            entry = origin.read_cookie(settings, workspace_id, value)
            principal = auth_service.principal_from_session_id(session, entry.session_id, settings.auth)
            via = "browser"
        workspace = access.can_open(session, principal, workspace_id)
        if workspace.state != "running":
            raise Conflict(f"workspace {workspace_id} is {workspace.state}; start or resume it first")
        return workspace, principal, via, paths.jupyter_token(settings, workspace)


def _same_origin(connection: Request | WebSocket) -> bool:
    source = connection.headers.get("origin")
    host = connection.headers.get("host", "")
    if not source or urlsplit(source).netloc != host:
        return False
    return connection.headers.get("sec-fetch-site", "same-origin") == "same-origin"


def _upload_content(body: bytes) -> tuple[bytes, dict[str, object]]:
    """The bytes a Contents API write carries (base64, text or a notebook's JSON) and its model."""
    try:
        model = json.loads(body)
    except (ValueError, TypeError):
        return body, {}
    if not isinstance(model, dict):
        return body, {}
    content = model.get("content")
    described = {"type": model.get("type"), "format": model.get("format"), "chunk": model.get("chunk")}
    if content is None:
        return b"", described
    if model.get("format") == "base64" and isinstance(content, str):
        try:
            return base64.b64decode(content, validate=False), described
        except (ValueError, binascii.Error):
            return content.encode(), described
    if isinstance(content, str):
        return content.encode(), described
    return json.dumps(content).encode(), described


def _check_upload(
    request: Request, workspace: Workspace, principal: Principal, path: str, body: bytes
) -> None:
    """Files written into a workspace from outside are a path for identified data into the
    platform: audited (who, which file, how big, its SHA-256) and scanned like ingestion
    deliveries (``workspaces.inbound``); one that looks identified is refused, and the
    refusal is audited with the evidence, never the values."""
    from datalibrary.workspaces import inbound

    relative = path[len("api/contents/") :][:500]
    data, model = _upload_content(body)
    details: dict[str, object] = {"path": relative, "bytes": len(body), **model}
    details["sha256"] = hashlib.sha256(data).hexdigest()
    found = inbound.evidence(relative, data, first_chunk=model.get("chunk") in (None, 1)) if data else []
    details["scanned"] = True
    if found:
        details["evidence"] = found[:20]
    with request.app.state.db.session() as session:
        audit_service.record(
            session, actor=principal, action="workspace.upload", target=f"workspace:{workspace.id}",
            outcome="denied" if found else "success", details=details,
        )  # fmt: skip
    if found:
        raise PermissionDenied(
            f"'{relative}' looks like identified data ({'; '.join(found[:5])}): identified data "
            "enters the platform only through ingestion, which anonymizes it (ask a data steward)"
        )


def _upstream(app, workspace: Workspace) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    """One pooled client per workspace, connected through a pinned socket or, for a workspace
    on a node, the authenticated channel (``workspaces.upstream``); made anew when what is
    behind it changed (a new socket after a restart, a new run on a node)."""
    clients = app.state.__dict__.setdefault("_workspace_clients", {})
    current = upstream.for_workspace(app.state.settings, workspace.id, workspace.provisioner_state)
    loop = asyncio.get_running_loop()  # pooled connections belong to one event loop
    cached = clients.get(workspace.id)
    if (
        cached is not None
        and not cached[1].is_closed
        and cached[0].identity == current.identity
        and cached[2] is loop
    ):
        current.close()
        return cached[1]
    if cached is not None and cached[2] is loop:
        with contextlib.suppress(Exception):
            loop.create_task(cached[1].aclose())
    client = httpx.AsyncClient(transport=current.transport(), timeout=httpx.Timeout(60, connect=5))
    clients[workspace.id] = (current, client, loop)
    return client


def _checked(path: str) -> None:
    """Refuse a path whose route is not the one the checks below see. The proxy forwards the
    decoded path and the HTTP client then removes dot segments, so ``lab/%2E%2E/files/x`` would
    pass as ``lab/...`` and arrive as ``files/x``; and ``_dl/`` (the platform's own control
    calls: the warm pool's assignment) is never forwarded in any spelling."""
    segments = path.split("/")
    if any(segment in (".", "..") for segment in segments):
        raise InvalidInput("a workspace path cannot contain '.' or '..' segments")
    if segments[0].lower() == "_dl":
        raise NotFound("not found")


def _upstream_path(request_path: str) -> str:
    """The decoded path, quoted again: a decoded '?' or '#' never becomes the query or fragment."""
    return quote(request_path, safe="/:@!$&'()*+,;=~-._")


def _lab_asset(request: Request, workspace_id: int, path: str) -> Response | None:
    """JupyterLab's own front-end files from memory (``workspaces.lab_static``) for a browser
    holding this origin's cookie, once a full check has let it in (which tells where the
    workspace's environment is); None sends the request through the proxy and its checks."""
    name = lab_static.asset_name(path) if request.method in ("GET", "HEAD") else None
    directory = request.app.state.__dict__.get("_lab_static", {}).get(workspace_id)
    value = request.cookies.get(origin.COOKIE)
    if name is None or directory is None or not value or workspace_id != _host_workspace(request):
        return None
    try:
        origin.read_cookie(request.app.state.settings, workspace_id, value)
    except NotAuthenticated:
        return None
    found = lab_static.read(directory, name)
    if found is None:
        return None
    data, media = found
    body = data if request.method == "GET" else b""
    response = Response(body, media_type=media, headers={"Cache-Control": lab_static.IMMUTABLE})
    return _with_headers(response, request.app.state.settings)


def _remember_lab_static(request: Request, workspace: Workspace) -> None:
    known = request.app.state.__dict__.setdefault("_lab_static", {})
    if workspace.id not in known:
        with contextlib.suppress(DataLibraryError, OSError):
            known[workspace.id] = lab_static.static_dir(request.app.state.settings, workspace)


async def proxy_http(workspace_id: int, path: str, request: Request) -> Response:
    asset = _lab_asset(request, workspace_id, path)
    if asset is not None:
        return asset
    # the database check runs off the event loop: the loop keeps streaming other responses
    workspace, principal, via, secret = await run_in_threadpool(_caller, request, workspace_id)
    _checked(path)
    if via == "browser":
        _remember_lab_static(request, workspace)
    if via == "token" and FILE_ROUTES.match(path):
        raise PermissionDenied(
            "API tokens cannot read or write a workspace's files; files leave a workspace only "
            "through the export airlock (POST /api/v1/exports)"
        )
    if via == "browser" and request.method not in SAFE and not _same_origin(request):
        raise PermissionDenied("cross-site request refused")
    if via == "browser" and request.method == "GET" and DOWNLOADS.match(path) and _is_download(request):
        # a download files an export request: a change of state, so only from this origin
        # or the person's own address bar, never from a page elsewhere - not even another
        # workspace's, which is the same site and so carries this origin's cookie
        if request.headers.get("sec-fetch-site", "none") not in ("same-origin", "none"):
            raise PermissionDenied("a download from another page is refused; download it from JupyterLab")
        return _airlock(request, workspace, principal, path)
    body = await request.body()
    if request.method in ("PUT", "POST", "PATCH") and UPLOADS.match(path) and body:
        _check_upload(request, workspace, principal, path, body)
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
    cookies = _cookies_without_ours(request.headers.get("cookie"))
    if cookies:
        headers.append(("cookie", cookies))
    headers += list(jupyter.proxy_headers(secret, via).items())
    query = f"?{request.url.query}" if request.url.query else ""
    url = f"http://workspace{_upstream_path(request.url.path)}{query}"
    client = _upstream(request.app, workspace)
    try:
        upstream = await client.send(
            client.build_request(request.method, url, headers=headers, content=body), stream=True
        )
    except (httpx.TransportError, OSError) as exc:
        raise Unavailable(f"workspace {workspace_id} does not answer ({type(exc).__name__})") from exc
    response_headers = [
        (k, v) for k, v in upstream.headers.multi_items()
        if k.lower() not in DROPPED_RESPONSE_HEADERS
    ]  # fmt: skip
    if via == "browser" and request.method == "GET" and LAB_PAGE.match(path) and _is_html(upstream):
        response = await _lab_page(request, workspace, upstream, response_headers)
    else:
        response = StreamingResponse(
            upstream.aiter_raw(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        response.raw_headers = _raw(response_headers)
    if "cache-control" not in upstream.headers:
        response.raw_headers.append((b"cache-control", b"no-store"))
    return _with_headers(response, request.app.state.settings)


def _is_html(upstream: httpx.Response) -> bool:
    return upstream.status_code == 200 and upstream.headers.get("content-type", "").startswith("text/html")


async def _lab_page(
    request: Request, workspace: Workspace, upstream: httpx.Response, headers: list[tuple[str, str]]
) -> Response:
    """JupyterLab's page, pointed at the static origin for its own files (see
    ``workspaces.lab_static``: one browser cache for every workspace)."""
    try:
        page = await upstream.aread()  # decoded (no Content-Encoding is passed on below)
    finally:
        await upstream.aclose()
    settings: Settings = request.app.state.settings
    with contextlib.suppress(DataLibraryError, OSError):
        key, directory = lab_static.location(settings, workspace)
        shared = f"{origin.static_origin(settings, request.url.port)}/lab/{key}"
        page = lab_static.point_page_at(page, paths.base_url(workspace.id), shared, directory)
    response = Response(page, status_code=upstream.status_code)
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
    response.raw_headers = [*_raw(kept), (b"content-length", str(len(page)).encode())]
    return response


def _raw(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _is_download(request: Request) -> bool:
    """A file saved to the person's machine (JupyterLab's Download, a link opened as a page),
    as opposed to an image shown inside JupyterLab."""
    query = parse_qs(request.url.query)
    return "download" in query or request.headers.get("sec-fetch-dest") in ("document", "iframe")


def _airlock(request: Request, workspace: Workspace, principal: Principal, path: str) -> Response:
    """Downloads follow the airlock: an export request instead of the bytes."""
    from datalibrary.lineage import exports

    relative = path.split("/", 1)[1] if "/" in path else ""
    with request.app.state.db.session() as session:
        try:
            export = exports.request_export(
                session, principal, request.app.state.settings,
                purpose=f"download of '{relative}' from workspace {workspace.id} in the browser",
                destination=f"browser download by {principal.name}",
                path=relative, workspace=workspace.id, format="csv",
            )  # fmt: skip
            message = (
                f"Files leave a workspace only through the export airlock. Export request "
                f"#{export.id} for '{relative}' was created; a data steward reviews it, then you "
                f"can download it from the console's Exports page."
            )
            status = 202
        except DataLibraryError as exc:
            audit_service.record(
                session, actor=principal, action="workspace.download", outcome="denied",
                target=f"workspace:{workspace.id}",
                details={"path": relative[:500], "reason": exc.detail[:300]},
            )  # fmt: skip
            message = f"Files leave a workspace only through the export airlock: {exc.detail}"
            status = 403
    page = (
        f'<!doctype html><meta charset="utf-8"><title>Export requested</title><p>{html.escape(message)}</p>'
    )
    return _with_headers(HTMLResponse(page, status_code=status), request.app.state.settings)


def _cookies_without_ours(header: str | None) -> str | None:
    if not header:
        return None
    kept = [part for part in header.split(";") if part.strip().split("=", 1)[0] != origin.COOKIE]
    return ";".join(kept).strip() or None


async def proxy_websocket(websocket: WebSocket, workspace_id: int, path: str) -> None:
    try:
        workspace, _, via, secret = _caller(websocket, workspace_id)
        _checked(path)
    except DataLibraryError:
        await websocket.close(code=1008)
        return
    host = websocket.headers.get("host", "")
    if via == "browser" and not _same_origin(websocket):  # cross-site WebSocket hijacking
        await websocket.close(code=1008)
        return
    query = websocket.url.query
    target = _upstream_path(websocket.url.path) + (f"?{query}" if query else "")
    headers = jupyter.proxy_headers(secret, via)
    if websocket.headers.get("origin"):
        headers["Origin"] = websocket.headers["origin"]
    cookies = _cookies_without_ours(websocket.headers.get("cookie"))
    if cookies:
        headers["Cookie"] = cookies
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    try:
        way = upstream.for_workspace(websocket.app.state.settings, workspace.id, workspace.provisioner_state)
        try:
            peer = await way.websocket(
                host, target, additional_headers=headers, subprotocols=offered or None,
                max_size=None, open_timeout=60, compression=None,
            )  # fmt: skip
        finally:
            way.close()
    except Exception:  # refused, gone or not a socket: the client sees a closed socket
        await websocket.close(code=1011)
        return
    await websocket.accept(subprotocol=peer.subprotocol)

    async def client_to_upstream() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await peer.send(message["bytes"])
            elif message.get("text") is not None:
                await peer.send(message["text"])

    async def upstream_to_client() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in peer:
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
        await peer.close()
        with contextlib.suppress(Exception):
            await websocket.close()
