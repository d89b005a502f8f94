"""The front ends stay thin and independent: every console page declares its permission as a
typed dependency (like the API's ``Requires``), and what the console and the API both show of a
workspace comes from the domain's schemas, with errors that surface instead of fake values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.routing import APIRoute

from datalibrary.errors import InvalidInput
from datalibrary.web import guards
from datalibrary.web.routers import PAGE_ROUTERS
from datalibrary.workspaces import schemas
from datalibrary.workspaces.models import Workspace
from tests.helpers import Platform
from tests.test_web import page_csrf, sign_in

# Pages anyone may reach: signing in and out, the problem types, the home page (which sends
# anonymous visitors to sign in itself) and a redirect that shows nothing.
PUBLIC = {"/", "/login", "/logout", "/problems/{slug}", "/lineage/users"}


def _calls(dependant):  # type: ignore[no-untyped-def]
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def test_every_console_page_declares_a_typed_guard() -> None:
    unguarded = [
        (sorted(route.methods), route.path)
        for router in PAGE_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        and route.path not in PUBLIC
        and guards.signed_in not in set(_calls(route.dependant))
    ]
    assert unguarded == []


def test_a_guarded_form_refuses_before_it_runs(sqlite_platform: Platform) -> None:
    anonymous = sqlite_platform.anonymous.post("/admin/groups", data={"name": "g"}, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=/admin/groups")
    admin = sign_in(sqlite_platform, "admin", sqlite_platform.admin_password)
    csrf = page_csrf(admin.get("/admin/users").text)
    created = admin.post(
        "/admin/users",
        data={"csrf_token": csrf, "name": "reader", "password": "a-long-password-1", "roles": "auditor"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    reader = sign_in(sqlite_platform, "reader", "a-long-password-1")
    refused = reader.post("/admin/groups", data={"csrf_token": page_csrf(reader.get("/").text), "name": "g"})
    assert refused.status_code == 403
    assert "Your roles do not allow this page." in refused.text
    assert "g" not in [row["name"] for row in admin.get("/api/v1/groups").json()]


def _workspace(instance_type: str, provisioner: str) -> Workspace:
    now = datetime.now(UTC)
    return Workspace(
        id=7, owner_id=1, project=None, product="jupyter-python", instance_type=instance_type,
        environment="python", provisioner=provisioner, state="running", state_reason="",
        state_changed_at=now, created_at=now, idle_timeout_minutes=60, last_activity_at=now,
        idle_warning_at=None,
    )  # fmt: skip


def test_a_workspace_whose_type_left_the_catalog_has_no_price(sqlite_platform: Platform) -> None:
    settings = sqlite_platform.settings
    priced = schemas.workspace_view(_workspace("t3.medium", "process"), "alice", settings)
    assert priced.price_per_hour is not None and priced.price_per_hour > 0
    assert priced.isolated is False  # the process provisioner isolates nothing
    gone = schemas.workspace_view(_workspace("retired.type", "process"), "alice", settings)
    assert gone.price_per_hour is None  # unknown, not free


def test_a_workspace_with_an_unknown_provisioner_is_an_error(sqlite_platform: Platform) -> None:
    with pytest.raises(InvalidInput):
        schemas.workspace_view(_workspace("t3.medium", "no-such-backend"), "alice", sqlite_platform.settings)
