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
    lab.wait_for_selector(".jp-Launcher", timeout=120_000)
    return lab


def write_cell(lab, code: str) -> None:  # type: ignore[no-untyped-def]
    lab.locator(".jp-NotebookPanel:visible [data-status='idle']").first.wait_for(timeout=120_000)
    lab.locator(".jp-NotebookPanel:visible .jp-Cell").last.locator(".cm-content").click()
    lab.keyboard.insert_text(code)
    lab.keyboard.press("Escape")


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
    # a notebook: a cell queries the lake through the SDK (grants apply: site 701 only)
    lab.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    lab.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=60_000)
    code = "from datalibrary.sdk import connect\nconnect().sql('SELECT count(*) FROM cdisc.dm').rows()"
    write_cell(lab, code)
    lab.keyboard.press("Control+s")  # a save is a PUT through the proxy: XSRF and Origin checked
    notebook = paths.home_dir(platform.settings, 1) / "Untitled.ipynb"
    for _ in range(100):
        if notebook.exists() and "cdisc.dm" in notebook.read_text():
            break
        lab.wait_for_timeout(200)
    assert "cdisc.dm" in notebook.read_text()
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
