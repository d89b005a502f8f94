"""One object, one shape: the CLI's ``--json`` and the API's JSON of the same object agree
field for field, because both are made from the domain's ``schemas.py`` (accounts, groups,
projects, tokens, ingestion jobs, policies, the package mirror's policy, query results)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from datalibrary.cli import app
from datalibrary.privacy.builtin import BUILTIN
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv

ADMIN = "admin"


def run_cli(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
    return json.loads(result.stdout)


def api(platform: Platform, method: str, path: str, user: str = ADMIN, **kwargs: Any) -> Any:
    response = platform.as_user(user).request(method, f"/api/v1{path}", **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture
def installation(sqlite_platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Platform:
    """The CLI pointed at the platform the API serves."""
    monkeypatch.setenv("DATALIBRARY_HOME", str(sqlite_platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", sqlite_platform.settings.connect_url())
    return sqlite_platform


def test_accounts_groups_projects_and_tokens_agree(installation: Platform) -> None:
    run_cli("projects", "add", "onc", "--description", "Oncology")
    run_cli("groups", "add", "stewards", "--role", "steward")
    installation.add_user("grace", "scientist")
    run_cli("groups", "add-member", "stewards", "grace")
    project = run_cli("projects", "add-member", "onc", "grace", "--default")
    assert project["members"] == [{"user": "grace", "default": True}]
    assert project == api(installation, "GET", "/projects/onc")
    group = run_cli("groups", "set-roles", "stewards", "--role", "auditor")
    assert group == api(installation, "GET", "/groups/stewards") and group["members"] == ["grace"]
    (user,) = [u for u in run_cli("users", "list") if u["name"] == "grace"]
    assert user == api(installation, "GET", "/users/grace") and user["groups"] == ["stewards"]

    issued = run_cli("tokens", "create", "--user", "grace", "--name", "laptop")
    listed = {t["id"]: t for t in api(installation, "GET", "/tokens", params={"user": "grace"})}
    assert {k: v for k, v in issued.items() if k != "token"} == listed[issued["id"]]
    assert issued["token"] and issued["token"] not in json.dumps(listed)
    revoked = run_cli("tokens", "revoke", str(issued["id"]))
    assert revoked["revoked_at"]
    assert (
        revoked
        == {t["id"]: t for t in api(installation, "GET", "/tokens", params={"user": "grace"})}[issued["id"]]
    )
    assert run_cli("tokens", "list", "--user", "grace") == api(
        installation, "GET", "/tokens", params={"user": "grace"}
    )


def test_ingestion_jobs_agree(installation: Platform) -> None:
    add_policy(installation)
    job = api(
        installation,
        "POST",
        "/ingest/files",
        params={"table": "study.dm", "policy": "keep-all", "filename": "dm.csv"},
        content=b"USUBJID,AGE\n01,34\n02,51\n",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert job["state"] == "queued"
    shown = run_cli("jobs", "show", job["id"])
    assert shown == api(installation, "GET", f"/ingest/jobs/{job['id']}") == job
    assert run_cli("jobs", "list") == api(installation, "GET", "/ingest/jobs")
    cancelled = run_cli("jobs", "cancel", job["id"])
    assert cancelled["state"] == "cancelled"
    assert cancelled == api(installation, "GET", f"/ingest/jobs/{job['id']}")


def test_policies_agree(installation: Platform, tmp_path: Path) -> None:
    document = tmp_path / "ehr.yaml"
    document.write_text(BUILTIN["ehr"])
    stored = run_cli("policies", "add", str(document))
    listed = api(installation, "GET", "/policies")
    assert run_cli("policies", "list") == listed
    (row,) = [p for p in listed if p["name"] == "ehr"]
    assert stored == row and row["created_by"] == "builtin"  # stored before: the same document is a no-op
    assert api(installation, "POST", "/policies", json={"document": BUILTIN["ehr"]}) == row
    assert run_cli("policies", "show", "ehr") == api(installation, "GET", "/policies/ehr")
    described = run_cli("policies", "validate", str(document))
    assert described["rules"]
    assert described == api(installation, "POST", "/policies/validate", json={"document": BUILTIN["ehr"]})


def test_package_mirror_policy_agrees(installation: Platform) -> None:
    rule = run_cli("packages", "rule", "deny", "requests", "--specifier", "<2", "--note", "old TLS")
    policy = run_cli("packages", "rules")
    assert policy == api(installation, "GET", "/packages/policy")
    assert policy["rules"] == [rule] and policy["index_url"] == "/pypi/simple/"
    assert run_cli("packages", "mode", "allowlist") == api(installation, "GET", "/packages/policy")
    assert run_cli("packages", "uploads") == api(installation, "GET", "/packages/internal") == []


def test_query_results_agree(installation: Platform, tmp_path: Path) -> None:
    add_policy(installation)
    write_csv(tmp_path / "vs.csv", {"SITEID": ["701", "703"], "VAL": [1.5, 2.0]})
    assert ingest(installation, tmp_path / "vs.csv", "demo.vs")[1] == "succeeded"
    installation.add_user("ada", "scientist")
    run_cli("grants", "add", "--principal", "user:ada", "--table", "demo.vs")
    sql = "SELECT SITEID, VAL FROM demo.vs ORDER BY SITEID"
    printed = run_cli("query", sql, "--as", "ada")
    answered = api(installation, "POST", "/query", user="ada", json={"sql": sql})
    assert printed["rows"] == [[701, 1.5], [703, 2.0]]
    per_run = {"run_id", "duration_ms"}  # two runs: their own id and timing
    assert {k: v for k, v in printed.items() if k != "stats"} == {
        k: v for k, v in answered.items() if k != "stats"
    }
    assert printed["stats"].keys() == answered["stats"].keys()
    assert {k: v for k, v in printed["stats"].items() if k not in per_run} == {
        k: v for k, v in answered["stats"].items() if k not in per_run
    }
