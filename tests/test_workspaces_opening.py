"""Opening a workspace that is not running yet (what Launch's new tab does): the console shows
a page that waits for it, never a grant; once it runs, the same address hands over to the
workspace's origin. The platform's JupyterLab plugins reach every workspace's JupyterLab."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from datalibrary.auth.permissions import Principal
from datalibrary.workspaces import jupyter, paths, platform_services, service
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.provisioners import sandbox_possible
from datalibrary.workspaces.sandbox import own_tree
from tests.helpers import PASSWORD, ApiClient, Platform
from tests.test_workspaces import SANDBOX_NEEDS, environment_dir, launch, make_ws_platform, serving  # noqa: F401
from tests.test_workspaces_exits import browser_entry, served
from tests.workspace_helpers import build_test_environment, on_workspace, wait_state, workspace_host

LAB_PLUGINS = "@datalibrary/jupyterlab"


def _starting_workspace(platform: Platform, user: str) -> int:
    """A launch accepted but not carried out (the background task never ran)."""
    platform.as_user(user)  # creates the user
    with platform.db.session() as session:
        workspace = service.request_create(
            session, Principal.system("test"), platform.settings, product="open-notebook",
            instance_type="tiny", user=user,
        )  # fmt: skip
        return workspace.id


def _set_state(platform: Platform, workspace_id: int, state: str, reason: str) -> None:
    with platform.db.session() as session:
        workspace = session.get(Workspace, workspace_id)
        workspace.state, workspace.state_reason = state, reason
        session.commit()


def _console(platform: Platform, user: str) -> ApiClient:
    console = ApiClient(platform.app)
    assert console.post("/api/v1/auth/login", json={"name": user, "password": PASSWORD}).status_code == 200
    return console


def test_a_workspace_not_running_yet_gets_a_waiting_page_then_the_grant(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    platform = make_ws_platform("process")
    wid = _starting_workspace(platform, "alice")
    console = _console(platform, "alice")
    waiting = console.get(f"/workspaces/{wid}/lab", follow_redirects=False)
    assert waiting.status_code == 200, waiting.text
    assert waiting.headers["cache-control"] == "no-store"
    assert f"Workspace #{wid}" in waiting.text and 'data-state="starting"' in waiting.text
    assert "/static/workspace_opening.js" in waiting.text and "grant=" not in waiting.text
    assert console.get("/static/workspace_opening.js").status_code == 200
    # a failed launch says why on the same page (its script stops waiting then)
    _set_state(platform, wid, "failed", "the sandbox could not start: no space left")
    failed = console.get(f"/workspaces/{wid}/lab", follow_redirects=False)
    assert (
        failed.status_code == 200 and "no space left" in failed.text and 'data-state="failed"' in failed.text
    )
    # running: the grant, as for the card's Open JupyterLab
    _set_state(platform, wid, "running", "")
    entered = console.get(f"/workspaces/{wid}/lab", follow_redirects=False)
    assert entered.status_code == 303
    assert entered.headers["location"].startswith(f"http://{workspace_host(wid)}/_dl/enter?grant=")


def test_the_waiting_page_is_the_owners_only(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    platform = make_ws_platform("process")
    wid = _starting_workspace(platform, "alice")
    platform.as_user("mallory")
    mallory = _console(platform, "mallory")
    assert mallory.get(f"/workspaces/{wid}/lab", follow_redirects=False).status_code == 404
    # nor from another site (a link planted elsewhere does not start the hand-over)
    alice = _console(platform, "alice")
    planted = alice.get(
        f"/workspaces/{wid}/lab", headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False
    )
    assert planted.status_code == 403


def test_jupyterlab_loads_the_platforms_plugins_before_the_users(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    platform = served(make_ws_platform)
    staged = paths.staged_sdk(platform.settings)
    package = staged / paths.LABEXTENSIONS / LAB_PLUGINS / "package.json"
    build = json.loads(package.read_text())["jupyterlab"]["_build"]
    assert (package.parent / build["load"]).is_file() and build["extension"] == "./extension"
    command = jupyter.jupyter_command("python", "/run/j.sock", "/workspaces/1/", "/home", str(staged))
    assert f"--LabApp.extra_labextensions_path={staged / paths.LABEXTENSIONS}" in command
    # a user's extension of the same name does not replace the platform's
    client, wid = launch(platform, "alice")
    planted = paths.home_dir(platform.settings, wid) / ".local/share/jupyter/labextensions" / LAB_PLUGINS
    (planted / "static").mkdir(parents=True)
    (planted / "package.json").write_text(
        json.dumps(
            {"name": LAB_PLUGINS, "version": "9.9.9", "jupyterlab": {"_build": {"load": "static/x.js"}}}
        )
    )
    (planted / "static" / "x.js").write_text("window.replaced = true;")
    origin, cookies = browser_entry(platform, "alice", wid)
    page = on_workspace(origin, wid).get(f"/workspaces/{wid}/lab", cookies=cookies)
    assert page.status_code == 200, page.text
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    loaded = {e["name"]: e for e in config["federated_extensions"]}
    assert loaded[LAB_PLUGINS]["load"] == build["load"], loaded[LAB_PLUGINS]
    script = on_workspace(origin, wid).get(
        f"/workspaces/{wid}/lab/extensions/{LAB_PLUGINS}/{build['load']}", cookies=cookies
    )
    assert script.status_code == 200 and "launcher-on-restore" in script.text
    assert client is not None


PLANTED = "import pathlib; pathlib.Path(__file__).with_name('ran-{name}').write_text('x')\n"


def test_modules_planted_in_the_home_never_run_in_the_jupyterlab_server(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    """The server starts with the home as its working directory; started with ``-m`` Python
    would put that directory first on ``sys.path`` (ahead of the standard library), so a module
    the user leaves there would run in the server, before it drops the proxy's secret."""
    platform = served(make_ws_platform)
    client, wid = launch(platform, "alice")
    assert client.post(f"/api/v1/workspaces/{wid}/stop").status_code == 202
    wait_state(client, wid, "stopped", "failed", timeout=60)
    home = paths.home_dir(platform.settings, wid)
    for name in ("datalibrary_lab", "datalibrary_jupyter", "json"):
        (home / f"{name}.py").write_text(PLANTED.format(name=name))
    (home / "jupyterlab").mkdir()
    (home / "jupyterlab" / "__init__.py").write_text(PLANTED.format(name="jupyterlab"))
    assert client.post(f"/api/v1/workspaces/{wid}/start").status_code == 202
    wait_state(client, wid, "running", "failed", timeout=90)
    assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "running"
    assert sorted(p.name for p in home.glob("ran-*")) == []


