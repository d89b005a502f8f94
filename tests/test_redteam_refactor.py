"""Red team after the refactor: attacks on the boundaries the refactor moved (console guards,
the CLI's ``--as USER``, problem responses, redacted settings). Each attack is a test; a
test that held stays as a regression test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from typer.testing import CliRunner

from datalibrary.auth import service as auth_service
from datalibrary.cli import app as cli_app
from datalibrary.config import Settings, redact_url
from datalibrary.errors import NotFound
from datalibrary.web.routers import PAGE_ROUTERS
from tests.helpers import PASSWORD, ApiClient, Platform
from tests.lake_helpers import add_policy, ingest, write_csv


def run_cli(*args: str, code: int | None = 0) -> str:
    result = CliRunner().invoke(cli_app, list(args))
    if code is not None:
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.stdout


@pytest.fixture
def lake(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    """``demo.vs`` ingested; ``ada`` (scientist) granted it; the CLI on the same installation."""
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())
    monkeypatch.delenv("DATALIBRARY_USER", raising=False)
    add_policy(platform)
    write_csv(tmp_path / "vs.csv", {"SITEID": ["1", "2"] * 10, "VAL": list(range(20))})
    assert ingest(platform, tmp_path / "vs.csv", "demo.vs")[1] == "succeeded"
    platform.add_user("ada", "scientist")
    run_cli("grants", "add", "--principal", "user:ada", "--table", "demo.vs")
    return platform


# --- 2. CLI --as USER ------------------------------------------------------------------------


def test_empty_as_user_does_not_fall_back_to_the_operator(lake: Platform, tmp_path: Path) -> None:
    """``--as ""`` was falsy, so ``exports review/request/download`` ran as the operator, who
    holds every right: a review with nobody's reviewer role, an export request with every grant."""
    made = json.loads(
        run_cli(
            "exports", "request", "--as", "ada", "--purpose", "aggregate for a poster",
            "--destination", "laptop", "--sql", "SELECT SITEID FROM demo.vs", "--json",
        )
    )  # fmt: skip
    run_cli(
        "exports", "review", str(made["id"]), "--as", "", "--approve", "--json",
        "--override-reason", "the operator decides for nobody", code=None,
    )  # fmt: skip
    listed = json.loads(run_cli("exports", "list", "--json"))
    assert [x["state"] for x in listed if x["id"] == made["id"]] == ["pending"], "approved by nobody"
    result = CliRunner().invoke(
        cli_app,
        ["exports", "request", "--as", "", "--purpose", "aggregate for a poster", "--destination", "laptop",
         "--sql", "SELECT * FROM demo.vs", "--json"],
    )  # fmt: skip
    assert result.exit_code != 0, "an export requested by the operator with every grant"
    assert len(json.loads(run_cli("exports", "list", "--json"))) == 1
    lake.add_user("sue", "steward")
    run_cli(
        "exports", "review", str(made["id"]), "--as", "sue", "--approve", "--json",
        "--override-reason", "aggregate only, reviewed by a steward",
    )  # fmt: skip
    stolen = tmp_path / "stolen.csv"
    run_cli("exports", "download", str(made["id"]), "--as", "", "--output", str(stolen), code=None)
    assert not stolen.exists(), "the operator took ada's export"
    run_cli("exports", "list", "--as", "", "--json", code=2)  # not everyone's list either


def test_as_user_query_reads_with_the_users_grants(lake: Platform) -> None:
    """A user without a grant reads nothing through ``--as``, whatever the operator may read."""
    lake.add_user("bob", "scientist")
    run_cli("query", "SELECT * FROM demo.vs", "--as", "bob", "--json", code=2)
    run_cli("query", "SELECT * FROM demo.vs", "--as", "", "--json", code=2)


# --- 1. console guards -----------------------------------------------------------------------


