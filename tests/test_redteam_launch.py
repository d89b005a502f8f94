"""Red-team attack tests on launching and entering workspaces: the waiting page, the grant,
Launch's tab and what the JupyterLab server runs from the user's home at start.

Each test is an attack; a failing test is a finding (its docstring says what and why)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from datalibrary.workspaces import paths, platform_services
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.models import Workspace
from datalibrary.workspaces.provisioners import sandbox_possible
from datalibrary.workspaces.sandbox import own_tree
from tests.helpers import ApiClient
from tests.test_workspaces import SANDBOX_NEEDS, environment_dir, launch, make_ws_platform, serving  # noqa: F401
from tests.test_workspaces_exits import browser_entry, served
from tests.test_workspaces_opening import _console, _set_state, _starting_workspace
from tests.workspace_helpers import build_test_environment, on_workspace, wait_state, workspace_host

# Runs in the JupyterLab server if the server reads the home's Jupyter configuration: it
# records the platform's proxy secret, from the environment (before datalibrary_jupyter pops
# it) or from that module (after), where a kernel of the same user can read it.
STEAL = """\
import os, pathlib, sys
secret = os.environ.get("DATALIBRARY_PROXY_SECRET", "")
module = sys.modules.get("datalibrary_jupyter")
if not secret and module is not None:
    secret = getattr(module, "_SECRET", "")
