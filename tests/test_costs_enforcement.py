"""Budget enforcement end to end: a real sandboxed workspace (bubblewrap + cgroups, JupyterLab)
runs, its owner's budget is spent, and after the warning period the enforcer stops it — its
home is kept — while new launches and starts are refused until an admin raises the budget."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from datalibrary.audit.models import AuditEvent
from datalibrary.costs import enforcer
from datalibrary.costs.models import BudgetAlert
from datalibrary.db.base import utcnow
from datalibrary.workspaces import paths
from datalibrary.workspaces.sync import run_sync
from tests.helpers import Platform
from tests.test_costs_budgets import spend_queries
from tests.test_workspaces import (  # noqa: F401 - fixtures
    environment_dir,
    launch,
    make_ws_platform,
    sandbox_platform,
)
from tests.workspace_helpers import wait_state


def test_spent_budget_stops_a_real_sandboxed_workspace(sandbox_platform: Platform) -> None:  # noqa: F811
    platform = sandbox_platform
    client, wid = launch(platform, "alice")
    home = paths.home_dir(platform.settings, wid)
    (home / "analysis.txt").write_text("keep me")
    admin = platform.as_user("admin")
    # live spend includes the running workspace
    me = client.get("/api/v1/costs/me").json()
    assert f"workspace:{wid}" in me["running"]

    assert admin.put("/api/v1/costs/budgets/user/alice", json={"amount": "1.00"}).status_code == 200
    spend_queries(platform, "alice", 0.25)  # 1.25 EUR of queries: the budget is spent
    with platform.db.session() as session:
        assert enforcer.check_all(session, platform.settings) == []  # warned; the grace period runs
    assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "running"
    assert "running workspaces stop at" in client.get("/api/v1/costs/me").json()["notices"][0]
    refused = client.post("/api/v1/workspaces", json={"product": "notebook", "instance_type": "tiny"})
    assert refused.status_code == 402 and "ask an administrator" in refused.json()["detail"]

    # the warning period is over: the periodic enforcer stops the workspace, the home stays
    with platform.db.session() as session:
        session.execute(update(BudgetAlert).values(enforce_after=utcnow() - timedelta(seconds=1)))
    assert run_sync(enforcer.enforce(platform.db, platform.settings)) == [wid]
    data = wait_state(client, wid, "stopped")
    assert "budget of user 'alice' spent" in data["state_reason"]
    assert (home / "analysis.txt").read_text() == "keep me"
    with platform.db.session() as session:
        enforced = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "costs.budget_enforced")
        ).all()
        assert enforced[-1].details["stopped_workspaces"] == [wid]
    start = client.post(f"/api/v1/workspaces/{wid}/start")
    assert start.status_code == 402, start.text

    # an admin raises the budget: the workspace starts again with its home
    assert admin.put("/api/v1/costs/budgets/user/alice", json={"amount": "50"}).json()["state"] == "ok"
    assert client.post(f"/api/v1/workspaces/{wid}/start").status_code == 202
    assert wait_state(client, wid, "running", "failed")["state"] == "running"
    assert run_sync(enforcer.enforce(platform.db, platform.settings)) == []
