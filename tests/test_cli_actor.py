"""One actor with every call: who acted, on whose behalf, through which client.

Attacks first: the CLI's ``--as USER`` must give USER's rights and nothing more, and the
audit log and lineage must name the operator who acted as well as the user, never the user
alone (``via: session`` was recorded before). API tokens, console sessions and the ingestion
worker name their client too; the audit chain still verifies with the new details.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from datalibrary.audit.models import AuditEvent
from datalibrary.audit.service import verify
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Actor, Permission, Principal
from datalibrary.cli import app
from datalibrary.lineage.models import LineageEvent
from tests.helpers import PASSWORD, Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.openlineage_check import validate_event


def run_cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.stdout


@pytest.fixture
def lake(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    """A table ``demo.vs`` (ingested by the worker), a scientist ``alice`` with no grant, a
    scientist ``ada`` granted the table; the CLI points at the same installation."""
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())
    add_policy(platform)
    write_csv(tmp_path / "vs.csv", {"SITEID": ["1", "2"] * 10, "VAL": list(range(20))})
    assert ingest(platform, tmp_path / "vs.csv", "demo.vs")[1] == "succeeded"
    platform.add_user("alice", "scientist")
    platform.add_user("ada", "scientist")
    run_cli("grants", "add", "--principal", "user:ada", "--table", "demo.vs")
    return platform


def _events(platform: Platform, action: str) -> list[AuditEvent]:
    with platform.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _actor_facets(platform: Platform, job: str) -> list[dict]:  # type: ignore[type-arg]
    with platform.db.session() as session:
        found = session.scalars(select(LineageEvent).where(LineageEvent.job_name == job)).all()
        for event in found:
            validate_event(event.payload)
        return [e.payload["run"]["facets"]["datalibrary_actor"] for e in found]


def test_as_user_borrows_no_rights_from_the_operator(lake: Platform) -> None:
    """The operator runs commands with every right; ``--as alice`` must not lend them."""
    run_cli("query", "SELECT * FROM demo.vs", "--as", "alice", "--json", code=2)  # no grant
    made = json.loads(
        run_cli(
            "exports", "request", "--as", "ada", "--purpose", "aggregate for a poster",
            "--destination", "laptop", "--sql", "SELECT SITEID FROM demo.vs", "--json",
        )
    )  # fmt: skip
    # a scientist cannot review an export, whoever runs the command
    run_cli("exports", "review", str(made["id"]), "--as", "alice", "--approve", "--json", code=2)
    run_cli("exports", "download", str(made["id"]), "--as", "alice", "--output", "/dev/null", code=2)
    with lake.db.session() as session:
        from datalibrary.cli.output import acting_as

        alice = acting_as(session, "alice")
        own = auth_service.principal_for(auth_service.get_user(session, "alice"))
    assert alice.permissions == own.permissions and not alice.can(Permission.EXPORTS_REVIEW)
    assert alice.roles == own.roles and alice.name == "alice" and not alice.is_admin
    denied = [e for e in _events(lake, "query.run") if e.outcome == "denied"]
    assert [(e.actor, e.details["on_behalf_of"], e.details["via"]) for e in denied] == [
        ("cli", "alice", "cli")
    ]


def test_audit_of_as_user_names_the_operator_and_the_user(lake: Platform) -> None:
    run_cli("query", "SELECT count(*) AS n FROM demo.vs", "--as", "ada", "--json")
    (ran,) = [e for e in _events(lake, "query.run") if e.outcome == "success"]
    assert ran.actor == "cli", "the operator acted, not ada"
    assert ran.details["on_behalf_of"] == "ada" and ran.details["via"] == "cli"
    assert ran.details["os_user"] == getpass.getuser()
    # operator commands without --as: the operator alone, through the CLI
    (grant,) = _events(lake, "grant.add")
    assert grant.actor == "cli" and grant.details["via"] == "cli" and "on_behalf_of" not in grant.details
    assert json.loads(run_cli("audit", "verify", "--json"))["ok"] is True
    with lake.db.session() as session:
        assert verify(session).ok


def test_audit_search_finds_what_was_done_on_someones_behalf(lake: Platform) -> None:
    """An auditor asks what was done with ada's rights: the CLI's ``--as ada`` runs, not ada's
    own calls, not the operator's plain commands; by API, CSV, CLI and the console page."""
    run_cli("query", "SELECT count(*) AS n FROM demo.vs", "--as", "ada", "--json")
    assert lake.as_user("ada").post("/api/v1/query", json={"sql": "SELECT 1 AS one"}).status_code == 200
    lake.add_user("audrey", "auditor")
    auditor = lake.as_user("audrey")
    found = auditor.get("/api/v1/audit/events", params={"on_behalf_of": "ada"}).json()
    assert [(e["actor"], e["action"], e["details"]["on_behalf_of"]) for e in found] == [
        ("cli", "query.run", "ada")
    ]
    assert auditor.get("/api/v1/audit/events", params={"on_behalf_of": "alice"}).json() == []
    assert auditor.get("/api/v1/audit/events", params={"on_behalf_of": "x" * 65}).status_code == 422
    csv = auditor.get("/api/v1/audit/events.csv", params={"on_behalf_of": "ada"}).text
    assert len(csv.strip().splitlines()) == 2 and "query.run" in csv
    listed = json.loads(run_cli("audit", "events", "--on-behalf-of", "ada", "--json"))
    assert [e["id"] for e in listed] == [e["id"] for e in found]
    page = auditor.get("/admin/audit", params={"on_behalf_of": "ada"})
    assert page.status_code == 200 and page.text.count('class="outcome-success"') == 1
    assert 'value="ada"' in page.text and "on_behalf_of=ada" in page.text  # kept in the CSV link