def sign_in(platform: Platform, name: str, password: str = PASSWORD) -> tuple[ApiClient, str]:
    """A console session for ``name`` and its CSRF token."""
    client = platform.anonymous
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login", data={"name": name, "password": password, "csrf_token": csrf, "next": "/"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, response.text
    page = client.get("/account").text
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def _console_routes(platform: Platform, method: str) -> list[str]:
    """Every console path answering ``method``, path parameters filled with harmless values."""
    paths = []
    for router in PAGE_ROUTERS:
        for route in router.routes:
            skipped = route.path in ("/login", "/logout")
            if isinstance(route, APIRoute) and method in route.methods and not skipped:
                paths.append(re.sub(r"\{[^}]+\}", "1", route.path))
    assert paths
    return sorted(set(paths))


def test_anonymous_posts_to_any_console_form_are_sent_to_sign_in(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    for path in _console_routes(sqlite_platform, "POST"):
        response = client.post(path, data={"csrf_token": ""}, follow_redirects=False)
        assert response.status_code == 303, f"POST {path}: {response.status_code}"
        assert response.headers["location"].startswith("/login"), path


def test_anonymous_gets_of_console_pages_reveal_nothing(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    for path in _console_routes(sqlite_platform, "GET"):
        response = client.get(path, follow_redirects=False)
        if path.startswith("/problems/"):
            continue  # the public problem-type pages
        assert response.status_code in (303, 307), f"GET {path}: {response.status_code}"
        target = response.headers["location"]
        assert target.startswith("/login") or path == "/lineage/users", f"GET {path} -> {target}"


def test_console_forms_refuse_a_forged_csrf_token(sqlite_platform: Platform) -> None:
    """The admin holds every permission: only the CSRF check can refuse these posts."""
    client, _ = sign_in(sqlite_platform, "admin", sqlite_platform.admin_password)
    for path in _console_routes(sqlite_platform, "POST"):
        response = client.post(path, data={"csrf_token": "forged", "name": "x1"}, follow_redirects=False)
        assert response.status_code != 303 or "/login" in response.headers["location"], (
            f"POST {path} accepted a forged CSRF token -> {response.headers.get('location')}"
        )
    assert "x1" not in client.get("/admin/users").text


ADMIN_PAGES = ["/admin", "/admin/users", "/admin/groups", "/admin/projects", "/admin/audit",
               "/admin/backups", "/admin/workspace-pool", "/costs/compare", "/exports/1", "/jobs",
               "/catalog/ingest", "/packages", "/lineage/users/admin", "/lineage/datasets/demo.vs",
               "/lineage/report?scope=demo.vs"]  # fmt: skip


def test_a_scientist_is_refused_every_admin_page_and_form(sqlite_platform: Platform) -> None:
    sqlite_platform.add_user("sam", "scientist")
    client, csrf = sign_in(sqlite_platform, "sam")
    for path in ADMIN_PAGES:
        assert client.get(path, follow_redirects=False).status_code == 403, path
    forms = {
        "/admin/users": {"name": "mallory", "password": "Correct-horse-9", "roles": "admin"},
        "/admin/users/sam/roles": {"roles": "admin"},
        "/admin/groups": {"name": "g1"},
        "/admin/projects": {"name": "p1"},
        "/admin/backups": {},
        "/admin/workspace-pool/refill": {},
        "/access/grants": {"principal": "user:sam", "table": "demo.vs"},
        "/access/requests/1/decision": {"decision": "approve"},
        "/exports/1/decision": {"decision": "approve"},
        "/costs/budgets": {},
        "/costs/prices": {},
    }
    for path, data in forms.items():
        response = client.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)
        assert response.status_code == 403, f"POST {path}: {response.status_code}"
    with sqlite_platform.db.session() as session:
        assert auth_service.principal_for(auth_service.get_user(session, "sam")).roles == {"scientist"}
        with pytest.raises(NotFound):
            auth_service.get_user(session, "mallory")


# --- 4. settings ---------------------------------------------------------------------------


def test_a_token_in_a_url_user_part_is_hidden() -> None:
    """A package index or upstream often takes its token as the URL's user name alone
    (``https://TOKEN@host/simple``): it is a credential and must not be shown."""
    assert "ghp_abc123" not in redact_url("https://ghp_abc123@pkgs.example/simple")
    assert (
        redact_url("postgresql://dl:pw@db:5432/x?password=q") == "postgresql://dl:***@db:5432/x?password=***"
    )


def test_config_show_and_api_hide_every_secret(lake: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets_ = {
        "DATALIBRARY_LAKE__S3_SECRET_ACCESS_KEY": "s3-secret-zzz",
        "DATALIBRARY_COSTS__WEBHOOK_URL": "https://hooks.example/T0/B1/hooktoken-zzz",
        "DATALIBRARY_LINEAGE__FORWARD_URL": "https://ol.example/api?token=fwdtoken-zzz",
        "DATALIBRARY_LINEAGE__FORWARD_TOKEN": "fwd-bearer-zzz",
        "DATALIBRARY_SECRET_KEY": "secret-key-zzz",
    }
    for key, value in secrets_.items():
        monkeypatch.setenv(key, value)
    shown = run_cli("config", "show", "--json", code=None) + json.dumps(Settings().redacted())
    for value in secrets_.values():
        assert value not in shown
    assert "zzz" not in shown
    body = lake.as_user("admin").get("/api/v1/config").text
    assert lake.settings.database_url is None or "secret" not in body.lower() or "zzz" not in body


# --- 5. hooks: the budget check on every entry point -------------------------------------------


def test_an_export_query_is_refused_like_any_query_when_the_budget_is_spent(lake: Platform) -> None:
    """The airlock ran the requester's query without ``settings``, so ``run_query`` skipped the
    budget check: a spent budget refused ``POST /query`` but not the same query as an export."""
    from tests.test_costs_budgets import spend_queries

    admin, ada = lake.as_user("admin"), lake.as_user("ada")
    assert admin.put("/api/v1/costs/budgets/user/ada", json={"amount": "1.00"}).status_code == 200
    spend_queries(lake, "ada", 0.4)  # 2 EUR: spent
    lake.settings.costs.block_queries_above_bytes = 0  # every query that reads anything is large
    sql = "SELECT SITEID, VAL FROM demo.vs"
    refused = ada.post("/api/v1/query", json={"sql": sql})
    assert refused.status_code == 402, refused.text
    exported = ada.post(
        "/api/v1/exports", json={"sql": sql, "purpose": "aggregate for a poster", "destination": "laptop"}
    )
    assert exported.status_code == 402, exported.text


# --- 3. problem responses -------------------------------------------------------------------


def test_problems_name_no_internal_path_view_or_sql_of_the_engine(lake: Platform) -> None:
    """Engine errors reach the caller as the query's own words: no warehouse path, no internal
    view name, no SQL the platform rewrote, no stack trace; undeclared fields are dropped."""
    ada = lake.as_user("ada")
    home = str(lake.settings.home)
    for sql in ["SELECT SITEI FROM demo.vs", "SELECT x.SITEID FROM demo.vs", "SELECT read_parquet('/etc/x')",
                "SELECT * FROM demo.vs WHERE VAL::INTEGER = 'abc'::INTEGER"]:  # fmt: skip
        response = ada.post("/api/v1/query", json={"sql": sql})
        assert response.status_code == 422, sql
        body = response.json()
        assert set(body) <= {"type", "title", "status", "detail", "instance", "request_id", "field", "errors"}
        for leak in (home, "parquet_scan", "Traceback", "LINE ", "Candidate", "dl_", ".parquet"):
            assert leak not in body["detail"], (sql, body["detail"])
    broken = ada.post("/api/v1/query", content=b'{"sql": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and home not in broken.text and "Traceback" not in broken.text
    page = lake.anonymous.get("/no/such/page", headers={"accept": "text/html"})
    assert page.status_code == 404 and "Traceback" not in page.text and home not in page.text
