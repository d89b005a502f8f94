"""The identity CLI: users (add with projects, disable, enable, roles, password), groups,
projects and audit events/export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from datalibrary.cli import app
from tests.test_cli import cli  # noqa: F401 - the fixture


def test_users_groups_and_projects(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    cli("init")
    assert json.loads(cli("projects", "add", "onc", "--description", "Oncology", "--json"))["name"] == "onc"
    cli("projects", "add", "cardio")
    password_file = tmp_path / "pw"
    password_file.write_text("Another-Good-Passw0rd\n")
    user = json.loads(
        cli(
            "users", "add", "grace", "--role", "scientist", "--password-file", str(password_file),
            "--project", "onc", "--project", "cardio", "--json",
        )
    )  # fmt: skip
    assert user["projects"] == ["cardio", "onc"] and user["default_project"] == "onc"
    group = json.loads(cli("groups", "add", "stewards", "--role", "steward", "--json"))
    assert group["roles"] == ["steward"]
    assert json.loads(cli("groups", "add-member", "stewards", "grace", "--json"))["members"] == ["grace"]
    listed = {u["name"]: u for u in json.loads(cli("users", "list", "--json"))}
    assert listed["grace"]["effective_roles"] == ["scientist", "steward"]
    assert listed["grace"]["groups"] == ["stewards"]
    assert json.loads(cli("groups", "set-roles", "stewards", "--role", "auditor", "--json"))["roles"] == [
        "auditor"
    ]
    assert json.loads(cli("groups", "remove-member", "stewards", "grace", "--json"))["members"] == []
    assert json.loads(cli("groups", "list", "--json"))[0]["name"] == "stewards"
    assert json.loads(cli("projects", "add-member", "cardio", "grace", "--default", "--json"))["members"] == [
        {"user": "grace", "default": True}
    ]
    assert json.loads(cli("projects", "remove-member", "onc", "grace", "--json"))["members"] == []
    assert [p["name"] for p in json.loads(cli("projects", "list", "--json"))] == ["cardio", "onc"]
    assert json.loads(cli("users", "disable", "grace", "--json"))["active"] is False
    assert json.loads(cli("users", "enable", "grace", "--json"))["active"] is True
    assert json.loads(cli("users", "set-roles", "grace", "--role", "steward", "--json"))["roles"] == [
        "steward"
    ]
    password_file.write_text("Brand-New-Passw0rd!\n")
    cli("users", "set-password", "grace", "--password-file", str(password_file), "--json")
    weak = tmp_path / "weak"
    weak.write_text("password")
    result = CliRunner().invoke(app, ["users", "set-password", "grace", "--password-file", str(weak)])
    assert result.exit_code == 2 and "password must have" in result.stderr

    actions = {e["action"] for e in json.loads(cli("audit", "events", "--limit", "100", "--json"))}
    for action in ("project.create", "group.create", "group.member_add", "group.roles", "user.disable",
                   "user.enable", "user.roles", "user.password", "project.default"):  # fmt: skip
        assert action in actions, action
    only = json.loads(cli("audit", "events", "--action", "user.", "--json"))
    assert only and all(e["action"].startswith("user.") for e in only)
    out = tmp_path / "audit.csv"
    assert json.loads(cli("audit", "export", str(out), "--target", "user:grace", "--json"))["rows"] > 0
    rows = list(csv.DictReader(out.open()))
    assert rows and all(r["target"] == "user:grace" for r in rows)
    assert json.loads(cli("audit", "verify", "--json"))["ok"] is True


def test_identity_cli_errors(cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    cli("init")
    runner = CliRunner()
    for args, message in (
        (["groups", "add-member", "nope", "admin"], "no group named 'nope'"),
        (["projects", "add-member", "nope", "admin"], "no project named 'nope'"),
        (["users", "disable", "ghost"], "no user named 'ghost'"),
        (["groups", "add", "Bad Name"], "group name must be"),
        (["users", "add", "x1", "--role", "scientist", "--project", "nope"], "no project named 'nope'"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
    # the failed add left no user behind
    assert "x1" not in [u["name"] for u in json.loads(cli("users", "list", "--json"))]