pathlib.Path.home().joinpath("stolen-{name}").write_text(secret or "ran")
"""


def _restart_with(platform, client, wid: int, plant) -> None:  # type: ignore[no-untyped-def]
    assert client.post(f"/api/v1/workspaces/{wid}/stop").status_code == 202
    wait_state(client, wid, "stopped", "failed", timeout=60)
    plant(paths.home_dir(platform.settings, wid))
    assert client.post(f"/api/v1/workspaces/{wid}/start").status_code == 202
    wait_state(client, wid, "running", "failed", timeout=90)


def test_jupyter_configuration_in_the_home_never_runs_in_the_server(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    """The server's HOME is the user's home and no JUPYTER_CONFIG_DIR is set, so jupyter_server
    loads ~/.jupyter/jupyter_server_config.py (and jupyter_lab_config.py) as Python, in the
    server, before or after it pops the proxy secret: either way the secret is in reach. A
    user (or anything that can write to the home: a notebook, a cloned repository, a
    dependency's post-install) gets the credential the platform's proxy uses, for the whole
    life of the workspace (it is derived from id and creation time, never rotated)."""
    if not (sandbox_possible() and host_version()):
        pytest.skip(SANDBOX_NEEDS)
    platform = make_ws_platform("sandbox")
    with serving(platform):
        client, wid = launch(platform, "alice")

        def plant(home):  # type: ignore[no-untyped-def]
            config = home / ".jupyter"
            config.mkdir(exist_ok=True)
            for name in ("jupyter_server_config", "jupyter_lab_config", "jupyter_config"):
                (config / f"{name}.py").write_text(STEAL.format(name=name))
            own_tree(config, home.stat().st_uid)  # as the user would have written them

        _restart_with(platform, client, wid, plant)
        assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "running"
        home = paths.home_dir(platform.settings, wid)
        with platform.db.session() as session:
            secret = paths.jupyter_token(platform.settings, session.get(Workspace, wid))
        stolen = {p.name: p.read_text() == secret for p in home.glob("stolen-*")}
        # on failure: {file: True} means the file holds the platform's proxy secret
        assert stolen == {}, f"planted Jupyter configuration ran in the server: {stolen}"


# --- the grant ------------------------------------------------------------------------------

REPLICA = """\
import os, sys, types
from pydantic import SecretStr
from datalibrary.db import Database
from datalibrary.workspaces import origin
settings = types.SimpleNamespace(secret_key=SecretStr(os.environ["KEY"]))
with Database(os.environ["DATABASE"]).session() as session:
    print(origin.redeem_grant(session, settings, int(sys.argv[1]), sys.argv[2]))
"""


def test_a_grant_is_redeemed_once_across_replicas(make_ws_platform, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    """The grant's "once" was a dictionary in the memory of the process that redeemed it
    (``origin._used``; now a table every replica shares). Replicas share the database and the
    keys (high availability, behind a load balancer), so a spent grant - in the browser's
    history, a proxy or access log, a screenshot - was redeemed again on any other replica
    within its 60 s, for a cookie that opens the victim's workspace as the victim. Here the
    second replica is a separate process running the same redemption code with the same key
    and database."""
    platform = make_ws_platform("process")
    wid = _starting_workspace(platform, "alice")
    _set_state(platform, wid, "running", "")
    console = _console(platform, "alice")
    opened = console.get(f"/workspaces/{wid}/lab", follow_redirects=False)
    assert opened.status_code == 303, opened.text
    grant_path = opened.headers["location"].split(workspace_host(wid), 1)[1]
    grant = grant_path.split("grant=", 1)[1]
    # replica A: the victim's browser redeems it (and a second try there is refused)
    entered = on_workspace(ApiClient(platform.app), wid).get(grant_path)
    assert entered.status_code == 200 and "dl_ws=" in entered.headers["set-cookie"]
    assert on_workspace(ApiClient(platform.app), wid).get(grant_path).status_code == 401
    # replica B: the attacker replays the spent grant
    script = tmp_path / "replica.py"
    script.write_text(REPLICA)
    key = platform.settings.secret_key.get_secret_value()
    replay = subprocess.run(  # noqa: S603
        [sys.executable, str(script), str(wid), urllib.parse.unquote(grant)],
        env={**os.environ, "KEY": key, "DATABASE": platform.settings.connect_url()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # on failure: the replica accepted the spent grant and would set a dl_ws cookie for this
    # console session (printed)
    assert replay.returncode != 0 and "already used" in replay.stderr, (
        f"a spent grant was redeemed again on another replica: session {replay.stdout.strip()!r}"
    )


# --- the waiting page -------------------------------------------------------------------------

HOSTILE = '<img src=x onerror="document.title=1">'


def test_a_reason_the_user_wrote_is_shown_as_text_on_the_waiting_page(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    """state_reason carries the tail of JupyterLab's log when a start fails, and what the
    user's code prints can end up there (a kernel is not the server, but the log is the
    workspace's). The waiting page (and the workspaces page) must show it as text."""
    platform = make_ws_platform("process")
    wid = _starting_workspace(platform, "alice")
    _set_state(platform, wid, "failed", f"the workspace exited while starting: {HOSTILE}")
    console = _console(platform, "alice")
    for address in (f"/workspaces/{wid}/lab", "/workspaces"):
        page = console.get(address, follow_redirects=False)
        assert page.status_code == 200, page.text
        assert HOSTILE not in page.text and "&lt;img src=x" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


# --- configuration files (no Python needed) ---------------------------------------------------

LAB_PLUGINS = "@datalibrary/jupyterlab"


def test_json_configuration_in_the_home_switches_no_platform_control(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    """The same root cause without any code: ~/.jupyter/jupyter_server_config.json turned off
    JupyterLab's XSRF check (the second lock, after the proxy's Origin check, on every
    state-changing browser request). The lab's page configuration in the home
    (labconfig/page_config.json) stays the user's: disabling an extension there, the
    platform's launcher plugin included, is JupyterLab's plugin manager at work and changes
    nothing but that user's own page (the plugin cannot be replaced from the home)."""
    platform = served(make_ws_platform)
    client, wid = launch(platform, "alice")

    def plant(home):  # type: ignore[no-untyped-def]
        (home / ".jupyter" / "labconfig").mkdir(parents=True, exist_ok=True)
        (home / ".jupyter" / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"disable_check_xsrf": True}})
        )
        (home / ".jupyter" / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {LAB_PLUGINS: True}})
        )

    _restart_with(platform, client, wid, plant)
    assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "running"
    origin, cookies = browser_entry(platform, "alice", wid)
    page = on_workspace(origin, wid)
    lab = page.get(f"/workspaces/{wid}/lab", cookies=cookies)
    assert lab.status_code == 200, lab.text
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', lab.text, re.S).group(1))  # type: ignore[union-attr]
    disabled = config.get("disabledExtensions", [])
    # same origin, no XSRF token: JupyterLab must refuse it (test_files_leave_only_through_review)
    here = f"http://{workspace_host(wid)}"
    put = page.put(
        f"/workspaces/{wid}/api/contents/planted.txt",
        json={"type": "file", "format": "text", "content": "x"},
        cookies={**cookies, **dict(lab.cookies)},
        headers={"Origin": here},
    )
    assert put.status_code == 403, f"a JSON file in the home switched XSRF off: PUT -> {put.status_code}"
    assert LAB_PLUGINS in disabled  # the user's own choice, still honoured


# --- the forwarder beside the server ------------------------------------------------------------

