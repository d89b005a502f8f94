"""Repository pages in-process: who sees which project's repositories (deny by default,
"not found" for non-members), the file view, and notebooks rendered read-only with every
piece of user content escaped."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from datalibrary.auth import projects
from datalibrary.auth.permissions import Principal
from datalibrary.repos import storage
from datalibrary.web import notebooks
from tests.helpers import PASSWORD, Platform
from tests.test_web import sign_in

NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "language": "python"}},
    "cells": [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": [
                "# Survival <b>analysis</b>\n",
                "<script>alert('md')</script> [x](javascript:alert(1))",
            ],
        },
        {
            "cell_type": "code",
            "execution_count": 3,
            "metadata": {},
            "source": "print('<img src=x onerror=alert(1)>')",
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["<img src=x onerror=alert(1)>\n"]},
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"text/html": "<script>alert('html')</script>", "text/plain": "<HTML table>"},
                },
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"application/javascript": "alert('js')"},
                },
                {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo=\n"}},
                {"output_type": "display_data", "metadata": {}, "data": {"image/png": '"><script>'}},
                {
                    "output_type": "error",
                    "ename": "ValueError",
                    "evalue": "bad",
                    "traceback": ["\x1b[0;31mValueError\x1b[0m: bad <b>"],
                },
            ],
        },
    ],
}

GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Alice & co",
    "GIT_AUTHOR_EMAIL": "alice@example.org",
    "GIT_COMMITTER_NAME": "Alice",
    "GIT_COMMITTER_EMAIL": "alice@example.org",
}


def seed(platform: Platform, tmp_path: Path) -> None:
    """Project oncology (alice a member) with repository 'analysis' holding two commits,
    pushed straight into the bare repository (the HTTP path has its own tests)."""
    platform.as_user("alice")
    platform.as_user("bob")
    platform.add_user("stella", "steward")
    with platform.db.session() as session:
        system = Principal.system("test")
        projects.create_project(session, system, "oncology")
        projects.create_project(session, system, "cardio")
        projects.add_member(session, system, "oncology", "alice")
        projects.add_member(session, system, "cardio", "bob")
    created = platform.as_user("stella").post("/api/v1/projects/oncology/repos", json={"name": "analysis"})
    assert created.status_code == 201, created.text
    assert (
        platform.as_user("stella")
        .post("/api/v1/projects/cardio/repos", json={"name": "secret-x"})
        .status_code
        == 201
    )
    bare = storage.repo_path(platform.settings, "oncology", "analysis")
    work = tmp_path / "work"
    run = lambda *a: subprocess.run(["git", *a], cwd=work, env=GIT_ENV, check=True, capture_output=True)  # noqa: E731
    work.mkdir()
    run("init", "-q", "-b", "main")
    (work / "notes").mkdir()
    (work / "notes" / "readme.md").write_text("<script>alert('file')</script>\n")
    run("add", ".")
    run("commit", "-q", "-m", "first <i>commit</i>")
    (work / "survival.ipynb").write_text(json.dumps(NOTEBOOK))
    (work / "blob.bin").write_bytes(bytes(range(256)))
    run("add", ".")
    run("commit", "-q", "-m", "notebook")
    run("push", "-q", str(bare), "HEAD:main")


def test_members_browse_and_outsiders_get_not_found(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    seed(platform, tmp_path)
    alice = sign_in(platform, "alice", PASSWORD)
    listing = alice.get("/repos")
    assert listing.status_code == 200
    assert "/repos/oncology/analysis" in listing.text and "secret-x" not in listing.text
    assert 'id="create-repo"' not in listing.text, "scientists do not create repositories"
    page = alice.get("/repos/oncology/analysis")
    assert page.status_code == 200
    assert "git clone datalibrary:oncology/analysis.git" in page.text
    assert "/git/oncology/analysis.git" in page.text
    assert "first &lt;i&gt;commit&lt;/i&gt;" in page.text and "<i>commit</i>" not in page.text
    assert "Alice &amp; co" in page.text
    assert 'data-path="survival.ipynb"' in page.text and 'data-kind="tree"' in page.text
    folder = alice.get("/repos/oncology/analysis", params={"path": "notes"})
    assert 'data-path="notes/readme.md"' in folder.text
    text = alice.get("/repos/oncology/analysis/file", params={"path": "notes/readme.md"})
    assert text.status_code == 200 and "&lt;script&gt;alert(&#39;file&#39;)" in text.text
    assert "<script>alert" not in text.text
    binary = alice.get("/repos/oncology/analysis/file", params={"path": "blob.bin"})
    assert "binary file (256 bytes)" in binary.text.lower()
    first = platform.as_user("alice").get("/api/v1/projects/oncology/repos/analysis/commits").json()
    older = alice.get("/repos/oncology/analysis", params={"ref": first["commits"][1]["id"]})
    assert older.status_code == 200 and "survival.ipynb" not in older.text

    # bob is in another project: every page of this one is "not found", nothing leaks
    bob = sign_in(platform, "bob", PASSWORD)
    assert "analysis" not in bob.get("/repos").text
    for path in ("/repos/oncology/analysis", "/repos/oncology/analysis/file?path=notes/readme.md"):
        response = bob.get(path)
        assert response.status_code == 404 and "readme" not in response.text.split("<main")[1]
    assert bob.get("/repos/oncology/nope").status_code == 404
    # odd input is refused, never passed to git as an option or a path outside the repository
    for params in ({"ref": "--output=/tmp/x"}, {"path": "../../etc/passwd"}, {"ref": "a..b"}):
        assert alice.get("/repos/oncology/analysis", params=params).status_code in (400, 404, 422)
    assert alice.get("/repos/oncology/analysis/file", params={"path": "/etc/passwd"}).status_code == 404
    # an auditor has neither repos.use nor repos.manage: 403 and no navigation entry
    platform.add_user("audrey", "auditor")
    audrey = sign_in(platform, "audrey", PASSWORD)
    assert audrey.get("/repos").status_code == 403
    assert 'href="/repos"' not in audrey.get("/").text
    # anonymous: sign in first
    assert platform.anonymous.get("/repos/oncology/analysis", follow_redirects=False).status_code == 303


def test_stewards_manage_every_project(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    seed(platform, tmp_path)
    stella = sign_in(platform, "stella", PASSWORD)
    listing = stella.get("/repos").text
    assert 'id="create-repo"' in listing and "secret-x" in listing and "analysis" in listing
    assert "not a member: browse only" in listing
    page = stella.get("/repos/oncology/analysis").text
    assert "not a member of oncology" in page and 'class="archive"' in page


def test_a_notebook_is_shown_read_only_and_escaped(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    seed(platform, tmp_path)
    alice = sign_in(platform, "alice", PASSWORD)
    response = alice.get("/repos/oncology/analysis/file", params={"path": "survival.ipynb"})
    assert response.status_code == 200
    main = response.text.split('id="file-view"')[1]
    assert "<h1>Survival &lt;b&gt;analysis&lt;/b&gt;</h1>" in main
    assert "<script>" not in main and "javascript:" not in main.replace("[x](javascript:", "")
    assert 'href="javascript' not in main
    assert "&lt;img src=x onerror=alert(1)&gt;" in main and "<img src=x" not in main
    assert "&lt;HTML table&gt;" in main, "HTML output shown as its plain text"
    assert "output not shown here (application/javascript)" in main
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in main
    assert main.count("<img ") == 1, "the invalid image is dropped"
    assert "ValueError: bad &lt;b&gt;" in main and "\x1b" not in main
    assert "In [3]:" in main


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"cells": 3}', b"\xff\xfe"])
def test_not_a_notebook(content: bytes) -> None:
    with pytest.raises(ValueError, match="not a notebook"):
        notebooks.render(content)


def test_packages_page_and_uploads_list_are_for_admins(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    platform.add_user("pat", "admin")
    platform.add_user("stella", "steward")
    admin = sign_in(platform, "pat", PASSWORD)
    page = admin.get("/packages")
    assert page.status_code == 200 and 'id="installs"' in page.text and 'value="allowlist"' in page.text
    assert 'href="/packages"' in page.text
    for user in ("alice", "stella"):
        if user == "alice":
            platform.as_user("alice")
        client = sign_in(platform, user, PASSWORD)
        assert client.get("/packages").status_code == 403
        assert 'href="/packages"' not in client.get("/").text
        assert platform.as_user(user).get("/api/v1/packages/internal").status_code == 403
    # the uploads list reads the audit trail of uploads (the mirror itself has its own tests)
    from datalibrary.audit import service as audit

    with platform.db.session() as session:
        audit.record(
            session,
            actor="pat",
            action="packages.upload",
            target="package:company-stats",
            details={"version": "0.3.1", "file": "company_stats-0.3.1-py3-none-any.whl", "bytes": 1234},
        )
    rows = platform.as_user("pat").get("/api/v1/packages/internal").json()
    assert rows[0]["package"] == "company-stats" and rows[0]["user"] == "pat" and rows[0]["bytes"] == 1234


def test_cli_lists_uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from datalibrary.cli import app

    monkeypatch.setenv("DATALIBRARY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATALIBRARY_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["packages", "uploads", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
