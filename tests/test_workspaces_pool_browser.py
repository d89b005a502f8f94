"""The warm pool in Chromium: an administrator fills it from the console's Warm pool page; a
scientist's launch takes the ready member and JupyterLab renders on its own origin; a cell
queries the lake with the token handed over at assignment (grants apply)."""

from __future__ import annotations

import pytest

from datalibrary.auth import service as auth_service
from datalibrary.workspaces import pool
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.provisioners import sandbox_possible
from tests.test_workspaces_browser import (  # noqa: F401 - the served fixture
    PYTHON_CELL,
    launch,
    new_notebook,
    run_cell,
    served,
    sign_in,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def pool_env(monkeypatch: pytest.MonkeyPatch) -> None:
    if not (sandbox_possible() and host_version()):
        pytest.skip("the warm pool needs the sandbox provisioner (bubblewrap, root, cgroups)")
    # only the Python member: an R member (when an earlier test built the R environment) would
    # start in the background while the scientist signs in
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__WARM_POOL", '{"r/t3.medium": 0, "r/tiny": 0}')


def test_a_launch_takes_the_warm_member_and_jupyterlab_renders(browser, pool_env, served) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    platform, url = served
    assert [t.environment for t in pool.targets(platform.settings)] == ["python"]
    admin_context = browser.new_context()
    admin = sign_in_admin(admin_context, url, platform.admin_password)
    admin.goto(f"{url}/admin/workspace-pool")
    target = admin.locator("#pool-targets tbody tr").first
    assert target.locator("td").nth(0).text_content() == "python"
    assert target.locator(".ready").text_content() == "0"
    admin.click("text=Refill now")
    admin.wait_for_url(f"{url}/admin/workspace-pool?started=1*")
    assert admin.locator("#pool-targets tbody tr").first.locator(".ready").text_content() == "1"
    member = int(admin.locator("#pool-members tbody tr").first.get_attribute("data-id") or 0)
    assert member > 0
    # the scientist sees nothing of it until the launch takes it
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = sign_in(context, url, "sci")
    page.goto(f"{url}/workspaces")
    assert page.locator(".workspace").count() == 0
    lab = launch(context, page, url, "notebook")
    card = page.locator(".workspace").first
    assert card.get_attribute("data-id") == str(member)
    assert lab.url.startswith(f"http://ws-{member}.ws.localhost:"), lab.url
    new_notebook(lab, "Python 3 (ipykernel)")
    run_cell(lab, PYTHON_CELL, "visible rows: 2")  # sci's grant (site 701) applies
    # the pool is empty now; the page says so
    admin.goto(f"{url}/admin/workspace-pool")
    assert admin.locator("#pool-targets tbody tr").first.locator(".ready").text_content() == "0"
    assert admin.locator(f'#pool-members tr[data-id="{member}"]').count() == 0
    admin_context.close()
    context.close()


def sign_in_admin(context, url: str, password: str):  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("#name", auth_service.FIRST_ADMIN)
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}/**")
    return page
