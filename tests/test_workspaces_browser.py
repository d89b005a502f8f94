"""A scientist's whole notebook journey in Chromium, and what workspace content can do to the
console (nothing): real sandbox (or process), real JupyterLab, real lake, real browser.

Workspaces are served on their own origin (ws-N.ws.localhost:<port>), the console on
127.0.0.1:<port>; the tests wait for JupyterLab's launcher to render, then type code into a
notebook cell and wait for its output: the kernel's WebSocket, JupyterLab's XSRF check and the
workspace-origin cookie all take part. Python (the SDK) and R (``library(datalibrary)``), on a
platform already in use and on a brand-new state directory (what the first ``make up`` makes)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from datalibrary.workspaces import paths
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.provisioners import sandbox_possible
from tests.helpers import PASSWORD, LiveServer, Platform, make_platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.workspace_helpers import CATALOG, R_ENVIRONMENT, UnixServer, build_test_environment

pytestmark = pytest.mark.browser
PROVISIONER = os.environ.get("DL_TEST_WS_PROVISIONER") or (
    "sandbox" if sandbox_possible() and host_version() else "process"
)
PRODUCT = "notebook" if PROVISIONER == "sandbox" else "open-notebook"
R_PRODUCT = "r-notebook" if PROVISIONER == "sandbox" else "open-r-notebook"
# the process backend isolates nothing, so only products that require nothing run on it
BROWSER_CATALOG = (
    CATALOG
    + "  - {name: open-r-notebook, environment: r, instance_types: [tiny], roles: [scientist],"
    + " requires: []}\n"
)


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(BROWSER_CATALOG)
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


def open_lab(context, page, rendered: str = ".jp-Launcher"):  # type: ignore[no-untyped-def]
    """Click 'Open JupyterLab' and wait until JupyterLab has rendered ``rendered`` (its
    launcher on a first visit; JupyterLab restores the last layout on later ones)."""
    with context.expect_page() as opened:
        page.locator(".workspace").first.locator("a", has_text="Open JupyterLab").click()
    lab = opened.value
    lab.wait_for_selector(rendered, timeout=240_000)
    return lab


def state_is(page, state: str, timeout: float = 90_000) -> None:  # type: ignore[no-untyped-def]
    page.locator(".workspace").first.locator(".state", has_text=state).wait_for(timeout=timeout)


def launch(context, page, url: str, product: str):  # type: ignore[no-untyped-def]
    """Click Launch as a person does ("open JupyterLab when it is ready" is the default): the
    new tab waits on the console until the workspace runs, then enters it on its own origin;
    returns that tab once JupyterLab's launcher shows a notebook card."""
    page.goto(f"{url}/workspaces")
    page.select_option("#product", product)
    page.select_option("#instance-type", "tiny")
    assert page.locator("#open-when-ready").is_checked()
    with context.expect_page() as opened:
        page.click("#launch")
    lab = opened.value
    lab.wait_for_selector('.jp-Launcher .jp-LauncherCard[data-category="Notebook"]', timeout=240_000)
    # the tab cannot reach back to the console, and the platform's JupyterLab plugins loaded
    assert lab.evaluate("window.opener") is None
    assert lab.evaluate("Object.keys(window._JUPYTERLAB)").count("@datalibrary/jupyterlab") == 1
    state_is(page, "running", timeout=60_000)
    return lab


def new_notebook(lab, kernel: str):  # type: ignore[no-untyped-def]
    """A notebook from the launcher card of ``kernel`` (its display name); waits for its kernel."""
    label = lab.locator(".jp-LauncherCard-label", has_text=re.compile(rf"^\s*{re.escape(kernel)}\s*$"))
    card = lab.locator('.jp-LauncherCard[data-category="Notebook"]').filter(has=label)
    try:
        card.first.wait_for(timeout=30_000)
    except Exception as exc:
        cards = lab.locator('.jp-LauncherCard[data-category="Notebook"]').all_text_contents()
        raise AssertionError(f"no notebook card for kernel {kernel!r}; the launcher offers {cards}") from exc
    card.first.click()
    lab.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=60_000)
    kernel_idle(lab)


def kernel_idle(lab, timeout: float = 120_000) -> None:  # type: ignore[no-untyped-def]
    """Until the status bar says the notebook's kernel is connected and idle ("Python 3
    (ipykernel) | Idle"); before that JupyterLab drops a run request without a word."""
    status = lab.get_by_title(re.compile(r"^Change kernel for")).filter(has_text=re.compile(r"\| Idle$"))
    status.first.wait_for(timeout=timeout)


