"""Issue 15's smaller workspace items: an instance type that cannot be launched says why
(roles, GPU on this host, quota, budget) in the API, on the page and in the browser, and
terminated workspaces stay visible in a history with their running time and cost (page,
API, CLI ``--json``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datalibrary.auth.service import get_user
from datalibrary.cli import app as cli_app
from datalibrary.db.base import utcnow
from datalibrary.workspaces.models import Workspace, WorkspaceUsage
from tests.helpers import LiveServer, Platform, make_platform
from tests.test_results_grid_browser import sign_in
from tests.test_web import sign_in as sign_in_http

CATALOG = """
currency: EUR
instance_types:
  - {name: tiny, vcpu: 1, memory_gib: 0.5, price_per_hour: 0.02}
  - {name: big, vcpu: 16, memory_gib: 64, price_per_hour: 1.5}
  - {name: gpu, vcpu: 2, memory_gib: 4, gpu: 1, price_per_hour: 0.5}
environments:
  - {name: python, kernels: [python], packages: [jupyterlab, ipykernel]}
products:
  - {name: notebook, environment: python, instance_types: [tiny, gpu], roles: [scientist], requires: []}
  - {name: heavy, environment: python, instance_types: [big], roles: [steward], requires: []}
"""


@pytest.fixture
def ws(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    monkeypatch.setenv("DATALIBRARY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CATALOG", str(catalog))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", "process")
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__MAX_PER_USER", "2")
    db_path = tmp_path / "state.db"
    shutil.copy(sqlite_template, db_path)
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", f"sqlite:///{db_path}")
    with make_platform(tmp_path / "home", f"sqlite:///{db_path}") as platform:
        platform.as_user("alice")
        yield platform


def reasons(platform: Platform, user: str = "alice") -> dict[str, str | None]:
    catalog = platform.as_user(user).get("/api/v1/workspaces/catalog").json()
    for t in catalog["instance_types"]:
        assert t["available"] is (t["unavailable_because"] is None)
    return {t["name"]: t["unavailable_because"] for t in catalog["instance_types"]}


def add_workspaces(platform: Platform, states: list[str], user: str = "alice") -> list[int]:
    with platform.db.session() as session:
        owner = get_user(session, user).id
        rows = [
            Workspace(owner_id=owner, product="notebook", instance_type="tiny", environment="python",
                      provisioner="process", state=state, state_reason=f"{state} by test",
                      provisioner_state={})
            for state in states
        ]  # fmt: skip
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def test_unavailable_instance_types_say_why(ws: Platform) -> None:
    found = reasons(ws)
    assert found["tiny"] is None
    assert "not allowed for your roles" in found["big"]
    assert "GPU not available on this host" in found["gpu"] and "'process'" in found["gpu"]
    # the same refusal as a launch
    refused = ws.as_user("alice").post(
        "/api/v1/workspaces", json={"product": "notebook", "instance_type": "gpu"}
    )
    assert refused.status_code == 422
    page = sign_in_http(ws, "alice", "Correct-Horse-42-battery").get("/workspaces").text
    assert "unavailable: GPU not available on this host" in page
    assert "unavailable: not allowed for your roles" in page
    # a spent budget (0 EUR) makes every launchable type say so
    ws.add_user("pat", "admin")
    assert ws.as_user("pat").put("/api/v1/costs/budgets/user/alice", json={"amount": "0"}).status_code == 200
    found = reasons(ws)
    assert found["tiny"].startswith("over budget:") and "budget" in found["tiny"]
    assert "not allowed for your roles" in found["big"], "the more specific reason stays"
    assert ws.as_user("pat").delete("/api/v1/costs/budgets/user/alice").status_code == 204
    # over the quota of 2 workspaces
    add_workspaces(ws, ["stopped", "stopped"])
    found = reasons(ws)
    assert "over your quota" in found["tiny"] and "2 workspaces" in found["tiny"]


def test_terminated_workspaces_stay_in_a_history_with_cost(ws: Platform) -> None:
    ended, other, live = add_workspaces(ws, ["terminated", "terminated", "running"])
    ws.as_user("bob")
    (bobs,) = add_workspaces(ws, ["terminated"], user="bob")
    start = utcnow() - timedelta(hours=5)
    with ws.db.session() as session:
        owner = get_user(session, "alice").id
        for workspace_id in (ended, other, live):
            workspace = session.get(Workspace, workspace_id)
            workspace.created_at = start
        session.get(Workspace, ended).state_changed_at = start + timedelta(hours=3)
        session.get(Workspace, other).state_changed_at = start + timedelta(hours=4)
        for workspace_id, state, a, b in (
            (ended, "running", 0, 120),
            (ended, "stopped", 120, 180),
            (other, "running", 0, 30),
        ):
            session.add(
                WorkspaceUsage(
                    workspace_id=workspace_id, user_id=owner, project=None, instance_type="tiny", state=state,
                    started_at=start + timedelta(minutes=a), ended_at=start + timedelta(minutes=b),
                )
            )  # fmt: skip
    alice = ws.as_user("alice")
    rate = Decimal(alice.get("/api/v1/workspaces/catalog").json()["launch_prices"]["tiny"]["price_per_hour"])
    rows = alice.get("/api/v1/workspaces/history").json()
    assert [r["id"] for r in rows] == [other, ended], "newest terminated first, only alice's, only terminated"
    first = {r["id"]: r for r in rows}[ended]
    assert first["running_seconds"] == 7200 and Decimal(first["cost"]) == (rate * 2).quantize(Decimal("0.01"))
    assert {r["id"]: r for r in rows}[other]["running_seconds"] == 1800
    # the live list still excludes them; the admin's history covers everyone
    assert ended not in [w["id"] for w in alice.get("/api/v1/workspaces").json()]
    ws.add_user("pat", "admin")
    assert bobs in [r["id"] for r in ws.as_user("pat").get("/api/v1/workspaces/history?all=true").json()]
    assert alice.get("/api/v1/workspaces/history?all=true").status_code == 403
    assert bobs not in [r["id"] for r in alice.get("/api/v1/workspaces/history").json()]
    # page
    page = sign_in_http(ws, "alice", "Correct-Horse-42-battery").get("/workspaces").text
    history = page.split('id="history"')[1].split("</table>")[0]
    assert f'data-id="{ended}"' in history and "2 h 00 min" in history and f"{first['cost']} EUR" in history
    assert f'data-id="{live}"' not in history
    # CLI
    result = CliRunner().invoke(cli_app, ["workspaces", "history", "--user", "alice", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["id"] for d in data] == [other, ended] and data[1]["cost"] == first["cost"]


@pytest.mark.browser
def test_reasons_and_history_in_chromium(browser, ws: Platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (ended,) = add_workspaces(ws, ["terminated"])
    with LiveServer(ws.app) as live:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, live.url, "/workspaces", user="alice")
        page.wait_for_selector("#type-reason:not([hidden])")
        assert "gpu: GPU not available on this host" in page.inner_text("#type-reason")
        gpu = page.locator('#instance-type option[value="gpu"]')
        assert gpu.is_disabled() and "unavailable: GPU not available" in gpu.inner_text()
        big = page.locator('#instance-type option[value="big"]')
        assert big.is_disabled() and "not offered with notebook" in big.inner_text()
        assert page.locator("#instance-type").input_value() == "tiny"
        assert not page.locator("#launch").is_disabled()
        assert page.locator(f'#history tr[data-id="{ended}"]').is_visible()
        page.screenshot(path=str(tmp_path / "workspaces.png"), full_page=True)
        assert errors == [], errors
        page.context.close()