def test_the_users_python_packages_never_shadow_the_servers(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    """``pip install --user`` writes to ~/.local, which is on the workspace's PYTHONPATH for
    kernels and terminals; the JupyterLab server itself must not import from there (another
    tornado there would break it; a sitecustomize.py would run in it)."""
    if not (sandbox_possible() and host_version()):
        pytest.skip(SANDBOX_NEEDS)
    platform = make_ws_platform("sandbox")
    with serving(platform):
        client, wid = launch(platform, "alice")
        assert client.post(f"/api/v1/workspaces/{wid}/stop").status_code == 202
        wait_state(client, wid, "stopped", "failed", timeout=60)
        home = paths.home_dir(platform.settings, wid)
        site = platform_services.python_site(build_test_environment(), str(home))
        assert site is not None
        user_site = Path(site)
        user_site.mkdir(parents=True)
        for name in ("sitecustomize", "tornado", "jupyter_server"):
            (user_site / f"{name}.py").write_text(PLANTED.format(name=name))
        own_tree(home / ".local", home.stat().st_uid)  # as the user's pip would have: markers can be written
        assert client.post(f"/api/v1/workspaces/{wid}/start").status_code == 202
        wait_state(client, wid, "running", "failed", timeout=90)
        assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "running"
        assert sorted(p.name for p in user_site.glob("ran-*")) == []
