"""Backups and the restore drill: ingest, query, back up, destroy the installation, restore
into a new one, and check row counts, grants, the audit chain, lineage and the keys — on
SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from datalibrary.app import create_app
from datalibrary.cli import app as cli_app
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.lake.catalog import forget_lakes
from tests.helpers import ApiClient, Platform
from tests.lake_helpers import add_policy, ingest, write_csv

PASSPHRASE = "correct horse battery staple"
POLICY = "name: dm-policy\nversion: 1\ncolumns:\n  USUBJID: pseudonymize\n  '*': keep\n"


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the same kind as ``database_url`` (the restore target)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"dl_r_{uuid.uuid4().hex[:12]}"
    server._execute(f'CREATE DATABASE "{name}"')
    yield server.url_for(name)
    server.drop(name)


def run_cli(monkeypatch: pytest.MonkeyPatch, home: Path, url: str, *args: str, code: int = 0) -> str:
    monkeypatch.setenv("DATALIBRARY_HOME", str(home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", url)
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.stdout


def query(client: ApiClient, sql: str) -> list:  # type: ignore[type-arg]
    response = client.post("/api/v1/query", json={"sql": sql})
    assert response.status_code == 200, response.text
    return response.json()["rows"]


@pytest.fixture
def populated(platform: Platform, tmp_path: Path) -> Platform:
    """study.dm ingested with pseudonymized subject ids; ada holds a grant and has queried it;
    a Git repository and a workspace home exist."""
    add_policy(platform, POLICY)
    write_csv(
        tmp_path / "dm.csv",
        {"USUBJID": [f"01-70{i % 3}-{i:04d}" for i in range(50)], "AGE": [30 + i % 40 for i in range(50)]},
    )
    assert ingest(platform, tmp_path / "dm.csv", "study.dm", policy="dm-policy")[1] == "succeeded"
    platform.add_user("stew", "steward")
    response = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:ada", "table": "study.dm", "columns": ["USUBJID", "AGE"]}
    )
    assert response.status_code == 201, response.text
    assert query(platform.as_user("ada"), "SELECT count(*) FROM study.dm") == [[50]]
    repo = platform.settings.home / "repos" / "demo.git"
    subprocess.run(["git", "init", "--bare", "--quiet", str(repo)], check=True)
    notebook = platform.settings.home / "workspaces" / "homes" / "ada" / "analysis.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_text('{"cells": []}')
    return platform


def destroy(platform: Platform, database_url: str) -> None:
    """Lose everything: the state directory (keys, lake, repositories) and the database."""
    platform.db.dispose()
    forget_lakes()
    shutil.rmtree(platform.settings.home)
    if database_url.startswith("sqlite"):
        Path(make_url(database_url).database or "").unlink()


def test_restore_drill(
    populated: Platform,
    database_url: str,
    empty_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = populated
    home = platform.settings.home
    backups = tmp_path / "backups"
    (tmp_path / "pass").write_text(PASSPHRASE)
    ada = platform.as_user("ada")
    pseudonyms = sorted(r[0] for r in query(ada, "SELECT USUBJID FROM study.dm"))
    lineage_before = platform.as_user("stew").get("/api/v1/lineage/datasets/study.dm").json()
    grants_before = platform.as_user("stew").get("/api/v1/grants").json()
    master_hex = (home / "master.key").read_text().strip()
    verify = run_cli(monkeypatch, home, database_url, "audit", "verify", "--json")
    audit_entries = json.loads(verify)["entries"]  # the backup's own event comes after the dump

    manifest = json.loads(
        run_cli(
            monkeypatch, home, database_url, "backup", "--output", str(backups),
            "--passphrase-file", str(tmp_path / "pass"), "--json",
        )
    )  # fmt: skip
    assert manifest["tables"] == [{**manifest["tables"][0], "namespace": "study", "name": "dm", "rows": 50}]
    assert set(manifest["folders"]) == {"repos", "workspaces/homes"}
    backup = Path(manifest["path"])
    # the master key is never in a backup in the clear
    for path in backup.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert master_hex.encode() not in data and bytes.fromhex(master_hex) not in data, path

    destroy(platform, database_url)

    # refused without the key (nothing is written), then with a wrong passphrase
    out = CliRunner().invoke(
        cli_app, ["restore", str(backup)], env={"DATALIBRARY_DATABASE_URL": empty_database_url}
    )
    assert out.exit_code != 0 and "master key" in out.output
    (tmp_path / "wrong").write_text("not the passphrase at all")
    run_cli(monkeypatch, home, empty_database_url, "restore", str(backup),
            "--passphrase-file", str(tmp_path / "wrong"), code=2)  # fmt: skip
    assert not (home / "lake").exists() or not any((home / "lake").rglob("*.parquet"))

    report = json.loads(
        run_cli(
            monkeypatch,
            home,
            empty_database_url,
            "restore",
            str(backup),
            "--passphrase-file",
            str(tmp_path / "pass"),
            "--json",
        )  # fmt: skip
    )
    assert report["ok"], report["problems"]
    assert report["tables"] == [{"table": "study.dm", "rows": 50}]
    assert report["audit"]["ok"] and report["audit"]["entries"] == audit_entries
    assert (home / "master.key").read_text().strip() == master_hex
    assert (home / "master.key").stat().st_mode & 0o077 == 0
    assert (home / "repos" / "demo.git" / "HEAD").exists()
    assert (home / "workspaces" / "homes" / "ada" / "analysis.ipynb").read_text() == '{"cells": []}'

    # the restored installation serves the same data, grants, tokens, lineage and audit chain
    forget_lakes()
    settings = Settings(home=home, database_url=empty_database_url)
    db = Database(empty_database_url)
    try:
        restored = Platform(settings, db, create_app(settings, db), "", tokens=dict(platform.tokens))
        ada = restored.as_user("ada")
        assert query(ada, "SELECT count(*) FROM study.dm") == [[50]]
        assert sorted(r[0] for r in query(ada, "SELECT USUBJID FROM study.dm")) == pseudonyms
        stew = restored.as_user("stew")
        assert stew.get("/api/v1/grants").json() == grants_before
        lineage_after = stew.get("/api/v1/lineage/datasets/study.dm").json()
        assert lineage_after["upstream"] == lineage_before["upstream"]
        assert lineage_after["upstream"]["ingestions"][0]["rows"] == 50
        assert (
            lineage_after["downstream"]["totals"]["query"]
            >= lineage_before["downstream"]["totals"]["query"]
            > 0
        )
        verified = json.loads(run_cli(monkeypatch, home, empty_database_url, "audit", "verify", "--json"))
        assert verified["ok"]
        # the lake is writable again: the same subjects get the same pseudonyms (same master key)
        write_csv(tmp_path / "dm2.csv", {"USUBJID": ["01-700-0000"], "AGE": [33]})
        assert ingest(restored, tmp_path / "dm2.csv", "study.dm2", policy="dm-policy")[1] == "succeeded"
        stew.post("/api/v1/grants", json={"principal": "user:ada", "table": "study.dm2"})
        again = query(ada, "SELECT USUBJID FROM study.dm2")[0][0]
        assert again in pseudonyms
    finally:
        db.dispose()


def test_restore_refuses_a_used_target_and_a_wrong_key(
    populated: Platform, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = populated.settings.home
    manifest = json.loads(
        run_cli(monkeypatch, home, database_url, "backup", "--output", str(tmp_path / "b"), "--json")
    )
    assert manifest["keys"]["sealed"] is False
    assert not (Path(manifest["path"]) / "keys.enc").exists()
    # into the running installation: its database is not empty
    out = run_cli(monkeypatch, home, database_url, "restore", manifest["path"], code=2)
    del out
    destroy(populated, database_url)
    other = tmp_path / "other.key"
    other.write_text("ab" * 32)
    other.chmod(0o600)
    monkeypatch.setenv("DATALIBRARY_MASTER_KEY_FILE", str(other))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    result = CliRunner().invoke(
        cli_app, ["restore", manifest["path"]],
        env={"DATALIBRARY_HOME": str(home), "DATALIBRARY_DATABASE_URL": target},
    )  # fmt: skip
    if not database_url.startswith("sqlite"):
        assert result.exit_code == 2 and "sqlite" in result.output.lower() or "master key" in result.output
        return
    assert result.exit_code == 2 and "not the one this backup was taken with" in result.output


def test_backups_api_and_page_are_for_admins(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    platform.settings.backup.directory = tmp_path / "backups"
    platform.add_user("stew", "steward")
    stew = platform.as_user("stew")
    assert stew.get("/api/v1/backups").status_code == 403
    assert stew.post("/api/v1/backups", json={}).status_code == 403
    platform.add_user("root", "admin")
    admin = platform.as_user("root")
    assert admin.get("/api/v1/backups").json() == []
    taken = admin.post("/api/v1/backups", json={})
    assert taken.status_code == 201, taken.text
    body = taken.json()
    assert body["database"] == "sqlite" and body["lake"] == "copy" and body["keys"] == "excluded"
    assert [b["id"] for b in admin.get("/api/v1/backups").json()] == [body["id"]]
    assert admin.post("/api/v1/backups", json={"lake": "reference"}).status_code == 409  # local warehouse
    page = admin.get("/admin/backups")
    assert page.status_code == 200 and body["id"] in page.text and "master key is not included" in page.text
    assert "/api/v1/backups" in admin.get("/api/openapi.json").text
