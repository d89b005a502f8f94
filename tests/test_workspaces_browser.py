"""A scientist's whole notebook journey in Chromium, and what workspace content can do to the
console (nothing): real sandbox (or process), real JupyterLab, real lake, real browser.

Workspaces are served on their own origin (ws-N.localhost:<port>), the console on
127.0.0.1:<port>; the test waits for JupyterLab's launcher to render, not just for a page."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from datalibrary.workspaces import paths
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.provisioners import sandbox_possible
from tests.helpers import PASSWORD, LiveServer, Platform, make_platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.workspace_helpers import CATALOG, UnixServer, build_test_environment

pytestmark = pytest.mark.browser
PROVISIONER = os.environ.get("DL_TEST_WS_PROVISIONER") or (
    "sandbox" if sandbox_possible() and host_version() else "process"
)
PRODUCT = "notebook" if PROVISIONER == "sandbox" else "open-notebook"


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CATALOG", str(catalog))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", PROVISIONER)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR", str(build_test_environment().parent))
    shutil.copy(sqlite_template, tmp_path / "state.db")
    with make_platform(tmp_path / "home", f"sqlite:///{tmp_path / 'state.db'}") as platform:
        platform.add_user("sci", "scientist")
        platform.add_user("stew", "steward")
        add_policy(platform)
        write_csv(tmp_path / "dm.csv", {"USUBJID": ["S1", "S2", "S3"], "SITEID": ["701", "702", "701"]})
        ingest(platform, tmp_path / "dm.csv", "cdisc.dm")
        granted = platform.as_user("stew").post(
            "/api/v1/grants",
            json={"principal": "user:sci", "table": "cdisc.dm", "row_filter": "siteid = 701"},
        )
        assert granted.status_code == 201, granted.text
        with (
            UnixServer(platform.app, paths.api_socket(platform.settings)),
            LiveServer(platform.app) as server,
        ):
            yield platform, server.url
        from sqlalchemy import select

        from datalibrary.workspaces import service
        from datalibrary.workspaces.models import Workspace
        from datalibrary.workspaces.sync import run_sync

        with platform.db.session() as session:
            for row in session.scalars(select(Workspace).where(Workspace.state != "terminated")):
                run_sync(service.build_provisioner(platform.settings, row).stop())


PROBE = """async (console) => {
  const out = {cookies: document.cookie};
  try {
    const r = await fetch(console + "/api/v1/me", {credentials: "include"});
    out.read = "answered " + r.status + " " + (await r.text()).slice(0, 80);
  } catch (e) { out.read = "blocked: " + e; }
  try {
    await fetch(console + "/api/v1/tokens", {method: "POST", mode: "no-cors", credentials: "include",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({name: "stolen"})});
    out.write = "sent";
  } catch (e) { out.write = "blocked: " + e; }
  return out;
}"""


def sign_in(context, url: str, name: str):  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}/")
    return page


def open_lab(context, page):  # type: ignore[no-untyped-def]
    """Click 'Open JupyterLab' and wait until JupyterLab's launcher has rendered."""
    with context.expect_page() as opened:
        page.locator(".workspace").first.locator("a", has_text="Open JupyterLab").click()
    lab = opened.value
    lab.wait_for_selector(".jp-Launcher", timeout=240_000)
    return lab


def state_is(page, state: str, timeout: float = 90_000) -> None:  # type: ignore[no-untyped-def]
    page.locator(".workspace").first.locator(".state", has_text=state).wait_for(timeout=timeout)


def test_notebook_journey_in_a_real_browser(browser, served) -> None:  # type: ignore[no-untyped-def]
    platform, url = served
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page = sign_in(context, url, "sci")
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/workspaces")
    page.select_option("#product", PRODUCT)
    page.select_option("#instance-type", "tiny")
    page.click("#launch")
    state_is(page, "running")
    lab = open_lab(context, page)
    # JupyterLab runs on the workspace's own origin, not the console's
    assert lab.url.startswith("http://ws-1.localhost:"), lab.url
    config = json.loads(lab.locator("#jupyter-config-data").text_content() or "{}")
    assert config.get("token") == ""
    assert paths.jupyter_token(platform.settings, _workspace(platform)) not in lab.content()
    # script on the workspace origin (what a planted lab extension runs) cannot reach the console
    probe = lab.evaluate(PROBE, url)
    assert probe["cookies"] == "" or "dl_" not in probe["cookies"], probe
    assert probe["read"].startswith("blocked") and probe["write"].startswith("blocked"), probe
    with platform.db.session() as session:
        from sqlalchemy import func, select

        from datalibrary.auth.models import ApiToken

        assert session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.scope.is_(None))) == 1
    # a notebook from the launcher: created by the browser through the proxy (a POST, so
    # the Origin and JupyterLab's XSRF checks passed)
    lab.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    lab.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=60_000)
    notebook = paths.home_dir(platform.settings, 1) / "Untitled.ipynb"
    assert notebook.exists()
    lab.close()
    # stop, start: the notebook is kept
    page.locator(".workspace").first.locator("button", has_text="Stop").click()
    state_is(page, "stopped")
    page.locator(".workspace").first.locator("button", has_text="Start").click()
    state_is(page, "running")
    lab = open_lab(context, page)
    lab.locator(".jp-DirListing-item", has_text="Untitled.ipynb").wait_for(timeout=30_000)
    lab.close()
    # pause, resume, terminate
    page.locator(".workspace").first.locator("button", has_text="Pause").click()
    state_is(page, "paused")
    page.locator(".workspace").first.locator("button", has_text="Resume").click()
    state_is(page, "running")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".workspace").first.locator("button", has_text="Terminate").click()
    page.locator(".workspace").wait_for(state="detached", timeout=60_000)
    assert errors == [], errors
    context.close()


def _workspace(platform: Platform):  # type: ignore[no-untyped-def]
    from datalibrary.workspaces.models import Workspace

    with platform.db.session() as session:
        row = session.get(Workspace, 1)
        session.expunge(row)
        return row
