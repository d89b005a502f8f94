"""The CLI: every command has --help, every data command has --json, init is idempotent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
import typer.main
from sqlalchemy import update
from typer.testing import CliRunner

from datalibrary.audit.models import AuditEvent
from datalibrary.cli import app
from datalibrary.db import Database

# Commands that print no data (they run something); every other command must offer --json.
NO_JSON = {"up"}


def all_commands() -> list[tuple[str, click.Command]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, click.Command]] = []

    def walk(prefix: str, command: click.Command) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append((prefix, command))

    walk("", root)
    return found


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATALIBRARY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATALIBRARY_DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
        return result.stdout

    return run


def test_help_lists_groups(cli) -> None:  # type: ignore[no-untyped-def]
    """The names in the help's command list, read as names (a substring such as "up" is in
    "groups" and "backup"), are exactly the registered commands."""
    output = cli("--help")
    listing = output[output.index("Commands:") :].splitlines()[1:]
    listed = [
        match.group(1) for line in listing if (match := re.match(r"^  ([a-z][a-z-]*)(?:\s{2,}|$)", line))
    ]
    registered = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert sorted(listed) == sorted(registered)
    assert {"init", "up", "config", "users", "tokens", "audit"} <= set(listed)


@pytest.mark.parametrize("name,command", all_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_json(cli, name: str, command: click.Command) -> None:  # type: ignore[no-untyped-def]
    assert command.help, f"'{name}' has no help text"
    cli(*name.split(), "--help")
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    if name not in NO_JSON:
        assert "--json" in options, f"'{name}' prints data but has no --json"


def test_init_is_idempotent_and_prints_admin_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = json.loads(cli("init", "--json"))
    assert first["admin_name"] == "admin" and len(first["admin_password"]) >= 12
    second = json.loads(cli("init", "--json"))
    assert second["admin_password"] is None
    home = tmp_path / "home"
    assert (home / "datalibrary.db").exists()
    assert home.stat().st_mode & 0o777 == 0o700


def test_config_show_redacts(cli) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    data = json.loads(cli("config", "show", "--json"))
    assert data["secret_key"] == "**********"
    assert data["server"]["port"] == 8000


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_config_show_hides_every_secret_setting(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    """Every setting typed as a secret, set through its variable, is absent from the output."""
    from tests.test_config import canary, secret_types

    markers = []
    for path, kind in secret_types().items():
        value, marker = canary(path, kind)
        monkeypatch.setenv("DATALIBRARY_" + "__".join(path).upper(), value)
        markers.append(marker)
    output = cli("config", "show", *(["--json"] if as_json else []))
    assert "host.example" in output
    for marker in markers:
        assert marker not in output, marker


def test_a_misspelled_setting_stops_the_cli_with_the_closest_name(  # type: ignore[no-untyped-def]
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALIBRARY_LAKE__WAREHOUSEE", "s3://bucket/lake")
    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 1 and not result.stdout
    message = " ".join(result.stderr.split())  # Rich wraps lines
    assert "unknown setting DATALIBRARY_LAKE__WAREHOUSEE" in message
    assert "did you mean DATALIBRARY_LAKE__WAREHOUSE?" in message


def test_users_and_tokens(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    password_file = tmp_path / "pw"
    password_file.write_text("Another-Good-Passw0rd\n")
    user = json.loads(
        cli("users", "add", "grace", "--role", "scientist", "--password-file", str(password_file), "--json")
    )
    assert user["roles"] == ["scientist"] and "password" not in user
    names = [u["name"] for u in json.loads(cli("users", "list", "--json"))]
    assert names == ["admin", "grace"]
    token = json.loads(cli("tokens", "create", "--user", "grace", "--expires", "5", "--json"))
    assert token["token"].startswith("dl_")
    listed = json.loads(cli("tokens", "list", "--user", "grace", "--json"))
    assert listed[0]["id"] == token["id"] and "token" not in listed[0]
    assert json.loads(cli("tokens", "revoke", str(token["id"]), "--json"))["revoked_at"]


def test_bad_input_gives_a_clear_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    runner = CliRunner()
    result = runner.invoke(app, ["users", "add", "Bad Name", "--role", "scientist"])
    assert result.exit_code == 2
    assert "user name must be" in result.stderr
    result = runner.invoke(app, ["users", "add", "x1", "--role", "wizard"])
    assert result.exit_code == 2 and "unknown role" in result.stderr
    result = runner.invoke(app, ["tokens", "create", "--user", "nobody"])
    assert result.exit_code == 2 and "no user named 'nobody'" in result.stderr


def test_audit_verify_exit_code_catches_tampering(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    assert json.loads(cli("audit", "verify", "--json"))["ok"] is True
    db = Database(f"sqlite:///{tmp_path / 'home' / 'datalibrary.db'}")
    with db.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == 1).values(target="user:mallory"))
    db.dispose()
    report = json.loads(cli("audit", "verify", "--json", code=1))
    assert report["ok"] is False and report["first_broken"]["id"] == 1