def run_cell(lab, code: str, expect: str, timeout: float = 120_000) -> None:  # type: ignore[no-untyped-def]
    """Type ``code`` into the notebook's last cell, run it (Shift+Enter) and wait until an
    output holding ``expect`` is shown: the browser's kernel WebSocket did the work."""
    editor = lab.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").last
    editor.click()
    lab.keyboard.type(code)
    lab.keyboard.press("Shift+Enter")
    output = lab.locator(".jp-NotebookPanel:visible .jp-OutputArea-output", has_text=expect)
    try:
        output.first.wait_for(timeout=timeout)
    except Exception as exc:
        shown = lab.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").all_text_contents()
        prompts = lab.locator(".jp-NotebookPanel:visible .jp-InputPrompt").all_text_contents()
        raise AssertionError(
            f"no output with {expect!r} after running {code!r}; shown: {shown} {prompts}"
        ) from exc


def save(lab, notebook: Path, expect: str, timeout: float = 30) -> dict:  # type: ignore[no-untyped-def]
    """Save (Ctrl+S, a PUT through the proxy) and wait until the file in the workspace's home
    holds ``expect``; the notebook as saved."""
    import time

    lab.keyboard.press("Control+s")
    deadline = time.monotonic() + timeout
    while True:
        dialog = lab.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
        if dialog.count():  # JupyterLab offers a rename at the first save: keep the name
            dialog.first.click()
        text = notebook.read_text() if notebook.exists() else ""
        if expect in text:
            return json.loads(text)
        assert time.monotonic() < deadline, f"{notebook.name} was not saved with {expect!r}: {text[:500]}"
        time.sleep(0.2)


PYTHON_CELL = (
    "from datalibrary.sdk import connect; "
    "print('visible rows:', connect().sql('SELECT count(*) AS n FROM cdisc.dm').rows()[0][0])"
)
R_CELL = (
    "library(datalibrary); frame <- dl_sql('SELECT siteid, count(*) AS n FROM cdisc.dm GROUP BY siteid'); "
    "cat('R frame:', class(frame), nrow(frame), 'site', frame[[1]][1], 'n', frame[[2]][1])"
)


def test_notebook_journey_in_a_real_browser(browser, served) -> None:  # type: ignore[no-untyped-def]
    platform, url = served
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page = sign_in(context, url, "sci")
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    lab = launch(context, page, url, PRODUCT)
    # JupyterLab runs on the workspace's own origin, not the console's
    assert lab.url.startswith("http://ws-1.ws.localhost:"), lab.url
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
    # a notebook from the launcher (a POST through the proxy: the Origin and JupyterLab's XSRF
    # checks passed); a cell queries the lake through the SDK, the grant's row filter applies
    new_notebook(lab, "Python 3 (ipykernel)")
    run_cell(lab, PYTHON_CELL, "visible rows: 2")
    notebook = paths.home_dir(platform.settings, 1) / "Untitled.ipynb"
    saved = save(lab, notebook, "visible rows: 2")
    assert "visible rows: 2" in json.dumps(saved["cells"][0]["outputs"])
    # pause and resume with the page open: the kernel is frozen, not restarted (its state stays)
    run_cell(lab, "kept = 41; print('kept', kept)", "kept 41")
    page.bring_to_front()
    page.locator(".workspace").first.locator("button", has_text="Pause").click()
    state_is(page, "paused")
    page.locator(".workspace").first.locator("button", has_text="Resume").click()
    state_is(page, "running")
    lab.bring_to_front()
    run_cell(lab, "print('after resume', kept + 1)", "after resume 42")
    save(lab, notebook, "after resume 42")
    lab.close()
    # stop, start: the notebook is kept, and runs again in a new kernel
    page.locator(".workspace").first.locator("button", has_text="Stop").click()
    state_is(page, "stopped")
    page.locator(".workspace").first.locator("button", has_text="Start").click()
    state_is(page, "running")
    # JupyterLab reopens the notebook it had open, with the outputs that were saved
    lab = open_lab(context, page, '.jp-NotebookPanel .jp-OutputArea-output:has-text("after resume 42")')
    # the restored layout has the notebook open: no launcher is added over it
    assert lab.locator(".jp-Launcher").count() == 0
    kernel_idle(lab)
    run_cell(lab, "print('new kernel knows kept:', 'kept' in dir())", "new kernel knows kept: False")
    lab.close()
    # terminate
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".workspace").first.locator("button", has_text="Terminate").click()
    page.locator(".workspace").wait_for(state="detached", timeout=60_000)
    assert errors == [], errors
    context.close()