# Stands in for datalibrary.sdk.forward: the forwarder's parent is the JupyterLab server (the
# shell starts it in the background, then execs the server); read the server's environment
# before it makes itself non-dumpable.
FORWARDER = """\
import os, pathlib, time
found = "never readable"
for _ in range(4000):
    try:
        environ = pathlib.Path(f"/proc/{os.getppid()}/environ").read_bytes()
    except OSError as error:
        found = f"refused: {error}"
        break
    for item in environ.split(b"\\0"):
        if item.startswith(b"DATALIBRARY_PROXY_SECRET="):
            found = item.split(b"=", 1)[1].decode()
    if found != "never readable":
        break
    time.sleep(0.001)
pathlib.Path.home().joinpath("stolen-forwarder").write_text(found)
"""


@pytest.mark.parametrize("planted", ["module", "sitecustomize"])
def test_nothing_from_the_home_runs_beside_the_server_while_it_holds_the_secret(
    make_ws_platform,  # noqa: F811
    planted: str,
) -> None:  # type: ignore[no-untyped-def]
    """The package-mirror forwarder starts with the server as ``python -m
    datalibrary.sdk.forward`` in the home: ``-m`` puts the home first on ``sys.path`` (the
    very thing 73d6dfd removed from the server's own command), so ~/datalibrary/sdk/forward.py
    runs instead. It starts in the same instant as the server, as its child, and reads
    /proc/<server>/environ - the proxy secret - before the server imports
    datalibrary_jupyter and turns non-dumpable. (Unsetting the variable for the forwarder does
    not help: the secret is in its parent's environment block.)"""
    if not (sandbox_possible() and host_version()):
        pytest.skip(SANDBOX_NEEDS)
    platform = make_ws_platform("sandbox")
    with serving(platform):
        client, wid = launch(platform, "alice")

        def plant(home):  # type: ignore[no-untyped-def]
            if planted == "module":  # found first, through "-m" and the working directory
                package = home / "datalibrary" / "sdk"
                package.mkdir(parents=True)
                (home / "datalibrary" / "__init__.py").write_text("")
                (package / "__init__.py").write_text("")
                (package / "forward.py").write_text(FORWARDER)
                own_tree(home / "datalibrary", home.stat().st_uid)
            else:  # pip install --user's site, on the forwarder's PYTHONPATH (it runs without -E)
                site = Path(platform_services.python_site(build_test_environment(), str(home)) or "")
                site.mkdir(parents=True)
                (site / "sitecustomize.py").write_text(FORWARDER)
                own_tree(home / ".local", home.stat().st_uid)

        _restart_with(platform, client, wid, plant)
        assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "running"
        home = paths.home_dir(platform.settings, wid)
        for _ in range(50):
            if (home / "stolen-forwarder").exists():
                break
            time.sleep(0.1)
        with platform.db.session() as session:
            secret = paths.jupyter_token(platform.settings, session.get(Workspace, wid))
        found = (home / "stolen-forwarder").read_text() if (home / "stolen-forwarder").exists() else None
        # on failure: True means the planted forwarder holds the platform's proxy secret
        assert found is None, (
            f"planted forwarder ran; it read the proxy secret: {found == secret} ({found[:40]!r})"
        )


# --- one workspace's origin against another's -------------------------------------------------


def test_another_workspace_cannot_file_export_requests_in_a_visitors_name(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    """ws-M.<app_domain> and ws-K.<app_domain> are one *site*: SameSite=Strict keeps dl_ws from
    other sites, not from another workspace. A browser GET of files/... as a document (or with
    ?download) is not served but turned into an export request - a state change on GET, with
    no Origin check (GET is "safe"). So a page on workspace M (a notebook or labextension from
    a colleague's repository, opened in the person's other workspace) navigates to
    ws-K/workspaces/K/files/<anything>, and the platform files an export request of K's file
    in that person's name ("browser download by ..."), for a steward to review. (An
    administrator under admin access is refused: it is not their workspace.) Chromium sends
    these headers for such a navigation (same-site, document)."""
    platform = served(make_ws_platform)
    owner, wid = launch(platform, "alice")
    (paths.home_dir(platform.settings, wid) / "result.csv").write_text("USUBJID,AGE\nS1,40\n")
    origin, cookies = browser_entry(platform, "alice", wid)  # alice has been in K today
    before = {e["id"] for e in owner.get("/api/v1/exports").json()}
    navigation = {  # a top-level navigation started by a page on ws-M (Referrer-Policy: no-referrer)
        "Sec-Fetch-Site": "same-site",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    }
    response = on_workspace(origin, wid).get(
        f"/workspaces/{wid}/files/result.csv", cookies=cookies, headers=navigation
    )
    created = [e for e in owner.get("/api/v1/exports").json() if e["id"] not in before]
    assert (response.status_code, created) == (403, []), (
        f"a same-site navigation filed an export request: HTTP {response.status_code} "
        f"{response.text[-160:]!r}"
    )
