"""RFC 9457 problem details: the one place where errors become HTTP responses.

Every error has a stable ``type`` (``/problems/<slug>``, documented in
docs/reference/problems.md); a stack trace never leaves the server.
"""

from __future__ import annotations

import re
from functools import lru_cache
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from datalibrary.errors import ALL_ERRORS, DataLibraryError
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


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request: Request,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """One problem document: RFC 9457's members and the published extensions in ``extra``
    (any other name is dropped, and none can replace a base member)."""
    body = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_var.get(),
    }
    body.update((key, value) for key, value in extra.items() if key in PUBLIC_EXTRAS)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 429 and "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers or None)


# RFC 9457's members (with the request id) are in every problem; anything else must be declared.
BASE_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "request_id"})
# Every extension member a problem may carry: each error's declared ``extensions`` and the
# validation handler's ``errors``. The published ``Problem`` schema lists exactly these.
PUBLIC_EXTRAS = frozenset({"errors"}).union(*(error.extensions for error in ALL_ERRORS))
assert not PUBLIC_EXTRAS & BASE_MEMBERS, "an extension may not replace a base member"


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    """Only the error's declared extensions: what else it carries (a refused value, a file's
    evidence, attributes added on the way) is the server's."""
    assert isinstance(exc, DataLibraryError)
    declared = type(exc).extensions
    extra = {key: value for key, value in exc.extra.items() if key in declared}
    return problem(exc.status, exc.slug, exc.title, exc.detail, request, **extra)


def wants_html(request: Request) -> bool:
    """A person's browser asking for a page (not an API client)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _framework_detail(request: Request, exc: StarletteHTTPException) -> str:
    """Say what went wrong: the framework's detail is often just the status phrase again."""
    if exc.status_code == 404:
        return f"there is nothing at {request.url.path}; the API's operations are listed at /api/docs"
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return f"{request.method} is not allowed on {request.url.path}; allowed: {allowed or 'none'}"
    detail = str(exc.detail)
    if detail == HTTPStatus(exc.status_code).phrase:
        return f"the request was refused ({exc.status_code} {detail})"
    return detail


def allowed_methods(request: Request, fallback: str) -> str:
    """Every method the API serves at this path. The router stops at the first route whose
    path matches, so its own 405 names only that route's methods; RFC 9110 wants them all,
    and the OpenAPI document (which clients trust) lists them per path."""
    matches = [
        (template.count("{"), item)
        for template, item in request.app.openapi().get("paths", {}).items()
        if _template_regex(template).fullmatch(request.url.path)
    ]
    if not matches:
        return fallback
    fewest = min(params for params, _ in matches)  # a literal segment wins over a parameter
    methods = {
        m.upper() for params, item in matches if params == fewest for m in item if m.upper() in HTTP_METHODS
    }
    return ", ".join(sorted(methods))


HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}


@lru_cache(maxsize=1024)
def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        fallback = (exc.headers or {}).get("Allow", "")
        exc.headers = {**(exc.headers or {}), "Allow": allowed_methods(request, fallback)}
    slug = HTTP_SLUGS.get(exc.status_code, "error")
    title = slug.replace("-", " ").capitalize()
    if wants_html(request):
        from datalibrary.web.rendering import PageContext, render

        detail = "There is no page at this address." if exc.status_code == 404 else str(exc.detail)
        page = PageContext(title=title, data={"detail": detail})
        response = render(request, "error.html", page, status_code=exc.status_code)
        response.headers.update(exc.headers or {})
        return response
    return problem(exc.status_code, slug, title, _framework_detail(request, exc), request, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(err), "message": _message(err)} for err in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "invalid-input", "Invalid input", detail, request, errors=errors)


def _field(error: dict[str, Any]) -> str:
    """``("body", "name")`` -> ``body.name``; malformed JSON is about the body as a whole."""
    if error.get("type") == "json_invalid":
        return "body"
    return ".".join(str(part) for part in error["loc"])


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return f"the request body is not valid JSON ({reason})" if reason else "the body is not valid JSON"
    return str(error["msg"])


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
