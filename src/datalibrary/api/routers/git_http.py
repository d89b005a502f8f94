"""Git's smart HTTP protocol at ``/git/{project}/{repo}.git/...``, served by the real
``git http-backend`` behind DataLibrary's authentication (Basic with a personal or
workspace token as the password, or Bearer; never the console's cookie, so no web page
can push on a signed-in user's behalf). Only the smart protocol's three operations pass;
every clone, fetch and push is audited and recorded in lineage. Not part of the API
document (Git is its client)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import logging
import re
import tempfile

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.errors import DataLibraryError, NotAuthenticated
from datalibrary.repos import backend, fingerprints, hooks, service, storage
from datalibrary.repos.push_guard import PushGuard
from datalibrary.repos.storage import RepoFacts

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
REALM = 'Basic realm="DataLibrary Git", charset="UTF-8"'
SERVICES = {"git-upload-pack": "read", "git-receive-pack": "write"}
MAX_REQUEST_BYTES = 4 * 1024**3  # one push (its pack) at most
WANT = re.compile(rb"want ([0-9a-f]{40})")


def token_principal(request: Request, session: Session | None = None) -> Principal:
    """Basic (any user name, a token as the password) or Bearer; cookies are ignored.
    ``session``: the caller's, so one request opens one database session."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    secret = ""
    if scheme.lower() == "basic":
        try:
            _, _, secret = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            secret = ""
    elif scheme.lower() == "bearer":
        secret = value.strip()
    if not secret:
        raise NotAuthenticated(
            "send a personal token as the password (git clone http://USER:TOKEN@host/git/...)"
        )
    if session is not None:
        return auth_service.principal_from_token(session, secret)
    with request.app.state.db.session() as own:
        return auth_service.principal_from_token(own, secret)


def _refusal(error: DataLibraryError) -> Response:
    headers = {"WWW-Authenticate": REALM} if error.status == 401 else {}
    return PlainTextResponse(f"{error.detail}\n", status_code=error.status, headers=headers)


def _operation(rest: str, request: Request) -> str | None:
    """The smart-protocol service this request belongs to, or None (dumb HTTP is refused)."""
    if rest == "info/refs" and request.method in ("GET", "HEAD"):
        return (
            request.query_params.get("service") if request.query_params.get("service") in SERVICES else None
        )
    if rest in SERVICES and request.method == "POST":
        return rest
    return None


def _wants(body: bytes, encoding: str | None) -> tuple[list[str], bool, bool]:
    """(wanted commits, is a fetch at all, has 'have' lines) from an upload-pack request."""
    if encoding == "gzip":
        with contextlib.suppress(OSError, EOFError):
            body = gzip.decompress(body)
    wants = [m.decode() for m in WANT.findall(body)]
    is_fetch = bool(wants) and (b"command=ls-refs" not in body)
    return wants, is_fetch, b"have " in body


@router.api_route("/git/{project}/{repo_path:path}", methods=["GET", "HEAD", "POST"])
async def git_smart_http(project: str, repo_path: str, request: Request) -> Response:
    name, sep, rest = repo_path.partition(".git/")
    operation = _operation(rest, request) if sep else None
    if operation is None:
        return PlainTextResponse("only Git's smart HTTP protocol is served here\n", status_code=404)
    settings = request.app.state.settings
    access = SERVICES[operation]
    try:
        with request.app.state.db.session() as session:
            principal = token_principal(request, session)
            repo = service.authorize(session, settings, principal, project, name, access)  # type: ignore[arg-type]
    except DataLibraryError as error:
        return _refusal(error)
    via = "workspace" if (principal.token_scope or "").startswith("workspace:") else "git"
    env = backend.cgi_environment(
        project_root=storage.root(settings),
        path_info=f"/{project}/{repo.name}.git/{rest}",
        method=request.method,
        query=request.url.query,
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        content_encoding=request.headers.get("content-encoding"),
        git_protocol=request.headers.get("git-protocol"),
        remote_user=principal.name,
        remote_addr=request.client.host if request.client else "",
        config={"core.hooksPath": str(hooks.hooks_dir(settings)), "receive.fsckObjects": "true"},
        extra={},
    )
    record = None
    guard: PushGuard | None = None
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            spool.close()
            return PlainTextResponse(f"a push is limited to {MAX_REQUEST_BYTES} bytes\n", status_code=413)
        spool.write(chunk)
    spool.seek(0)
    if request.method == "POST" and operation == "git-upload-pack":
        body = spool.read()
        spool.seek(0)
        wants, is_fetch, has_haves = _wants(body, request.headers.get("content-encoding"))
        if is_fetch:
            record = _fetch_recorder(request, principal, repo, wants, not has_haves, via)
    if request.method == "POST":
        env["CONTENT_LENGTH"] = str(size)  # chunked uploads are whole now
    if request.method == "POST" and operation == "git-receive-pack":
        try:
            await asyncio.to_thread(_refresh_fingerprints, request)
        except Exception:  # fail closed: no push passes a guard that cannot see the lake
            log.exception("the push guard could not read the lake's identifying values")
            spool.close()
            return PlainTextResponse(
                "the push guard cannot read the lake's identifying values right now; try again later\n",
                status_code=503,
            )
        guard = PushGuard(hooks.push_dir(settings), repo.path, hooks.guard_config(settings))
        env.update(guard.environment())
        guard.start()
        before = storage.refs(repo.path)
        record = _push_recorder(request, principal, repo, before, guard, via)
    try:
        result = await backend.run(env, spool)
    except RuntimeError:
        log.exception("git http-backend failed for %s/%s", project, repo.name)
        spool.close()
        if guard is not None:
            await asyncio.to_thread(guard.close)
        return PlainTextResponse("the Git service failed; try again\n", status_code=500)

    async def finish() -> None:
        code = await result.done
        try:
            if guard is not None:
                await asyncio.to_thread(guard.close)
            if record is not None:
                await record(code)
        finally:
            spool.close()

    headers = {k: v for k, v in result.headers if k.lower() not in ("content-length",)}
    return StreamingResponse(
        result.body, status_code=result.status, headers=headers, background=BackgroundTask(finish)
    )


def _refresh_fingerprints(request: Request) -> None:
    with request.app.state.db.session() as session:
        fingerprints.refresh(request.app.state.settings, session)


def _fetch_recorder(
    request: Request, principal: Principal, repo: RepoFacts, wants: list[str], clone: bool, via: str
):  # type: ignore[no-untyped-def]
    async def record(code: int) -> None:
        def write() -> None:
            with request.app.state.db.session() as session:
                service.record_fetch(session, principal, repo, wants=wants, clone=clone, via=via)

        await asyncio.to_thread(write)

    return record


def _push_recorder(  # type: ignore[no-untyped-def]
    request: Request,
    principal: Principal,
    repo: RepoFacts,
    before: dict[str, str],
    guard: PushGuard,
    via: str,
):
    async def record(code: int) -> None:
        def write() -> None:
            after = storage.refs(repo.path)
            refusal = None
            if guard.findings:
                refusal = {
                    "findings": [{"path": f["path"], "reason": f["reason"]} for f in guard.findings[:20]]
                }
            if refusal is None and after == before:
                return  # nothing pushed (an up-to-date push or a refused connection)
            if guard.findings is None:
                log.error("a push to %s/%s moved refs without its guard being asked", repo.project, repo.name)
            with request.app.state.db.session() as session:
                service.record_push(
                    session, principal, repo, before=before, after=after, refusal=refusal, via=via
                )

        await asyncio.to_thread(write)

    return record
