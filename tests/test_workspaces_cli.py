"""``datalibrary workspaces ...`` against a real installation with the process provisioner
(fast, and the same lifecycle code as the sandbox): create, list, stop, start, terminate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datalibrary.cli import app
from tests.workspace_helpers import CATALOG, build_test_environment


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    monkeypatch.setenv("DATALIBRARY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATALIBRARY_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CATALOG", str(catalog))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", "process")
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR", str(build_test_environment().parent))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
        return result.stdout

    run("init")
    run("users", "add", "alice", "--role", "scientist")
    return run


def test_workspace_commands(cli) -> None:  # type: ignore[no-untyped-def]
    # usage is billed to a project: it must exist and the owner must be a member (#21)
    cli("workspaces", "create", "--product", "open-notebook", "--type", "tiny", "--user", "alice",
        "--project", "onco", "--json", code=2)  # fmt: skip
    cli("projects", "add", "onco")
    cli("projects", "add-member", "onco", "alice")
    created = json.loads(cli("workspaces", "create", "--product", "open-notebook", "--type", "tiny",
                             "--user", "alice", "--project", "onco", "--json"))  # fmt: skip
    wid = str(created["id"])
    try:
        assert created["state"] == "running" and created["owner"] == "alice" and created["project"] == "onco"
        listed = json.loads(cli("workspaces", "list", "--json"))
        assert [w["id"] for w in listed] == [created["id"]]
        assert json.loads(cli("workspaces", "pause", wid, "--json"))["state"] == "paused"
        assert json.loads(cli("workspaces", "resume", wid, "--json"))["state"] == "running"
        assert json.loads(cli("workspaces", "stop", wid, "--json"))["state"] == "stopped"
        cli("workspaces", "stop", wid, code=2)  # already stopped: a clear error, exit 2
        assert json.loads(cli("workspaces", "reconcile", "--json"))["checked"] == 1
    finally:
        assert json.loads(cli("workspaces", "terminate", wid, "--json"))["state"] == "terminated"
    assert json.loads(cli("workspaces", "list", "--json")) == []
    # bad input: unknown product, missing owner, isolation the backend cannot give
    cli("workspaces", "create", "--product", "nope", "--type", "tiny", "--user", "alice", code=2)
    cli("workspaces", "create", "--product", "open-notebook", "--type", "tiny", code=2)
    cli("workspaces", "create", "--product", "notebook", "--type", "tiny", "--user", "alice", code=2)
    assert "m5.2xlarge" in json.dumps(json.loads(cli("workspaces", "catalog", "--json")))
