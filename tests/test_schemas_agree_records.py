"""The CLI's ``--json`` and the API send the same object field for field: both come from the
domain's ``schemas.py`` (access, audit, backup, costs, datasets, files, lineage and exports).

Each test changes the installation through one front end, then reads the same records
through both and compares the parsed JSON: a field written by hand in one front end (a
renamed key, a date in another format, a dropped column) fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from datalibrary.cli import app
from tests.helpers import ApiClient, Platform
from tests.lake_helpers import add_policy, ingest, write_csv


def cli_json(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
    return json.loads(result.stdout)


def api_json(client: ApiClient, path: str, **params: str) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def lake(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    """A table ``demo.vs`` ingested by the worker and a scientist ``ada`` granted it; the CLI
    points at the same installation."""
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())
    add_policy(platform)
    write_csv(tmp_path / "vs.csv", {"SITEID": ["701", "703"] * 10, "VAL": list(range(20))})
    assert ingest(platform, tmp_path / "vs.csv", "demo.vs")[1] == "succeeded"
    platform.add_user("ada", "scientist")
    cli_json(
        "grants", "add", "--principal", "user:ada", "--table", "demo.vs", "--row-filter", "SITEID = '701'"
    )
    return platform


def test_grants_and_access_requests(lake: Platform) -> None:
    admin = lake.as_user("admin")
    made = cli_json(
        "access", "request", "--table", "demo.vs", "--justification", "site comparison for the poster",
        "--as", "ada",
    )  # fmt: skip
    grants = cli_json("grants", "list")
    assert grants == api_json(admin, "/api/v1/grants")
    assert grants[0]["row_filter"] == "SITEID = '701'" and grants[0]["table_name"] == "vs"
    assert [made] == cli_json("access", "list") == api_json(admin, "/api/v1/access-requests")


def test_audit_events(lake: Platform) -> None:
    admin = lake.as_user("admin")
    api = api_json(admin, "/api/v1/audit/events", action="grant.", limit="10")
    assert api, "the grant was audited"
    assert cli_json("audit", "events", "--action", "grant.", "--limit", "10") == api
    assert {"hash", "request_id"} <= api[0].keys()


def test_backups(lake: Platform) -> None:
    made = cli_json("backup")  # the whole manifest; the list shows each backup's summary
    listed = cli_json("backups")
    assert listed == api_json(lake.as_user("admin"), "/api/v1/backups")
    summary = [(b["id"], b["tables"], b["keys"]) for b in listed]
    assert summary == [(made["id"], len(made["tables"]), "excluded")]


def test_costs_budgets_prices_and_report(lake: Platform) -> None:
    admin = lake.as_user("admin")
    assert admin.put("/api/v1/costs/budgets/user/ada", json={"amount": "250.00"}).status_code == 200
    assert cli_json("costs", "budget-set", "90", "--user", "admin")["budget"] == "90.00"
    budgets = cli_json("costs", "budgets")
    assert budgets == api_json(admin, "/api/v1/costs/budgets")
    assert {(b["scope"], b["name"]) for b in budgets} == {("user", "ada"), ("user", "admin")}
    assert cli_json("costs", "prices") == api_json(admin, "/api/v1/costs/prices")
    cli = cli_json("costs", "report", "--by", "user", "--from", "2026-01-01", "--to", "2026-01-31")
    api = api_json(admin, "/api/v1/costs/report", by="user", **{"from": "2026-01-01", "to": "2026-01-31"})
    assert cli.pop("generated_at") and api.pop("generated_at")  # when each was asked
    assert cli == api and cli["from"] == "2026-01-01"


def test_datasets(lake: Platform) -> None:
    admin = lake.as_user("admin")
    assert cli_json("datasets", "list") == api_json(admin, "/api/v1/datasets")
    shown = cli_json("datasets", "show", "demo.vs")
    assert shown == api_json(admin, "/api/v1/datasets/demo/vs")
    assert shown["row_count"] == 20 and [c["name"] for c in shown["columns"]] == ["SITEID", "VAL"]


def test_file_collections(lake: Platform) -> None:
    admin = lake.as_user("admin")
    made = admin.post("/api/v1/collections", json={"name": "demo.scans", "description": "MR series"})
    assert made.status_code == 201, made.text
    classified = cli_json("files", "classify", "demo.scans", "MR images only")
    assert cli_json("files", "list-collections") == api_json(admin, "/api/v1/collections") == [classified]
    assert {k: v for k, v in classified.items() if k != "classification"} == {
        k: v for k, v in made.json().items() if k != "classification"
    }


def test_lineage_and_exports(lake: Platform) -> None:
    admin = lake.as_user("admin")
    cli_json(
        "exports", "request", "--as", "ada", "--purpose", "site counts for a poster",
        "--destination", "laptop", "--sql", "SELECT SITEID FROM demo.vs",
    )  # fmt: skip
    assert cli_json("exports", "list") == api_json(admin, "/api/v1/exports/review")
    assert cli_json("lineage", "show", "demo.vs") == api_json(admin, "/api/v1/lineage/datasets/demo.vs")
    period = {"start": "2020-01-01T00:00:00+00:00", "end": "2099-01-01T00:00:00+00:00"}
    cli = cli_json("lineage", "report", "demo.vs", "--start", period["start"], "--end", period["end"])
    api = api_json(admin, "/api/v1/lineage/report", scope="demo.vs", **period)
    assert cli.pop("generated_at") and api.pop("generated_at")
    assert cli.pop("generated_by") != api.pop("generated_by") == "admin"  # the operator, the user
    assert cli == api and cli["accesses"]
