"""The package index pip and uv use: ``/pypi/simple/`` (PEP 503 pages) and ``/pypi/files/``,
served from devpi-server through the policy and recorded; R's ``install.packages()`` uses
``/cran/`` (the repository admins populate). Authentication is a token as the
Basic password (or Bearer), as for Git; the console's cookie is never accepted. Not part
of the API document (pip and R are its clients)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from datalibrary.api.routers.git_http import token_principal
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.errors import DataLibraryError, InvalidInput
from datalibrary.packages import cran, policy, server, service

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
REALM = 'Basic realm="DataLibrary packages", charset="UTF-8"'


def _caller(request: Request) -> Principal:
    principal = token_principal(request)
    return require(principal, Permission.PACKAGES_INSTALL)


def _refusal(error: DataLibraryError) -> Response:
    headers = {"WWW-Authenticate": REALM} if error.status == 401 else {}
    return PlainTextResponse(f"{error.detail}\n", status_code=error.status, headers=headers)


async def _mirror(request: Request) -> None:
    await asyncio.to_thread(server.ensure_running, request.app.state.settings)


@router.get("/pypi/simple/")
async def simple_root(request: Request) -> Response:
    try:
        _caller(request)
    except DataLibraryError as error:
        return _refusal(error)
    return HTMLResponse("<!DOCTYPE html><html><body><h1>DataLibrary package mirror</h1></body></html>\n")


@router.get("/pypi/simple/{name}/")
async def simple_project(name: str, request: Request) -> Response:
    try:
        principal = _caller(request)
        with request.app.state.db.session() as session:
            decision = policy.decide(session, name)
            internal = policy.decide(session, name, internal=True)
            if not internal.allowed:
                service.record_install(session, principal, name, "", "", refused=internal.reason)
    except DataLibraryError as error:
        return _refusal(error)
    if not internal.allowed:  # denied outright
        return HTMLResponse(service.refused_page(name, internal.reason))
    await _mirror(request)
    async with server.async_client(request.app.state.settings) as http:
        upstream = await http.get(f"/{server.INTERNAL}/+simple/{name}/", headers={"Accept": "text/html"})
    if upstream.status_code >= 400 and upstream.status_code != 404:
        return PlainTextResponse(f"the mirror answered {upstream.status_code}\n", status_code=502)
    text = upstream.text if upstream.status_code == 200 else ""
    if decision.allowed:
        return HTMLResponse(service.filter_page(text, name, decision))
    # allow-list mode, no allow rule: only what was uploaded to the internal index
    page, count = service.filter_page(text, name, internal, internal_only=True), 0
    count = page.count("<a ")
    if count == 0:
        with request.app.state.db.session() as session:
            service.record_install(session, principal, name, "", "", refused=decision.reason)
        return HTMLResponse(service.refused_page(name, decision.reason))
    return HTMLResponse(page)


@router.get("/pypi/refused/{name}/{words}/{filename}")
async def refused_file(name: str, words: str, filename: str, request: Request) -> Response:
    try:
        _caller(request)
        with request.app.state.db.session() as session:
            decision = policy.decide(session, name)
    except DataLibraryError as error:
        return _refusal(error)
    reason = decision.reason or "this file is not available"
    return PlainTextResponse(f"Refused by the DataLibrary package policy: {reason}\n", status_code=403)


@router.get("/pypi/files/{path:path}")
async def package_file(path: str, request: Request) -> Response:
    try:
        principal = _caller(request)
        with request.app.state.db.session() as session:
            name, version, decision = service.check_file(session, path)
            if not decision.allowed:
                service.record_install(
                    session, principal, name, version, path.rsplit("/", 1)[1], refused=decision.reason
                )
    except InvalidInput:
        return PlainTextResponse("not a file of the mirror\n", status_code=404)
    except DataLibraryError as error:
        return _refusal(error)
    if not decision.allowed:
        return PlainTextResponse(
            f"Refused by the DataLibrary package policy: {decision.reason}\n", status_code=403
        )
    await _mirror(request)
    settings = request.app.state.settings
    http = server.async_client(settings)
    upstream = await http.send(http.build_request("GET", f"/{path}"), stream=True)
    if upstream.status_code >= 400:
        await upstream.aclose()
        await http.aclose()
        return PlainTextResponse(f"the mirror answered {upstream.status_code}\n", status_code=502)

    def record() -> None:
        with request.app.state.db.session() as session:
            service.record_install(session, principal, name, version, path.rsplit("/", 1)[1])

    async def finish() -> None:
        await upstream.aclose()
        await http.aclose()
        await asyncio.to_thread(record)

    headers = {
        k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "content-length", "etag")
    }
    return StreamingResponse(upstream.aiter_raw(), headers=headers, background=BackgroundTask(finish))


# --- R: the CRAN-like repository admins populate (packages.cran) -----------------------------


@router.get("/cran/src/contrib/{filename}")
async def cran_file(filename: str, request: Request) -> Response:
    """``install.packages()`` reads ``PACKAGES[.gz]`` then fetches a tarball; each tarball
    served is recorded as an install, each refused one as a refusal. Upstream CRAN is never
    asked."""
    settings = request.app.state.settings
    try:
        principal = _caller(request)
        if filename in ("PACKAGES", "PACKAGES.gz"):
            with request.app.state.db.session() as session:
                body = await asyncio.to_thread(cran.served_index, settings, session, filename)
            return Response(body, media_type="application/octet-stream")
        path = cran.served_file(settings, filename)
        with request.app.state.db.session() as session:
            name, version, refused = cran.tarball_refusal(session, filename)
            if refused:
                service.record_install(
                    session, principal, name, version, filename, refused=refused, ecosystem="r"
                )
    except DataLibraryError as error:
        return _refusal(error)
    if refused:
        return PlainTextResponse(f"Refused by the DataLibrary package policy: {refused}\n", status_code=403)

    def record() -> None:
        with request.app.state.db.session() as session:
            service.record_install(session, principal, name, version, filename, ecosystem="r")

    return FileResponse(
        path, media_type="application/gzip", background=BackgroundTask(asyncio.to_thread, record)
    )


@router.get("/cran/src/contrib/refused/{words}/{filename}")
async def cran_refused(words: str, filename: str, request: Request) -> Response:
    """Where the index points a refused package (its address spells the reason, which R
    shows); recorded as a refusal with the policy's current reason."""
    try:
        principal = _caller(request)
        with request.app.state.db.session() as session:
            name, version, refused = cran.tarball_refusal(session, filename)
            reason = refused or "this package was refused when the index was read; read the index again"
            service.record_install(session, principal, name, version, filename, refused=reason, ecosystem="r")
    except DataLibraryError as error:
        return _refusal(error)
    return PlainTextResponse(f"Refused by the DataLibrary package policy: {reason}\n", status_code=403)
