"""Project Git with real parts: real ``git`` clients against the platform served by uvicorn,
the real ``git http-backend`` behind it, the real pre-receive guard."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.auth import projects
from datalibrary.auth.permissions import Principal
from datalibrary.lineage.models import LineageEvent
from tests.helpers import LiveServer, Platform

GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Alice",
    "GIT_AUTHOR_EMAIL": "alice@example.org",
    "GIT_COMMITTER_NAME": "Alice",
    "GIT_COMMITTER_EMAIL": "alice@example.org",
}


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def git_platform(sqlite_platform: Platform) -> Iterator[tuple[Platform, str]]:
    platform = sqlite_platform
    for user in ("alice", "bob"):
        platform.as_user(user)
    platform.add_user("stella", "steward")
    with platform.db.session() as session:
        system = Principal.system("test")
        projects.create_project(session, system, "oncology")
        projects.add_member(session, system, "oncology", "alice")
    response = platform.as_user("stella").post(
        "/api/v1/projects/oncology/repos", json={"name": "analysis", "description": "survival analysis"}
    )
    assert response.status_code == 201, response.text
    with LiveServer(platform.app) as live:
        yield platform, live.url


def url_for(base: str, user: str, token: str, repo: str = "oncology/analysis") -> str:
    host = base.removeprefix("http://")
    return f"http://{user}:{token}@{host}/git/{repo}.git"


def commit_file(work: Path, name: str, content: str | bytes, message: str) -> None:
    path = work / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    git("add", name, cwd=work)
    git("commit", "-q", "-m", message, cwd=work)


def test_member_clones_and_pushes_with_a_personal_token(git_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, base = git_platform
    url = url_for(base, "alice", platform.tokens["alice"])
    work = tmp_path / "work"
    git("clone", "-q", url, str(work))
    commit_file(work, "analysis.py", "print('hello')\n", "first analysis")
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    # a second clone sees the commit
    again = tmp_path / "again"
    git("clone", "-q", url, str(again))
    assert git("rev-parse", "HEAD", cwd=again).stdout.strip() == head
    # the API shows it
    client = platform.as_user("alice")
    commits = client.get("/api/v1/projects/oncology/repos/analysis/commits").json()
    assert commits["commits"][0]["id"] == head and commits["commits"][0]["message"] == "first analysis"
    # audited and in lineage: who, which repository, which commit
    with platform.db.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.target == "repo:oncology/analysis")
        ).all()
        actions = [(e.action, e.actor) for e in events]
        assert ("repo.push", "alice") in actions and ("repo.clone", "alice") in actions
        push = next(e for e in events if e.action == "repo.push")
        assert push.details["refs"][0]["new"] == head
        lineage = session.scalars(select(LineageEvent).where(LineageEvent.job_name == "git.push")).all()
        assert lineage and lineage[-1].user == "alice"
        outputs = lineage[-1].payload["outputs"]
        assert outputs[0]["name"] == "/git/oncology/analysis.git"  # where it is served (naming spec)
        assert outputs[0]["facets"]["version"]["datasetVersion"] == head


def test_non_members_and_anonymous_callers_are_refused(git_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, base = git_platform
    import httpx

    # anonymous: 401 with a Basic challenge, so git asks its credential helper
    response = httpx.get(f"{base}/git/oncology/analysis.git/info/refs?service=git-upload-pack")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
    # a console cookie is never enough
    response = httpx.get(
        f"{base}/git/oncology/analysis.git/info/refs?service=git-upload-pack", cookies={"dl_session": "x"}
    )
    assert response.status_code == 401
    # bob is not a member: not found (the repository's existence is not revealed), and git fails
    result = git(
        "clone", "-q", url_for(base, "bob", platform.tokens["bob"]), str(tmp_path / "b"), check=False
    )
    assert result.returncode != 0 and ("404" in result.stderr or "not found" in result.stderr.lower())
    auth = httpx.BasicAuth("bob", platform.tokens["bob"])
    response = httpx.get(f"{base}/git/oncology/analysis.git/info/refs?service=git-receive-pack", auth=auth)
    assert response.status_code == 404
    # a wrong token: 401
    result = git("clone", "-q", url_for(base, "alice", "dl_wrong"), str(tmp_path / "w"), check=False)
    assert result.returncode != 0
    # the dumb protocol is not served (it would bypass the record of clones)
    auth = httpx.BasicAuth("alice", platform.tokens["alice"])
    assert httpx.get(f"{base}/git/oncology/analysis.git/HEAD", auth=auth).status_code == 404
    assert httpx.get(f"{base}/git/oncology/analysis.git/objects/info/packs", auth=auth).status_code == 404
    # a path that tries to leave the repositories' root
    assert httpx.get(
        f"{base}/git/oncology/..%2F..%2Fx.git/info/refs?service=git-upload-pack", auth=auth
    ).status_code in (404, 422)


def test_archived_repositories_are_read_only(git_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, base = git_platform
    url = url_for(base, "alice", platform.tokens["alice"])
    work = tmp_path / "work"
    git("clone", "-q", url, str(work))
    commit_file(work, "a.py", "x = 1\n", "one")
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    stella = platform.as_user("stella")
    assert stella.post("/api/v1/projects/oncology/repos/analysis/archive").status_code == 200
    commit_file(work, "b.py", "y = 2\n", "two")
    result = git("push", "-q", "origin", "HEAD:main", cwd=work, check=False)
    assert result.returncode != 0 and "archived" in result.stderr
    git("clone", "-q", url, str(tmp_path / "still-readable"))


def test_push_of_lake_extracts_is_refused(git_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, base = git_platform
    url = url_for(base, "alice", platform.tokens["alice"])
    work = tmp_path / "work"
    git("clone", "-q", url, str(work))
    commit_file(work, "ok.py", "print(1)\n", "fine")
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    # a large CSV
    random = __import__("random").Random(7)
    # incompressible enough that git sends the pack in chunks (above http.postBuffer)
    rows = "".join(f"{i},{random.random()},{random.getrandbits(64):x}\n" for i in range(60_000))
    commit_file(work, "data/extract.csv", "id,x,label\n" + rows, "add extract")
    result = git("push", "origin", "HEAD:main", cwd=work, check=False)
    assert result.returncode != 0
    assert "data/extract.csv" in result.stderr and "export airlock" in result.stderr
    git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    # a notebook whose output shows a table of 200 rows
    table = "<table>" + "".join(f"<tr><td>{i}</td></tr>" for i in range(201)) + "</table>"
    notebook = {
        "cells": [{"cell_type": "code", "source": "df", "metadata": {}, "execution_count": 1,
                   "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                "data": {"text/html": table, "text/plain": "..."}}]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    commit_file(work, "explore.ipynb", json.dumps(notebook), "notebook with outputs")
    result = git("push", "origin", "HEAD:main", cwd=work, check=False)
    assert result.returncode != 0 and "explore.ipynb" in result.stderr and "200 rows" in result.stderr
    # nothing moved; the refusal is audited with its reason
    client = platform.as_user("alice")
    commits = client.get("/api/v1/projects/oncology/repos/analysis/commits").json()["commits"]
    assert [c["message"] for c in commits] == ["fine"]
    with platform.db.session() as session:
        refused = session.scalars(select(AuditEvent).where(AuditEvent.action == "repo.push_refused")).all()
        assert len(refused) == 2 and refused[0].outcome == "denied"
        assert "extract.csv" in json.dumps(refused[0].details)
    # the same notebook with cleared outputs passes
    notebook["cells"][0]["outputs"] = []
    git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    commit_file(work, "explore.ipynb", json.dumps(notebook), "notebook, outputs cleared")
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    assert os.path.exists(work / "explore.ipynb")


def test_push_carrying_identifying_lake_values_is_refused(git_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A small file is still an extract when it carries subjects' identifiers from the lake."""
    from tests.lake_helpers import add_policy, ingest, write_csv

    platform, base = git_platform
    add_policy(platform)
    subjects = [f"01-7{i:02d}-{1000 + i}" for i in range(40)]
    source = write_csv(tmp_path / "dm.csv", {"USUBJID": subjects, "AGE": list(range(40))})
    ingest(platform, source, "study.dm")
    url = url_for(base, "alice", platform.tokens["alice"])
    work = tmp_path / "work"
    git("clone", "-q", url, str(work))
    commit_file(work, "notes.md", "# Notes\nsubject 01-701-1001 looked odd\n", "one identifier is fine")
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    table = "subject;age\n" + "".join(f"{s};{i}\n" for i, s in enumerate(subjects[:5]))
    commit_file(work, "results/small.txt", table, "five subjects")
    result = git("push", "origin", "HEAD:main", cwd=work, check=False)
    assert result.returncode != 0
    assert "results/small.txt" in result.stderr and "identifying" in result.stderr
    # the fingerprints hold no identifier in clear
    from datalibrary.repos.hooks import fingerprints_path

    assert b"01-701" not in fingerprints_path(platform.settings).read_bytes()


