"""JupyterLab's own front-end files are answered by the platform from the read-only
environment (``workspaces.lab_static``): on the shared static origin (public files, one
browser cache for every workspace) and on a workspace's origin only with its cookie; never
anything outside a built environment's ``static/lab`` folder; anything else still goes
through the proxy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datalibrary.workspaces import lab_static, origin
from datalibrary.workspaces.models import Workspace
from tests.helpers import ApiClient
from tests.test_workspaces import environment_dir, launch, make_ws_platform  # noqa: F401
from tests.test_workspaces_exits import browser_entry, served
from tests.workspace_helpers import on_workspace


@pytest.mark.parametrize(
    "path",
    [
        "static/lab/../../../etc/passwd",
        "static/lab/..",
        "static/lab/sub/file.js",
        "static/lab/.hidden.js",
        "static/lab/",
        "static/labx/main.js",
        "lab/static/main.js",
        "static/lab/a%2Fb.js",
        "static/lab/" + "a" * 300 + ".js",
    ],
)
def test_only_flat_names_under_static_lab_are_assets(path: str) -> None:
    assert lab_static.asset_name(path) is None


def test_reads_regular_files_only_and_keeps_them(tmp_path: Path) -> None:
    (tmp_path / "main.abc.js").write_text("console.log(1)")
    (tmp_path / "secret").write_text("not for the browser")
    (tmp_path / "link.js").symlink_to(tmp_path / "secret")
    (tmp_path / "folder.js").mkdir()
    found = lab_static.read(tmp_path, "main.abc.js")
    assert found == (b"console.log(1)", "text/javascript; charset=utf-8")
    (tmp_path / "main.abc.js").write_text("changed on disk")  # content-hashed names never change
    assert lab_static.read(tmp_path, "main.abc.js") == found
    assert lab_static.read(tmp_path, "link.js") is None
    assert lab_static.read(tmp_path, "folder.js") is None
    assert lab_static.read(tmp_path, "missing.js") is None


def test_the_page_is_pointed_at_the_static_origin_only_for_the_environments_own_build(tmp_path: Path) -> None:
    (tmp_path / "main.0123abcd.js").write_text("main")
    base, shared = "/workspaces/7/", "http://static.ws.localhost:8000/lab/python-abc"
    page = (
        b'<script id="jupyter-config-data" type="application/json">{"baseUrl": "/workspaces/7/", '
        b'"fullStaticUrl": "/workspaces/7/static/lab", "x": 1}</script>'
        b'<script defer="defer" src="/workspaces/7/static/lab/main.0123abcd.js?v=0123abcd"></script>'
    )
    pointed = lab_static.point_page_at(page, base, shared, tmp_path)
    assert b'"fullStaticUrl": "http://static.ws.localhost:8000/lab/python-abc"' in pointed
    assert b'src="http://static.ws.localhost:8000/lab/python-abc/main.0123abcd.js?v=0123abcd"' in pointed
    assert b"/workspaces/7/static/lab" not in pointed and b'"baseUrl": "/workspaces/7/"' in pointed
    # a lab the user rebuilt (another main script) keeps its own files
    rebuilt = page.replace(b"main.0123abcd.js", b"main.ffff0000.js")
    assert lab_static.point_page_at(rebuilt, base, shared, tmp_path) == rebuilt
    # a page that does not look like JupyterLab's is left alone
    assert lab_static.point_page_at(b"<p>hello</p>", base, shared, tmp_path) == b"<p>hello</p>"


def test_lab_assets_come_from_the_environment_with_this_origins_cookie(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    platform = served(make_ws_platform)
    try:
        _check_lab_assets(platform)
    finally:
        for server in reversed(platform._servers):  # type: ignore[attr-defined]
            server.__exit__(None, None, None)


def _check_lab_assets(platform) -> None:  # type: ignore[no-untyped-def]
    client, wid = launch(platform, "alice")
    page, cookies = browser_entry(platform, "alice", wid)
    ws = on_workspace(page, wid)
    with platform.db.session() as session:
        directory = lab_static.static_dir(platform.settings, session.get(Workspace, wid))
    name = next(p.name for p in sorted(directory.glob("*.js")) if p.stat().st_size > 10_000)
    # before a full check has let this browser in, the file comes through the proxy from
    # JupyterLab's own static handler (which sends Last-Modified)
    through = ws.get(f"/workspaces/{wid}/static/lab/{name}", cookies=cookies)
    assert through.status_code == 200 and "last-modified" in through.headers
    lab = ws.get(f"/workspaces/{wid}/lab", cookies=cookies)
    assert lab.status_code == 200
    key = directory.parents[4].name
    shared = f"http://static.ws.localhost/lab/{key}"
    assert f'"fullStaticUrl": "{shared}"' in lab.text and f'src="{shared}/main.' in lab.text
    assert "script-src" not in lab.headers["content-security-policy"]  # default-src covers it:
    assert "default-src 'self' http://static.ws.localhost:* " in lab.headers["content-security-policy"]
    # the platform's server writes Date and Server; the workspace's are not passed on as second ones
    assert "date" not in lab.headers and "Tornado" not in lab.headers.get("server", "")
    asset = ws.get(f"/workspaces/{wid}/static/lab/{name}", cookies=cookies)
    assert asset.status_code == 200 and asset.content == (directory / name).read_bytes()
    assert asset.headers["cache-control"] == lab_static.IMMUTABLE
    assert "last-modified" not in asset.headers  # not JupyterLab's static handler: answered from memory
    assert "connect-src 'self'" in asset.headers["content-security-policy"]
    # without this origin's cookie, or with a forged or another workspace's one: the proxy's
    # own check refuses it as it refuses everything else
    stranger = on_workspace(ApiClient(platform.app), wid)
    stranger.client.http.cookies.clear()
    assert stranger.get(f"/workspaces/{wid}/static/lab/{name}").status_code == 401
    forged = {"dl_ws": cookies["dl_ws"][:-4] + "0000"}
    assert stranger.get(f"/workspaces/{wid}/static/lab/{name}", cookies=forged).status_code == 401
    other = {"dl_ws": origin.cookie_value(platform.settings, wid + 1, "some-session")}
    assert stranger.get(f"/workspaces/{wid}/static/lab/{name}", cookies=other).status_code == 401
    # the same cookie does not open another workspace's origin
    assert on_workspace(page, wid + 1).get(
        f"/workspaces/{wid + 1}/static/lab/{name}", cookies=cookies
    ).status_code in (401, 404)  # noqa: E501
    # a file the environment does not have goes through the proxy (JupyterLab answers 404)
    assert ws.get(f"/workspaces/{wid}/static/lab/no-such-file.js", cookies=cookies).status_code == 404
    # a dot segment never reaches the file system or JupyterLab
    assert ws.get(
        f"/workspaces/{wid}/static/lab/%2E%2E/%2E%2E/package.json", cookies=cookies
    ).status_code in (400, 404, 422)  # noqa: E501
    # the static origin: the same public files for anyone, no cookie; nothing else
    static = ApiClient(platform.app)
    static.http.cookies.clear()

    def fetch(path: str, method: str = "GET"):  # type: ignore[no-untyped-def]
        return static.request(method, path, headers={"Host": "static.ws.localhost"})

    shared_asset = fetch(f"/lab/{key}/{name}")
    assert shared_asset.status_code == 200 and shared_asset.content == (directory / name).read_bytes()
    assert shared_asset.headers["access-control-allow-origin"] == "*"
    assert shared_asset.headers["cache-control"] == lab_static.IMMUTABLE
    assert shared_asset.headers["content-security-policy"].startswith("default-src 'none'")
    assert fetch(f"/lab/{key}/{name}", "HEAD").status_code == 200
    assert fetch(f"/lab/{key}/{name}", "POST").status_code == 405
    half_built = directory.parents[5] / f"half-built-{wid}"
    (half_built / "venv/share/jupyter/lab/static").mkdir(parents=True, exist_ok=True)
    (half_built / "venv/share/jupyter/lab/static" / name).write_text("x")
    try:
        assert fetch(f"/lab/{half_built.name}/{name}").status_code == 404  # not built: no .ready
    finally:
        shutil.rmtree(half_built)
    for path in (
        f"/lab/{key}/no-such-file.js",
        f"/lab/{key}/../../../.ready",
        f"/lab/{key}/%2E%2E%2F%2E%2E%2Fvenv%2Fpyvenv.cfg",
        f"/lab/..%2F{key}/{name}",
        f"/lab/{key}",
        f"/workspaces/{wid}/lab",  # never a workspace, never the console
        "/api/v1/me",
        "/",
    ):
        assert fetch(path).status_code == 404, path
    # writes are never answered from memory
    post = ws.post(
        f"/workspaces/{wid}/static/lab/{name}", cookies=cookies, headers={"Origin": "http://evil.example"}
    )
    assert post.status_code == 403