def test_lineage_of_as_user_query_names_both(lake: Platform) -> None:
    run_cli("query", "SELECT SITEID FROM demo.vs", "--as", "ada", "--json")
    facets = _actor_facets(lake, "query")
    assert facets and all(f["user"] == "ada" and f["operator"] == "cli" and f["via"] == "cli" for f in facets)


def test_api_token_and_console_session_name_their_client(lake: Platform) -> None:
    ada = lake.as_user("ada")
    assert ada.post("/api/v1/query", json={"sql": "SELECT count(*) FROM demo.vs"}).status_code == 200
    (ran,) = _events(lake, "query.run")
    assert ran.actor == "ada" and ran.details["via"] == "api" and "on_behalf_of" not in ran.details
    assert all(f["via"] == "api" and "operator" not in f for f in _actor_facets(lake, "query"))

    console = lake.anonymous
    signed_in = console.post("/api/v1/auth/login", json={"name": "alice", "password": PASSWORD})
    assert signed_in.status_code == 200
    csrf = signed_in.json()["csrf_token"]
    assert console.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    (out,) = _events(lake, "auth.logout")
    assert out.actor == "alice" and out.details["via"] == "web"
    with lake.db.session() as session:
        assert verify(session).ok


def test_worker_names_its_client(lake: Platform) -> None:
    """The ingestion the fixture ran: the worker acted for the job's submitter."""
    written = _events(lake, "ingest.commit")
    assert written and all(e.details["via"] == "worker" for e in written)


def test_actor_of_a_principal() -> None:
    user = Principal.for_user(7, "alice", {"scientist"}, via="token")
    assert user.actor == Actor("alice", "api")
    assert Principal.for_user(7, "alice", {"scientist"}, via="session").actor.client == "web"
    acted = user.operated_by("cli", client="cli", os_user="root")
    assert acted.actor == Actor("cli", "cli", on_behalf_of="alice", os_user="root")
    assert acted.permissions == user.permissions and acted.name == "alice"
    assert acted.actor.details() == {"via": "cli", "on_behalf_of": "alice", "os_user": "root"}
    assert Principal.system("scheduler").actor == Actor("scheduler", "system")
    with pytest.raises(ValueError, match="client must be one of"):
        user.operated_by("cli", client="telnet")
