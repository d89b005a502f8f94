"""A scientist launches a workspace from the console, sees it start, opens JupyterLab
through the proxy and stops it (Chromium, a real sandbox or process, real JupyterLab)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datalibrary.workspaces import paths
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.provisioners import sandbox_possible
from tests.helpers import PASSWORD, LiveServer, make_platform
from tests.workspace_helpers import CATALOG, UnixServer, build_test_environment

pytestmark = pytest.mark.browser


def test_scientist_launches_opens_and_stops_a_workspace(
    browser, tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioner = "sandbox" if sandbox_possible() and host_version() else "process"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CATALOG", str(catalog))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", provisioner)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR", str(build_test_environment().parent))
    shutil.copy(sqlite_template, tmp_path / "state.db")
    with make_platform(tmp_path / "home", f"sqlite:///{tmp_path / 'state.db'}") as platform:
        platform.add_user("sci", "scientist")
        with (
            UnixServer(platform.app, paths.api_socket(platform.settings)),
            LiveServer(platform.app) as server,
        ):
            url = server.url
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/login")
            page.fill("#name", "sci")
            page.fill("#password", PASSWORD)
            page.press("#password", "Enter")
            page.wait_for_url(f"{url}/")
            page.click('nav a[href="/workspaces"]')
            page.wait_for_url(f"{url}/workspaces")
            product = "notebook" if provisioner == "sandbox" else "open-notebook"
            page.select_option("#product", product)
            page.select_option("#instance-type", "tiny")
            assert "0.02 EUR per hour" in page.inner_text("#launch-price")
            page.click("#launch")
            item = page.locator(".workspace").first
            item.locator(".state").filter(has_text="starting").or_(
                item.locator(".state", has_text="running")
            ).wait_for()
            item.locator(".state", has_text="running").wait_for(timeout=90_000)
            link = item.locator("a", has_text="Open JupyterLab")
            lab_url = url + link.get_attribute("href")
            lab = context.new_page()
            lab.goto(lab_url)
            lab.wait_for_selector("#jp-main-dock-panel, .jp-LabShell", timeout=60_000)
            assert "JupyterLab" in lab.title()
            lab.close()
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0
            item.locator("button", has_text="Stop").click()
            item.locator(".state", has_text="stopped").wait_for(timeout=30_000)
            assert errors == [], errors
            context.close()
            with platform.db.session() as session:
                from datalibrary.workspaces.models import Workspace

                assert session.get(Workspace, 1).state == "stopped"
