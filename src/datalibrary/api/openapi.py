"""The OpenAPI document, made to tell the truth about errors.

FastAPI documents only the success response and a JSON ``HTTPValidationError`` for 422,
while every error this API returns is an RFC 9457 problem (``application/problem+json``,
see ``api.problems``). Generated clients and contract testers (schemathesis) trust the
document, so each operation lists the problem responses it can give, all with one
``Problem`` schema, and the document no longer mentions FastAPI's error schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from datalibrary.api.problems import MEDIA_TYPE, PUBLIC_EXTRAS

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem. `type` is stable (`/problems/<slug>`, documented at that "
    "address); `detail` says what went wrong and what to do; `request_id` identifies the request "
    "in the server's logs.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "pattern": "^/problems/[a-z0-9-]+$"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "field": {"type": "string", "description": "The input field the problem is about."},
        "retry_after": {"type": "integer", "minimum": 0, "description": "Seconds to wait (429)."},
        "reason": {"type": "string", "description": "A machine-readable cause, where one is defined."},
        "permission": {"type": "string", "description": "The permission the caller lacks (403)."},
        "row": {"type": "integer", "minimum": 0, "description": "The input row the problem is about."},
        "column": {"type": "string", "description": "The input column the problem is about."},
        "size_bytes": {
            "type": "integer",
            "minimum": 0,
            "description": "An upload's recorded size: where a resumed upload continues (409).",
        },
        "errors": {
            "type": "array",
            "description": "One entry per invalid input (422).",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

# Why an operation may answer each status (the wording shown in the API docs).
REASONS = {
    "400": "The request cannot be carried out as asked.",
    "401": "No valid credentials: sign in or send `Authorization: Bearer <token>`.",
    "403": "The caller lacks the permission this operation requires (see its scopes).",
    "404": "The resource does not exist or is not visible to the caller.",
    "409": "The request conflicts with the resource's current state.",
    "422": "The input is invalid; `errors` lists each field.",
    "500": "The server failed; quote `request_id` when reporting it.",
    "default": "Any other error (e.g. 402 budget exceeded, 413 too large, 429 too many requests, "
    "503 unavailable), always as a problem.",
}
MUTATING = {"post", "put", "patch", "delete"}
FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _problem_response(reason: str) -> dict[str, Any]:
    return {
        "description": reason,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["500", "default"]
    takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
    if takes_input:
        statuses += ["400", "422"]
    if operation.get("security"):
        statuses += ["401", "403", "404"]
    elif "{" in path:
        statuses.append("404")
    if method in MUTATING:
        statuses.append("409")
    return statuses


def describe_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``document`` in place so every operation documents its problem responses."""
    declared = set(PROBLEM_SCHEMA["properties"]) - {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
    }
    assert declared == PUBLIC_EXTRAS, "the Problem schema and api.problems.PUBLIC_EXTRAS must agree"
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in _error_statuses(method, path, operation):
                existing = responses.get(status, {})
                responses[status] = {**_problem_response(REASONS[status]), **_keep_description(existing)}
    return document


def _keep_description(response: dict[str, Any]) -> dict[str, Any]:
    """A route's own wording for an error wins over the generic one (its schema does not)."""
    description = response.get("description")
    if description and description not in {"Validation Error", "Successful Response"}:
        return {"description": description}
    return {}


def install(app: FastAPI) -> None:
    """Serve the rewritten document (built once, like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = describe_problems(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
