"""Budgets that act, over the API: warnings at 80 % (notice, audit event, a real webhook
server), refusals at 100 % (launches, large queries), enforcement and raising a budget; the
price book, reports, CSV and the query estimate over the real lake."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.auth import projects
from datalibrary.auth.permissions import Principal
from datalibrary.config import TokenUrl
from datalibrary.costs import enforcer
from datalibrary.costs.models import BudgetAlert
from datalibrary.db.base import utcnow
from datalibrary.query.models import QueryRecord
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv

TB = 10**12
SYSTEM = Principal.system("test")


class Webhook:
    """A real HTTP server on loopback that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with Webhook() as hook:
        yield hook


def spend_queries(platform: Platform, user: str, terabytes: float, project: str | None = None) -> None:
    """Charge ``user`` by inserting a successful query record of that size (5 EUR per TB)."""
    with platform.db.session() as session:
        count = session.scalar(select(QueryRecord.id).order_by(QueryRecord.id.desc()).limit(1)) or 0
        session.add(
            QueryRecord(run_id=f"spend-{user}-{count + 1}", user=user, project=project, sql="SELECT 1",
                        tables=[], bytes_scanned=int(terabytes * TB), outcome="success",
                        started_at=utcnow(), finished_at=utcnow())
        )  # fmt: skip


def events(platform: Platform, action: str) -> list[AuditEvent]:
    with platform.db.session() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
        return rows


