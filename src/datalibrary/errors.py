"""Errors shared by every domain; ``api.problems`` maps them to RFC 9457 problems.

Each error has a stable ``slug`` (the problem ``type``) and an HTTP status. Messages
are written for the person who sees them: say what is wrong and what to do.

An error's keyword arguments (``extra``) serve the server (logs, the audit, an ingestion
job's record) and may hold what a client must not see: a refused value, a file's evidence.
Only the names in its class's ``extensions`` reach a problem document; a new one must also be
in the published ``Problem`` schema (``api.openapi``; ``tests/test_problems.py`` checks).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DataLibraryError(Exception):
    slug = "error"
    status = 400
    title = "Request failed"
    # The members of ``extra`` a client may see (RFC 9457 extension members); declared per
    # error, never inherited by accident from a wider list.
    extensions: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(DataLibraryError):
    slug = "invalid-input"
    status = 422
    title = "Invalid input"
    extensions = frozenset({"field", "reason", "row", "column"})


class NotAuthenticated(DataLibraryError):
    slug = "not-authenticated"
    status = 401
    title = "Authentication required"
    extensions = frozenset({"reason"})


class PermissionDenied(DataLibraryError):
    slug = "permission-denied"
    status = 403
    title = "Permission denied"
    extensions = frozenset({"field", "permission"})


class NotFound(DataLibraryError):
    slug = "not-found"
    status = 404
    title = "Not found"


class Conflict(DataLibraryError):
    slug = "conflict"
    status = 409
    title = "Conflict"
    extensions = frozenset({"field", "size_bytes"})


class BudgetExceeded(DataLibraryError):
    """A monthly budget is spent: launches and large queries wait until an admin raises it."""

    slug = "budget-exceeded"
    status = 402
    title = "Budget exceeded"


class TooLarge(DataLibraryError):
    slug = "too-large"
    status = 413
    title = "Too large"


class TooManyRequests(DataLibraryError):
    slug = "too-many-requests"
    status = 429
    title = "Too many requests"
    extensions = frozenset({"retry_after"})


class Unavailable(DataLibraryError):
    slug = "unavailable"
    status = 503
    title = "Service unavailable"


ALL_ERRORS: tuple[type[DataLibraryError], ...] = (
    DataLibraryError,
    InvalidInput,
    NotAuthenticated,
    PermissionDenied,
    NotFound,
    Conflict,
    BudgetExceeded,
    TooLarge,
    TooManyRequests,
    Unavailable,
)
