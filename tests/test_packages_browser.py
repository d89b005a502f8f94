"""The Packages page in Chromium (issue 16): an admin adds a deny rule and uploads an
internal wheel on the page, a scientist installs with real pip from the host against the
mirror (devpi-server caching a local upstream index), and the install log on the page shows
the install and the refusal; the allow-list switch works; scientists have no such page."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.package_helpers import make_wheel
from tests.test_packages import mirror_dir, mirror_platform, pip_install, upstream  # noqa: F401  (fixtures)
from tests.test_results_grid_browser import sign_in

pytestmark = pytest.mark.browser


def test_admin_manages_the_mirror_and_sees_installs(browser, mirror_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    platform, url = mirror_platform
    platform.add_user("pat", "admin")
    token = platform.as_user("alice").token
    errors: list[str] = []
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, url, "/packages", user="pat")
    page.wait_for_selector('input[name="mode"][value="open"]:checked')
    assert page.locator("#rules-empty").is_visible()

    page.select_option("#rule-kind", "deny")
    page.fill("#rule-name", "blockedpkg")
    page.fill("#rule-note", "licence review pending")
    page.click("#add-rule")
    page.wait_for_selector('#rules tr[data-name="blockedpkg"][data-kind="deny"]')
    assert "licence review pending" in page.inner_text("#rules")
    assert "Rule added: deny blockedpkg" in page.inner_text("#pkg-status")

    # pip from the host: one install goes through, the denied package is refused
    ok = pip_install(url, "alice", token, tmp_path / "a", "tinypkg==1.0")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = pip_install(url, "alice", token, tmp_path / "b", "blockedpkg")
    assert refused.returncode != 0 and "deny-list" in refused.stdout + refused.stderr
    installed = page.locator('#installs tr[data-package="tinypkg"][data-action="package.install"]')
    installed.wait_for(timeout=30_000)  # the log is polled
    row = installed.inner_text()
    assert "alice" in row and "1.0" in row and "installed" in row and "laptop" in row
    denied = page.locator('#installs tr[data-package="blockedpkg"][data-action="package.refused"]')
    denied.wait_for(timeout=30_000)
    assert "deny list (licence review pending)" in denied.inner_text()

    # an internal wheel uploaded on the page is listed
    wheel = make_wheel(tmp_path / "build", "company-stats", "0.3.1")
    page.set_input_files("#wheel", str(wheel))
    page.click("#upload")
    page.wait_for_selector('#uploads tr[data-package="company-stats"]', timeout=60_000)
    assert "0.3.1" in page.inner_text('#uploads tr[data-package="company-stats"]')

    # an R package published on the page is listed; a rule for R is marked so
    from tests.test_packages_r_policy import r_tarball

    page.set_input_files("#r-tarball", str(r_tarball(tmp_path / "r", "tinyr", "0.1.0")))
    page.click("#r-upload")
    page.wait_for_selector('#r-packages tr[data-package="tinyr"]', timeout=60_000)
    assert "0.1.0" in page.inner_text('#r-packages tr[data-package="tinyr"]')
    page.select_option("#rule-ecosystem", "r")
    page.select_option("#rule-kind", "deny")
    page.fill("#rule-name", "tinyr")
    page.click("#add-rule")
    page.wait_for_selector('#rules tr[data-name="tinyr"][data-ecosystem="r"]')

    # allow-list only, after a confirmation
    page.once("dialog", lambda dialog: dialog.accept())
    page.check('input[name="mode"][value="allowlist"]')
    page.wait_for_selector("#pkg-status:has-text('allow-list only')")
    assert platform.as_user("pat").get("/api/v1/packages/policy").json()["mode"] == "allowlist"
    page.screenshot(path=str(tmp_path / "packages.png"))
    # deleting the rule
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('#rules tr[data-name="blockedpkg"] button.delete-rule')
    page.wait_for_selector('#rules tr[data-name="blockedpkg"]', state="detached")
    assert errors == [], errors
    page.context.close()

    scientist = browser.new_context().new_page()
    sign_in(scientist, url, "/", user="alice")
    assert scientist.locator('nav a[href="/packages"]').count() == 0
    response = scientist.goto(f"{url}/packages")
    assert response is not None and response.status == 403
    scientist.context.close()