def test_budget_warns_refuses_and_can_be_raised(sqlite_platform: Platform, webhook: Webhook) -> None:
    platform = sqlite_platform
    platform.settings.costs.webhook_url = TokenUrl(webhook.url)
    admin, alice = platform.as_user("admin"), platform.as_user("alice")
    platform.add_user("stew", "steward")
    # only admins set budgets; amounts are validated
    assert alice.put("/api/v1/costs/budgets/user/alice", json={"amount": "10"}).status_code == 403
    assert admin.put("/api/v1/costs/budgets/user/alice", json={"amount": "-3"}).status_code == 422
    assert admin.put("/api/v1/costs/budgets/user/ghost", json={"amount": "3"}).status_code == 404
    response = admin.put("/api/v1/costs/budgets/user/alice", json={"amount": "10.00"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "ok" and response.json()["remaining"] == "10.00"

    spend_queries(platform, "alice", 1.7)  # 8.50 EUR: 85 %
    with platform.db.session() as session:
        enforcer.check_all(session, platform.settings)
    assert [h["event"] for h in webhook.received] == ["budget.warning"]
    assert webhook.received[0]["spent"] == "8.50" and webhook.received[0]["name"] == "alice"
    assert events(platform, "costs.budget_warning")[0].details["webhook"] == "sent"
    me = alice.get("/api/v1/costs/me").json()
    assert me["total"] == "8.50" and me["by_category"]["query"] == "8.50"
    assert me["budgets"][0]["state"] == "warning" and me["budgets"][0]["remaining"] == "1.50"
    assert "Budget warning" in me["notices"][0]
    # the steward sees the notice on the console too
    assert "Budget warning" in platform.as_user("stew").get("/costs").text

    spend_queries(platform, "alice", 0.4)  # 10.50 EUR: spent
    with platform.db.session() as session:
        assert enforcer.check_all(session, platform.settings) == []  # nothing runs; grace period anyway
    assert [h["event"] for h in webhook.received] == ["budget.warning", "budget.exceeded"]
    assert webhook.received[1]["enforce_after"] is not None
    # launches are refused with a clear message (before anything else is checked)
    refused = alice.post(
        "/api/v1/workspaces", json={"product": "python-notebook", "instance_type": "t3.medium"}
    )
    assert refused.status_code == 402, refused.text
    assert refused.json()["type"] == "/problems/budget-exceeded"
    assert "budget of user 'alice' is spent" in refused.json()["detail"]
    # a second pass raises nothing new
    with platform.db.session() as session:
        enforcer.check_all(session, platform.settings)
    assert len(webhook.received) == 2
    assert len(events(platform, "costs.budget_exceeded")) == 1

    # an admin raises the budget: the alerts clear and launches pass the budget check
    raised = admin.put("/api/v1/costs/budgets/user/alice", json={"amount": "20"})
    assert raised.json()["state"] == "ok" and raised.json()["remaining"] == "9.50"
    set_events = events(platform, "costs.budget_set")
    assert set_events[-1].details["raised"] is True and set_events[-1].details["cleared_alerts"] == [80, 100]
    platform.settings.workspaces.max_per_user = 0  # the check after the budget's refuses instead
    again = alice.post(
        "/api/v1/workspaces", json={"product": "python-notebook", "instance_type": "t3.medium"}
    )
    assert again.status_code == 409 and "quota" in again.json()["detail"]
    assert alice.get("/api/v1/costs/me").json()["notices"] == []


def test_project_budget_refuses_large_queries(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    write_csv(tmp_path / "lb.csv", {"USUBJID": [f"S{i}" for i in range(2000)], "VALUE": list(range(2000))})
    assert ingest(platform, tmp_path / "lb.csv", "cdisc.lb")[1] == "succeeded"
    platform.add_user("stew", "steward")
    admin, ada = platform.as_user("admin"), platform.as_user("ada")
    with platform.db.session() as session:
        projects.create_project(session, SYSTEM, "onco")
        projects.add_member(session, SYSTEM, "onco", "ada", default=True)
    grant = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.lb"}
    )
    assert grant.status_code == 201, grant.text
    ada = platform.as_user("ada")
    # the estimate: bytes from the plan, the 10 MB minimum, 5 EUR/TB, nothing executed
    estimate = ada.post("/api/v1/query/estimate", json={"sql": "SELECT * FROM cdisc.lb"})
    assert estimate.status_code == 200, estimate.text
    est = estimate.json()
    assert 0 < est["bytes_scanned"] < 10**7 and est["charged_bytes"] == 10**7
    assert est["price"] == "0.00" and est["currency"] == "EUR" and est["project"] == "onco"
    assert est["large"] is False and est["refused_because"] is None
    with platform.db.session() as session:
        assert session.scalar(select(QueryRecord.id)) is None  # an estimate leaves no query record
    assert ada.post("/api/v1/query/estimate", json={"sql": "DROP TABLE cdisc.lb"}).status_code == 422
    assert ada.post("/api/v1/query/estimate", json={"sql": "SELECT * FROM cdisc.nope"}).status_code == 404

    # the project's budget is spent (by someone else in it): ada's large queries are refused
    assert admin.put("/api/v1/costs/budgets/project/onco", json={"amount": "1"}).status_code == 200
    spend_queries(platform, "bob", 0.3, project="onco")
    platform.settings.costs.block_queries_above_bytes = 0  # every query is "large" here
    est = ada.post("/api/v1/query/estimate", json={"sql": "SELECT * FROM cdisc.lb"}).json()
    assert "budget of project 'onco' is spent" in est["refused_because"]
    refused = ada.post("/api/v1/query", json={"sql": "SELECT * FROM cdisc.lb"})
    assert refused.status_code == 402 and "query refused" in refused.json()["detail"]
    with platform.db.session() as session:
        record = session.scalar(select(QueryRecord).where(QueryRecord.user == "ada"))
        assert record is not None and record.outcome == "failure"
    # small queries still run
    platform.settings.costs.block_queries_above_bytes = 10**9
    assert ada.post("/api/v1/query", json={"sql": "SELECT count(*) FROM cdisc.lb"}).status_code == 200

    # storage measurement attributes the dataset to its owner's default project
    assert admin.post("/api/v1/costs/measure").json()["measured"] >= 1
    report = admin.get("/api/v1/costs/report", params={"by": "resource"}).json()
    assert any(r["key"] == "dataset:cdisc.lb" for r in report["rows"])


def test_reports_prices_and_csv(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    admin, alice = platform.as_user("admin"), platform.as_user("alice")
    platform.add_user("aud", "auditor")
    spend_queries(platform, "alice", 2)
    spend_queries(platform, "bob", 0.5)
    # price book: seeded from YAML + the catalog, versions only from now on
    versions = alice.get("/api/v1/costs/prices").json()
    assert versions[0]["prices"]["query_per_tb"] == "5.00"
    assert versions[0]["prices"]["compute_per_hour"]["m5.2xlarge"] == "0.35"
    body = {"home_per_gib_month": "0.1", "lake_per_gib_month": "0.02", "query_per_tb": "6"}
    assert alice.post("/api/v1/costs/prices", json=body).status_code == 403
    past = admin.post("/api/v1/costs/prices", json=body | {"effective_from": "2020-01-01T00:00:00Z"})
    assert past.status_code == 422 and "never rewritten" in past.json()["detail"]
    future = (utcnow() + timedelta(days=3)).replace(microsecond=0).isoformat()
    assert admin.post("/api/v1/costs/prices", json=body | {"effective_from": future}).status_code == 201
    assert admin.post("/api/v1/costs/prices", json=body | {"query_per_tb": "1e999"}).status_code == 422
    # reports: scientists see themselves, auditors everyone; JSON and CSV agree
    own = alice.get("/api/v1/costs/report", params={"by": "user"}).json()
    assert own["rows"] == [{"key": "alice", "amount": "10.00"}]
    assert alice.get("/api/v1/costs/report", params={"by": "user", "user": "bob"}).status_code == 403
    auditor = platform.as_user("aud")
    full = auditor.get("/api/v1/costs/report", params={"by": "user"}).json()
    assert full["rows"] == [{"key": "alice", "amount": "10.00"}, {"key": "bob", "amount": "2.50"}]
    assert full["total"] == "12.50"
    text = auditor.get("/api/v1/costs/report.csv", params={"by": "user"}).text
    assert list(csv.reader(io.StringIO(text))) == [
        ["user", "amount", "currency"],
        ["alice", "10.00", "EUR"],
        ["bob", "2.50", "EUR"],
        ["TOTAL", "12.50", "EUR"],
    ]
    assert auditor.get("/api/v1/costs/report", params={"by": "nope"}).status_code == 422
    bad = auditor.get("/api/v1/costs/report", params={"from": "2026-02-01", "to": "2026-01-01"})
    assert bad.status_code == 422
    assert auditor.get("/api/v1/costs/report", params={"from": "yesterday"}).status_code == 422
    lines = auditor.get("/api/v1/costs/lines").json()
    assert {(ln["user"], ln["category"], ln["unit"], ln["amount"]) for ln in lines} == {
        ("alice", "query", "TB", "10.000000"),
        ("bob", "query", "TB", "2.500000"),
    }
    assert [ln["user"] for ln in alice.get("/api/v1/costs/lines").json()] == ["alice"]
    assert auditor.get("/api/v1/costs/lines", params={"limit": 0}).status_code == 422
    assert auditor.get("/api/v1/costs/report", params={"user": "x" * 65}).status_code == 422
    dash = auditor.get("/api/v1/costs/dashboard").json()
    assert dash["top_users"] == {"alice": "10.00", "bob": "2.50"} and dash["by_category"]["query"] == "12.50"
    assert alice.get("/api/v1/costs/dashboard").status_code == 403
    compare = auditor.get("/api/v1/costs/compare", params={"purchase_price": "6000", "lifetime_months": 36})
    assert compare.status_code == 200 and compare.json()["dedicated_per_month"] == "166.67"
    # workspace catalog shows the price per hour and a typical working day from the price book
    catalog = alice.get("/api/v1/workspaces/catalog").json()
    assert catalog["launch_prices"]["m5.2xlarge"] == {
        "price_per_hour": "0.35",
        "working_day": "2.80",
        "working_day_hours": "8",
        "currency": "EUR",
    }
    # the pages render
    assert "Your spend in" in alice.get("/costs").text
    page = auditor.get("/costs").text
    assert 'data-chart="daily"' in page and 'data-chart="users"' in page
    assert "6000" in auditor.get("/costs/compare").text or "6,000" in auditor.get("/costs/compare").text
    assert alice.get("/costs/compare").status_code == 403


def test_cli_report_json(sqlite_platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from datalibrary.cli import app

    platform = sqlite_platform
    platform.add_user("alice", "scientist")
    spend_queries(platform, "alice", 1)
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())
    today = utcnow().date().isoformat()
    result = CliRunner().invoke(
        app, ["costs", "report", "--by", "user", "--from", today, "--to", today, "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rows"] == [{"key": "alice", "amount": "5.00"}] and data["currency"] == "EUR"
    bad = CliRunner().invoke(app, ["costs", "report", "--from", "soon"])
    assert bad.exit_code == 2
    result = CliRunner().invoke(app, ["costs", "budget-set", "3", "--user", "alice", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"] == "exceeded"
    result = CliRunner().invoke(app, ["costs", "enforce", "--json"])
    assert result.exit_code == 0, result.output
    with platform.db.session() as session:
        assert session.scalar(select(BudgetAlert.level).where(BudgetAlert.level == 100)) == 100
