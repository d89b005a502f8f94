"""Deny by default, proven over every operation of the OpenAPI document: an anonymous
caller gets 401 and a caller without the operation's permission (its security scope) gets
403. A new route that forgets ``Requires(Permission...)`` fails here."""

from __future__ import annotations

import re

import pytest

from datalibrary.auth.permissions import ROLE_PERMISSIONS
from tests.helpers import Platform

# Operations anyone may call.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/lineage/facets/{name}.json"),  # the _schemaURL of our facets: shape only
}
# Operations for any signed-in caller, whatever its roles.
ANY_SIGNED_IN = {("GET", "/api/v1/me"), ("GET", "/api/v1/version"), ("POST", "/api/v1/auth/logout")}


def operations(platform: Platform) -> dict[tuple[str, str], set[str] | None]:
    """(method, path) -> the permissions it requires; None when the operation is public."""
    spec = platform.anonymous.get("/api/openapi.json").json()
    found: dict[tuple[str, str], set[str] | None] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            security = operation.get("security")
            found[(method.upper(), path)] = (
                None
                if security is None
                else {s for requirement in security for v in requirement.values() for s in v}
            )
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_public_operations_are_exactly_the_listed_ones(sqlite_platform: Platform) -> None:
    public = {op for op, needed in operations(sqlite_platform).items() if needed is None}
    assert public == PUBLIC


def test_every_operation_declares_a_permission(sqlite_platform: Platform) -> None:
    undeclared = {op for op, needed in operations(sqlite_platform).items() if needed == set()}
    assert undeclared == ANY_SIGNED_IN, "operations without Requires(Permission...)"


def test_anonymous_callers_are_refused_everywhere(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    for (method, path), needed in operations(sqlite_platform).items():
        if needed is None:
            continue
        response = client.request(method, concrete(path), json={})
        assert response.status_code == 401, f"{method} {path} answered {response.status_code} to anonymous"


@pytest.mark.parametrize("role", [None, "scientist", "auditor", "steward"])
def test_callers_without_the_permission_are_refused(sqlite_platform: Platform, role: str | None) -> None:
    name = f"user-{role or 'none'}"
    sqlite_platform.add_user(name, *([role] if role else []))
    client = sqlite_platform.as_user(name)
    held = {p.value for p in ROLE_PERMISSIONS.get(role or "", frozenset())}
    checked = 0
    for (method, path), needed in operations(sqlite_platform).items():
        if not needed or needed <= held:
            continue
        response = client.request(method, concrete(path), json={})
        assert response.status_code == 403, f"{method} {path} answered {response.status_code} to {role}"
        checked += 1
    assert checked > 0
