"""Problem documents carry RFC 9457's members and each error's declared extensions, nothing else.

Errors carry more than a client may see (a refused value, a file's evidence, a path): an
attacker who provokes an error must not read any of it from the response."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import datalibrary
from datalibrary import errors
from datalibrary.api.openapi import PROBLEM_SCHEMA
from datalibrary.api.problems import BASE_MEMBERS, PUBLIC_EXTRAS
from tests.helpers import Platform

CANARY = "canary-7f3a"


def _every_error_class() -> set[type[errors.DataLibraryError]]:
    """Every DataLibraryError subclass in the package (domain errors live in their modules)."""
    for module in pkgutil.walk_packages(datalibrary.__path__, "datalibrary."):
        if ".inside" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[type[errors.DataLibraryError]] = set()
    pending = [errors.DataLibraryError]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("error", errors.ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_undeclared_members_and_attributes_never_reach_the_response(
    sqlite_platform: Platform, error: type[errors.DataLibraryError]
) -> None:
    app = sqlite_platform.app
    path = f"/api/v1/leak-{error.__name__.lower()}"
    declared = {name: 7 for name in error.extensions}

    @app.get(path)
    def leak() -> None:
        exc = error("what went wrong", evidence=CANARY, value=CANARY, file=f"/srv/{CANARY}", **declared)
        exc.secret = CANARY  # type: ignore[attr-defined]  # an attribute set by a handler on the way
        exc.__dict__["password"] = CANARY
        raise exc

    response = sqlite_platform.anonymous.get(path)
    assert response.status_code == error.status
    assert CANARY not in response.text
    body = response.json()
    assert set(body) == BASE_MEMBERS | set(error.extensions), body
    assert all(body[name] == 7 for name in error.extensions)


def test_an_extension_declared_by_another_error_is_not_sent(sqlite_platform: Platform) -> None:
    """``size_bytes`` is a Conflict's; on a not-found it is just data of the server's."""
    app = sqlite_platform.app

    @app.get("/api/v1/leak-borrowed")
    def leak() -> None:
        raise errors.NotFound("no such thing", size_bytes=123456, permission="admin", retry_after=5)

    body = sqlite_platform.anonymous.get("/api/v1/leak-borrowed").json()
    assert set(body) == BASE_MEMBERS, body


def test_every_declared_extension_is_in_the_published_problem_schema() -> None:
    """A client reading the OpenAPI document knows every member an error may carry."""
    schema_members = set(PROBLEM_SCHEMA["properties"])
    for cls in _every_error_class():
        assert isinstance(cls.extensions, frozenset), cls
        assert cls.extensions <= PUBLIC_EXTRAS, (cls, cls.extensions - PUBLIC_EXTRAS)
    assert schema_members == BASE_MEMBERS | PUBLIC_EXTRAS