def test_r_notebook_queries_the_lake_in_a_real_browser(browser, served) -> None:  # type: ignore[no-untyped-def]
    from datalibrary.workspaces.environments import build, r_available

    if not r_available():
        pytest.skip("R with IRkernel is needed (apt-get install r-base-core r-cran-irkernel)")
    build(build_test_environment().parent, R_ENVIRONMENT, python="/usr/bin/python3")  # once per machine
    platform, url = served
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page = sign_in(context, url, "sci")
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    lab = launch(context, page, url, R_PRODUCT)
    new_notebook(lab, "R")
    # the R client preconfigured like the SDK: same socket, same token, the grant's row filter
    run_cell(lab, R_CELL, "R frame: data.frame 1 site 701 n 2")
    lab.close()
    with platform.db.session() as session:
        from sqlalchemy import select

        from datalibrary.query.models import QueryRecord

        records = session.scalars(select(QueryRecord).where(QueryRecord.user == "sci")).all()
        assert any("GROUP BY siteid" in r.sql for r in records), [r.sql for r in records]
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".workspace").first.locator("button", has_text="Terminate").click()
    page.locator(".workspace").wait_for(state="detached", timeout=60_000)
    assert errors == [], errors
    context.close()


def test_a_refused_launch_closes_its_tab_and_opting_out_is_remembered(browser, served) -> None:  # type: ignore[no-untyped-def]
    platform, url = served
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = sign_in(context, url, "sci")
    page.goto(f"{url}/workspaces")
    page.select_option("#product", PRODUCT)
    page.select_option("#instance-type", "tiny")
    page.fill("#project", "no-such-project")
    with context.expect_page() as opened:
        page.click("#launch")
    tab = opened.value
    error = page.locator("#launch-error")
    error.wait_for(timeout=30_000)
    assert "no project named 'no-such-project'" in (error.text_content() or "")
    for _ in range(100):  # the tab opened for it is closed again
        if tab.is_closed():
            break
        page.wait_for_timeout(100)
    assert tab.is_closed()
    # unticked, a launch opens no tab; the choice holds on the next visit
    page.uncheck("#open-when-ready")
    page.reload()
    assert not page.locator("#open-when-ready").is_checked()
    page.select_option("#product", PRODUCT)
    page.select_option("#instance-type", "tiny")
    page.click("#launch")
    state_is(page, "running", timeout=240_000)
    assert context.pages == [page]
    context.close()


@pytest.fixture
def fresh_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A brand-new state directory, started as the first ``datalibrary up`` does: settings
    loaded before ``init`` made the secret key, no template database."""
    from datalibrary.app import create_app
    from datalibrary.auth import service as auth_service
    from datalibrary.auth.permissions import Principal
    from datalibrary.bootstrap import initialize
    from datalibrary.config import Settings
    from datalibrary.db import Database

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(BROWSER_CATALOG)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CATALOG", str(catalog))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", PROVISIONER)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR", str(build_test_environment().parent))
    monkeypatch.delenv("DATALIBRARY_SECRET_KEY", raising=False)
    settings = Settings(home=tmp_path / "brand-new", database_url=f"sqlite:///{tmp_path / 'state.db'}")
    assert settings.secret_key is None and not settings.home.exists()
    db = Database(settings.connect_url())
    initialize(settings, db)
    with db.session() as session:
        auth_service.create_user(
            session, Principal.system("test"), "sci", roles={"scientist"}, password=PASSWORD
        )
    app = create_app(settings, db)
    try:
        with UnixServer(app, paths.api_socket(settings)), LiveServer(app) as server:
            yield settings, db, server.url
    finally:
        from sqlalchemy import select

        from datalibrary.workspaces import service
        from datalibrary.workspaces.models import Workspace
        from datalibrary.workspaces.sync import run_sync

        with db.session() as session:
            for row in session.scalars(select(Workspace).where(Workspace.state != "terminated")):
                run_sync(service.build_provisioner(settings, row).stop())
        db.dispose()


def test_first_launch_on_a_brand_new_state_directory(browser, fresh_served) -> None:  # type: ignore[no-untyped-def]
    settings, _, url = fresh_served
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page = sign_in(context, url, "sci")
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    lab = launch(context, page, url, PRODUCT)
    assert lab.url.startswith("http://ws-1.ws.localhost:"), lab.url
    new_notebook(lab, "Python 3 (ipykernel)")
    run_cell(
        lab,
        "from datalibrary.sdk import connect; print('signed in as', connect().me()['name'])",
        "signed in as sci",
    )
    lab.close()
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
