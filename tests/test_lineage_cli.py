"""The lineage and exports CLI on a real lake (SQLite; the API tests cover PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datalibrary.cli import app
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv


def run_cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.stdout


def test_lineage_and_exports_commands(
    sqlite_platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = sqlite_platform
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())
    add_policy(platform)
    write_csv(tmp_path / "vs.csv", {"SITEID": ["1", "2"] * 10, "VAL": list(range(20))})
    assert ingest(platform, tmp_path / "vs.csv", "demo.vs")[1] == "succeeded"
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    run_cli("grants", "add", "--principal", "user:ada", "--table", "demo.vs")
    run_cli("query", "SELECT * FROM demo.vs", "--as", "ada", "--json")

    shown = json.loads(run_cli("lineage", "show", "demo.vs", "--json"))
    assert shown["upstream"]["ingestions"][0]["file_name"] == "vs.csv"
    assert shown["downstream"]["users"][0]["user"] == "ada"
    assert json.loads(run_cli("lineage", "user", "ada", "--json"))["datasets"][0]["dataset"] == "demo.vs"
    run_cli("lineage", "show", "not-a-dataset", "--json", code=2)

    made = json.loads(
        run_cli(
            "exports",
            "request",
            "--as",
            "ada",
            "--purpose",
            "aggregate for a poster",
            "--destination",
            "laptop",
            "--sql",
            "SELECT SITEID FROM demo.vs",
            "--json",
        )
    )
    summary = json.loads(
        run_cli("exports", "review", str(made["id"]), "--as", "stew", "--qi", "SITEID", "--json")
    )
    assert summary["risk"]["k"] == 10
    # k = 10 fails the check (k >= 12): approving needs an explicit, audited override
    run_cli("exports", "review", str(made["id"]), "--as", "stew", "--approve", "--json", code=2)
    run_cli(
        "exports", "review", str(made["id"]), "--as", "stew", "--approve",
        "--override-reason", "site counts for a poster, agreed with the DPO", "--json",
    )  # fmt: skip
    assert json.loads(run_cli("exports", "list", "--json"))[0]["state"] == "approved"
    out = tmp_path / "out.csv"
    got = json.loads(
        run_cli("exports", "download", str(made["id"]), "--as", "ada", "--output", str(out), "--json")
    )
    assert got["bytes"] == out.stat().st_size and out.read_text().startswith('"SITEID"')
    run_cli("exports", "download", str(made["id"]), "--as", "ada", "--output", str(out), "--json", code=2)

    text = run_cli("lineage", "report", "demo", "--csv")
    sections = {row["section"] for row in csv.DictReader(io.StringIO(text))}
    assert {"report", "audit_chain", "access", "export", "policy"} <= sections
    report = json.loads(run_cli("lineage", "report", "demo.vs", "--json"))
    assert report["audit_chain"]["ok"] is True and report["exports"][0]["state"] == "downloaded"
    run_cli("lineage", "forward", "--json", code=2)  # no endpoint configured
