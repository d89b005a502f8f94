"""Project Git from inside a real sandboxed workspace: no network, no typed credentials.
git reaches the platform through the loopback forwarder and the workspace's token."""

from __future__ import annotations

import json

from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.auth import projects
from datalibrary.auth.permissions import Principal
from tests.helpers import Platform
from tests.test_workspaces import environment_dir, launch, make_ws_platform, sandbox_platform  # noqa: F401
from tests.workspace_helpers import execute

IN_WORKSPACE = r"""
import json, os, subprocess, pathlib
def run(*args, cwd=None):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    return {"code": r.returncode, "err": r.stderr[-2000:]}
out = {}
out["clone"] = run("git", "clone", "-q", "datalibrary:oncology/analysis.git", "analysis")
work = pathlib.Path("analysis")
nb = {"cells": [{"cell_type": "code", "source": "1 + 1", "metadata": {}, "execution_count": 1,
       "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                    "data": {"text/plain": "2"}}]}],
      "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
(work / "explore.ipynb").write_text(json.dumps(nb))
run("git", "add", "explore.ipynb", cwd=work)
out["commit"] = run("git", "commit", "-q", "-m", "notebook from the workspace", cwd=work)
out["push"] = run("git", "push", "-q", "origin", "HEAD:main", cwd=work)
rows = "".join(f"{i},{i*7},subject-{i}\n" for i in range(80000))
(work / "extract.csv").write_text("id,x,label\n" + rows)
run("git", "add", "extract.csv", cwd=work)
run("git", "commit", "-q", "-m", "an extract", cwd=work)
out["leak"] = run("git", "push", "origin", "HEAD:main", cwd=work)
print(json.dumps(out))
"""


def test_clone_commit_push_from_a_sandboxed_workspace(sandbox_platform: Platform) -> None:  # noqa: F811
    platform = sandbox_platform
    platform.add_user("stella", "steward")
    client, wid = launch(platform, "alice")
    with platform.db.session() as session:
        system = Principal.system("test")
        projects.create_project(session, system, "oncology")
        projects.add_member(session, system, "oncology", "alice")
    created = platform.as_user("stella").post("/api/v1/projects/oncology/repos", json={"name": "analysis"})
    assert created.status_code == 201, created.text
    out = execute(client, wid, IN_WORKSPACE, timeout=240)
    assert out["error"] is None, out
    result = json.loads(out["stdout"].strip().splitlines()[-1])
    assert result["clone"]["code"] == 0, result
    assert result["commit"]["code"] == 0, result
    assert result["push"]["code"] == 0, result
    # the lake extract is refused, with the way out named
    assert result["leak"]["code"] != 0 and "export airlock" in result["leak"]["err"], result
    # the commit is visible through the API, the push audited as coming from the workspace
    commits = platform.as_user("alice").get("/api/v1/projects/oncology/repos/analysis/commits").json()
    assert [c["message"] for c in commits["commits"]] == ["notebook from the workspace"]
    with platform.db.session() as session:
        pushes = session.scalars(select(AuditEvent).where(AuditEvent.action.like("repo.push%"))).all()
        assert [(e.action, e.actor, e.details["via"]) for e in pushes] == [
            ("repo.push", "alice", "workspace"),
            ("repo.push_refused", "alice", "workspace"),
        ]