def test_guard_reads_contents_not_names_and_only_what_the_push_adds(git_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A notebook renamed to hide it is still a notebook; a file the repository already had
    (an old commit's, e.g. a thin pack's delta base) is not blamed on a later push."""
    platform, base = git_platform
    url = url_for(base, "alice", platform.tokens["alice"])
    work = tmp_path / "work"
    git("clone", "-q", url, str(work))
    table = "<table>" + "".join(f"<tr><td>{i}</td></tr>" for i in range(120)) + "</table>"
    output = {
        "output_type": "execute_result",
        "execution_count": 1,
        "metadata": {},
        "data": {"text/html": table},
    }
    source = "".join(f"x{i} = compute({i})  # step {i} of the analysis\n" for i in range(200))
    cell = {"cell_type": "code", "source": source, "metadata": {}, "execution_count": 1, "outputs": [output]}
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    commit_file(work, "notes/results.json", json.dumps(notebook, indent=1), "renamed notebook")
    result = git("push", "origin", "HEAD:main", cwd=work, check=False)
    assert result.returncode != 0 and "notes/results.json" in result.stderr and "119 rows" in result.stderr
    # an admin raises the limit and the push passes; lowered again, a push that clears the
    # outputs passes although Git may send it as a delta against the old blob (a thin
    # pack's base lands in the quarantine too, but the push does not add it)
    platform.settings.repos.notebook_max_rows = 500
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    platform.settings.repos.notebook_max_rows = 50
    cell["outputs"] = []
    commit_file(work, "notes/results.json", json.dumps(notebook, indent=1), "outputs cleared")
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    # a hook deleted behind the platform's back is written again before the next push
    from datalibrary.repos.hooks import hooks_dir

    (hooks_dir(platform.settings) / "pre-receive").unlink()
    commit_file(
        work, "notes/again.json", json.dumps({**notebook, "cells": [{**cell, "outputs": [output]}]}), "again"
    )
    result = git("push", "origin", "HEAD:main", cwd=work, check=False)
    assert result.returncode != 0 and "notes/again.json" in result.stderr
    git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    # no pipe of a finished push is left behind
    from datalibrary.repos.hooks import push_dir

    assert list(push_dir(platform.settings).iterdir()) == []


def test_the_hook_refuses_when_no_guard_listens(git_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Deny by default: the platform's hook run by a Git that did not come through the
    platform (no guard for this push) refuses the push."""
    from datalibrary.repos.hooks import hooks_dir

    platform, _ = git_platform
    bare = tmp_path / "bare.git"
    git("init", "-q", "--bare", str(bare))
    work = tmp_path / "work"
    git("init", "-q", "--initial-branch=main", str(work))
    commit_file(work, "a.py", "print(1)\n", "one")
    git("--git-dir", str(bare), "config", "core.hooksPath", str(hooks_dir(platform.settings)))
    result = git("push", str(bare), "main", cwd=work, check=False)
    assert result.returncode != 0 and "push guard is not configured" in result.stderr, result.stderr
    assert git("--git-dir", str(bare), "rev-list", "--all", check=False).stdout == ""


def test_push_guard_fails_closed_on_a_hostile_request(tmp_path: Path) -> None:
    """The pipe's request names a quarantine outside the repository: refused, not read."""
    from datalibrary.repos.guard import GuardConfig
    from datalibrary.repos.push_guard import PushGuard

    repo = tmp_path / "r.git"
    git("init", "-q", "--bare", str(repo))
    guard = PushGuard(tmp_path / "run", repo, GuardConfig())
    guard.start()
    try:
        request = f"{tmp_path}\n{'0' * 40} {'1' * 40} refs/heads/main\n"
        (guard.directory / "request").write_text(request)
        with open(guard.directory / "reply") as reply:
            code, _, message = reply.read().partition("\n")
        assert code == "1" and "could not check this push" in message
        assert guard.findings and guard.findings[0]["reason"] == "the guard could not scan this push"
    finally:
        guard.close()
    assert not guard.directory.exists()
    # a guard no hook ever talked to stops at once when the push ends
    idle = PushGuard(tmp_path / "run", repo, GuardConfig())
    idle.start()
    idle.close()
    assert idle.findings is None and not idle.directory.exists()


def test_the_guard_runs_as_a_stand_alone_hook(tmp_path: Path) -> None:
    """As documented for an external Git server (Gitea, GitLab): the module as the hook."""
    import sys

    import datalibrary

    bare = tmp_path / "bare.git"
    git("init", "-q", "--bare", str(bare))
    hook = bare / "hooks" / "pre-receive"
    source = Path(datalibrary.__file__).resolve().parents[1]
    hook.write_text(
        f"#!/bin/sh\nPYTHONPATH={source} DL_GUARD_MAX_DATA_FILE_BYTES=1000 exec {sys.executable} -S -c "
        "'import sys; from datalibrary.repos.guard import main; sys.exit(main())'\n"
    )
    hook.chmod(0o755)
    work = tmp_path / "work"
    git("init", "-q", "--initial-branch=main", str(work))
    commit_file(work, "a.py", "print(1)\n", "fine")
    git("push", "-q", str(bare), "main", cwd=work)
    commit_file(work, "out/rows.csv", "id,x\n" + "".join(f"{i},{i * 2}\n" for i in range(400)), "extract")
    result = git("push", str(bare), "main", cwd=work, check=False)
    assert result.returncode != 0 and "out/rows.csv" in result.stderr and "export airlock" in result.stderr
