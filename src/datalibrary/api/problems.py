"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every error has a stable ``type`` (``/problems/<slug>``, documented in
docs/reference/problems.md); a stack trace never leaves the server.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from datalibrary.errors import DataLibraryError
from datalibrary.logs import request_id_var

MEDIA_TYPE = "application/problem+json"
HTTP_SLUGS = {
    400: "bad-request",
    401: "not-authenticated",
    403: "permission-denied",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}


def problem(status: int, slug: str, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_var.get(),
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429 and "retry_after" in extra:
        headers = {"Retry-After": str(extra["retry_after"])}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DataLibraryError)
    return problem(exc.status, exc.slug, exc.title, exc.detail, request, **exc.extra)


def wants_html(request: Request) -> bool:
    """A person's browser asking for a page (not an API client)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    slug = HTTP_SLUGS.get(exc.status_code, "error")
    title = slug.replace("-", " ").capitalize()
    if wants_html(request):
        from datalibrary.web.rendering import PageContext, render

        detail = "There is no page at this address." if exc.status_code == 404 else str(exc.detail)
        page = PageContext(title=title, data={"detail": detail})
        return render(request, "error.html", page, status_code=exc.status_code)
    return problem(exc.status_code, slug, title, str(exc.detail), request)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(part) for part in err["loc"]), "message": err["msg"]} for err in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "invalid-input", "Invalid input", detail, request, errors=errors)


def internal_error(request: Request) -> JSONResponse:
    return problem(
        500,
        "internal-error",
        "Internal error",
        "the server failed to handle this request; quote the request id when reporting it",
        request,
    )


async def _database_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """The database went away (a restart, a failover): 503 with Retry-After, not a 500, so
    load balancers and clients retry; the pool reconnects on its own (pool_pre_ping)."""
    response = problem(
        503,
        "unavailable",
        "Service unavailable",
        "the database is unreachable at the moment; try again in a few seconds",
        request,
    )
    response.headers["Retry-After"] = "2"
    return response


def install(app: FastAPI) -> None:
    from sqlalchemy.exc import OperationalError

    app.add_exception_handler(OperationalError, _database_unreachable)
    app.add_exception_handler(DataLibraryError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
