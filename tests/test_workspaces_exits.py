"""Attack tests for how things leave (or enter) a workspace and who pays (issue #21):
API tokens never read workspace files; browser requests must come from the workspace's own
origin; uploads are audited; downloads become export requests; disabling a user stops their
workspaces and revokes every token; launching checks project membership for everyone."""

from __future__ import annotations

import base64
import re

from datalibrary.auth import projects
from datalibrary.auth.models import ApiToken
from datalibrary.auth.permissions import Principal
from datalibrary.workspaces import paths
from datalibrary.workspaces.models import Workspace
from tests.helpers import PASSWORD, ApiClient, Platform
from tests.test_workspaces import client_of, environment_dir, launch, make_ws_platform  # noqa: F401
from tests.workspace_helpers import UnixServer, on_workspace, wait_state, workspace_host


def served(make_ws_platform):  # type: ignore[no-untyped-def]  # noqa: F811, E501
    from tests.helpers import LiveServer

    platform = make_ws_platform("process")
    unix = UnixServer(platform.app, paths.api_socket(platform.settings)).__enter__()
    live = LiveServer(platform.app).__enter__()
    platform.live_url = live.url  # type: ignore[attr-defined]
    platform._servers = (unix, live)  # type: ignore[attr-defined]
    return platform


def browser_entry(platform: Platform, user: str, workspace_id: int) -> tuple[ApiClient, dict[str, str]]:
    """Sign in to the console, open the workspace: follow the grant to the workspace origin and
    return the cookies a browser would hold there."""
    console = ApiClient(platform.app)
    assert console.post("/api/v1/auth/login", json={"name": user, "password": PASSWORD}).status_code == 200
    opened = console.get(f"/workspaces/{workspace_id}/open", follow_redirects=False)
    assert opened.status_code == 303, opened.text
    target = opened.headers["location"]
    assert target.startswith(f"http://{workspace_host(workspace_id)}/_dl/enter?grant=")
    grant_path = target.split(workspace_host(workspace_id), 1)[1]
    origin = ApiClient(platform.app)
    origin.http.cookies.clear()
    entered = on_workspace(origin, workspace_id).get(grant_path)
    assert entered.status_code == 200, entered.text
    set_cookie = entered.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie.replace("Strict", "strict")
    cookie = re.match(r"dl_ws=([^;]+)", set_cookie).group(1)  # type: ignore[union-attr]
    # the grant works once
    assert on_workspace(ApiClient(platform.app), workspace_id).get(grant_path).status_code == 401
    return origin, {"dl_ws": cookie}


def test_files_leave_only_through_review(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    platform = served(make_ws_platform)
    client, wid = launch(platform, "alice")
    (paths.home_dir(platform.settings, wid) / "result.csv").write_text("USUBJID,AGE\nS1,40\n")
    ws = on_workspace(client, wid)
    # a plain API token reads no file, by any route
    for path in ("files/result.csv", "api/contents/result.csv", "view/result.csv", "nbconvert/html/x.ipynb"):
        response = ws.get(f"/workspaces/{wid}/{path}")
        assert response.status_code == 403, (path, response.status_code)
    assert ws.put(f"/workspaces/{wid}/api/contents/in.csv", json={"type": "file"}).status_code == 403
    # the browser: the console's cookie is never valid here; the workspace origin's is
    origin, cookies = browser_entry(platform, "alice", wid)
    page = on_workspace(origin, wid)
    lab = page.get(f"/workspaces/{wid}/lab", cookies=cookies)
    assert lab.status_code == 200 and '"token": ""' in lab.text
    xsrf = lab.cookies.get("_xsrf") or re.search(r"_xsrf=([^;]+)", lab.headers.get("set-cookie", "")).group(1)  # type: ignore[union-attr]
    jar = {**cookies, "_xsrf": xsrf}
    here = f"http://{workspace_host(wid)}"
    body = {"type": "file", "format": "base64", "content": base64.b64encode(b"SITE,COUNT\nx,123\n").decode()}
    # cross-site (another origin, or none at all) is refused before JupyterLab sees it
    for headers in ({"Origin": "http://evil.example"}, {}, {"Origin": "http://127.0.0.1:8000"}):
        put = page.put(f"/workspaces/{wid}/api/contents/in.csv", json=body, cookies=jar, headers=headers)
        assert put.status_code == 403, (headers, put.status_code)
    # same origin but without JupyterLab's XSRF token: JupyterLab's own check refuses it
    put = page.put(f"/workspaces/{wid}/api/contents/in.csv", json=body, cookies=jar, headers={"Origin": here})
    assert put.status_code == 403
    # a genuine upload from the page works and is audited (who, file, size, hash)
    headers = {"Origin": here, "X-XSRFToken": xsrf}
    put = page.put(f"/workspaces/{wid}/api/contents/in.csv", json=body, cookies=jar, headers=headers)
    assert put.status_code in (200, 201), put.text
    with platform.db.session() as session:
        from sqlalchemy import select

        from datalibrary.audit.models import AuditEvent

        uploads = session.scalars(select(AuditEvent).where(AuditEvent.action == "workspace.upload")).all()
        assert [(e.actor, e.details["path"]) for e in uploads][-1] == ("alice", "in.csv")
        assert len(uploads[-1].details["sha256"]) == 64
    # a download from the browser becomes an export request, never the bytes
    download = page.get(f"/workspaces/{wid}/files/result.csv?download=1", cookies=cookies)
    assert "S1,40" not in download.text and "airlock" in download.text
    # the console's origin serves no JupyterLab at all
    assert client.get(f"/workspaces/{wid}/api/status").status_code != 200
    for server in reversed(platform._servers):  # type: ignore[attr-defined]
        server.__exit__(None, None, None)


def test_disabling_a_user_stops_workspaces_and_revokes_every_token(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    platform = served(make_ws_platform)
    client, wid = launch(platform, "alice")
    with platform.db.session() as session:
        token_id = session.get(Workspace, wid).token_id
    platform.add_user("boss", "admin")
    admin = platform.as_user("boss")
    assert admin.post("/api/v1/users/alice/disable").status_code == 200
    assert wait_state(admin, wid, "stopped")["state_reason"] == "owner disabled"
    assert paths.home_dir(platform.settings, wid).exists()  # the home is kept
    with platform.db.session() as session:
        from sqlalchemy import select

        tokens = session.scalars(
            select(ApiToken).where(ApiToken.user_id == session.get(Workspace, wid).owner_id)
        )
        assert all(t.revoked_at is not None for t in tokens)
        assert session.get(ApiToken, token_id).revoked_at is not None
    # enabling again brings no old secret back
    assert admin.post("/api/v1/users/alice/enable").status_code == 200
    assert client.get("/api/v1/me").status_code == 401
    for server in reversed(platform._servers):  # type: ignore[attr-defined]
        server.__exit__(None, None, None)


def test_launch_checks_project_membership_for_everyone(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    platform = make_ws_platform("process")
    with platform.db.session() as session:
        projects.create_project(session, Principal.system("test"), "cardio")
    platform.add_user("boss", "admin")
    body = {"product": "open-notebook", "instance_type": "tiny"}
    # a user in no project cannot bill one, an unknown project is refused, admins included
    alice = platform.as_user("alice")
    assert alice.post("/api/v1/workspaces", json={**body, "project": "cardio"}).status_code == 403
    assert alice.post("/api/v1/workspaces", json={**body, "project": "nowhere"}).status_code == 422
    admin = platform.as_user("boss")
    assert admin.post("/api/v1/workspaces", json={**body, "project": "cardio"}).status_code == 403
    assert admin.post("/api/v1/workspaces", json={**body, "project": "nowhere"}).status_code == 422
    assert (
        admin.post("/api/v1/workspaces", json={**body, "project": "cardio", "user": "alice"}).status_code
        == 403
    )
    with platform.db.session() as session:
        assert session.query(Workspace).count() == 0


# Canaries planted in files brought into a workspace from outside (issue #21).
CANARY_SSN, CANARY_MAIL, CANARY_MRN = "987-65-4329", "zebulon.quackenbush@example.org", "MRN0049217733"
CANARY_NAME = "Dr. Zebulon Quackenbush"


def _parquet_bytes(columns: dict[str, list[object]]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def _zip_bytes(name: str, data: bytes) -> bytes:
    import io
    import zipfile

    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        archive.writestr(name, data)
    return sink.getvalue()


def test_uploads_are_scanned_like_ingestion(make_ws_platform) -> None:  # type: ignore[no-untyped-def]  # noqa: F811, E501
    from sqlalchemy import select

    from datalibrary.audit.models import AuditEvent

    platform = served(make_ws_platform)
    client, wid = launch(platform, "alice")
    origin, cookies = browser_entry(platform, "alice", wid)
    page = on_workspace(origin, wid)
    lab = page.get(f"/workspaces/{wid}/lab", cookies=cookies)
    xsrf = lab.cookies.get("_xsrf") or re.search(r"_xsrf=([^;]+)", lab.headers.get("set-cookie", "")).group(1)  # type: ignore[union-attr]
    jar = {**cookies, "_xsrf": xsrf}
    headers = {"Origin": f"http://{workspace_host(wid)}", "X-XSRFToken": xsrf}
    home = paths.home_dir(platform.settings, wid)

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    rows = "".join(f"{i},{40 + i}\n" for i in range(200))
    deep = b64(f"CODE,N\n{rows}{CANARY_SSN},1\n".encode())
    table = b64(_parquet_bytes({"ID": ["a"], "V": [CANARY_SSN]}))
    last_chunk = b64(f"{CANARY_SSN},2\n".encode())
    attacks = {
        # values that look identifying under an innocent header, deep in the file
        "codes.csv": {"type": "file", "format": "base64", "content": deep},
        # an identifying column name
        "list.tsv": {"type": "file", "format": "text", "content": "PATIENT_NAME\tN\nx\t1\n"},
        # a notebook (saved or uploaded) carrying an e-mail address and an MRN in its outputs
        "nb.ipynb": {
            "type": "notebook", "format": "json",
            "content": {"cells": [{"cell_type": "code", "source": "x", "metadata": {}, "execution_count": 1,
                                   "outputs": [{"output_type": "stream", "name": "stdout",
                                                "text": f"{CANARY_MAIL} {CANARY_MRN}\n"}]}],
                        "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
        },  # fmt: skip
        # a person's name in plain text
        "notes.md": {"type": "file", "format": "text", "content": f"{CANARY_NAME} called\n"},
        # a binary table: read with ingestion's readers
        "t.parquet": {"type": "file", "format": "base64", "content": table},
        # an archive cannot be scanned: refused whatever it holds
        "in.zip": {"type": "file", "format": "base64", "content": b64(_zip_bytes("x.csv", b"A\n1\n"))},
        # a chunked upload whose last chunk carries the canary
        "big.csv": {"type": "file", "format": "base64", "chunk": -1, "content": last_chunk},
    }  # fmt: skip
    for name, body in attacks.items():
        put = page.put(f"/workspaces/{wid}/api/contents/{name}", json=body, cookies=jar, headers=headers)
        assert put.status_code == 403, (name, put.status_code, put.text)
        assert "identified data" in put.json()["detail"], name
        assert not (home / name).exists(), f"{name} reached the workspace"
    benign = {"type": "file", "format": "base64", "content": b64(b"SITE,COUNT\nx,123\n")}
    put = page.put(f"/workspaces/{wid}/api/contents/ok.csv", json=benign, cookies=jar, headers=headers)
    assert put.status_code in (200, 201), put.text
    assert (home / "ok.csv").exists()
    with platform.db.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "workspace.upload")).all()
        denied = {e.details["path"]: e for e in events if e.outcome == "denied"}
        assert set(denied) == set(attacks), sorted(denied)
        assert all(e.actor == "alice" and e.details["evidence"] for e in denied.values())
        recorded = repr([(e.details, e.target) for e in events])
    for canary in (CANARY_SSN, CANARY_MAIL, CANARY_MRN, "Quackenbush"):
        assert canary not in recorded, "the audit entry repeats no identifier"
    for server in reversed(platform._servers):  # type: ignore[attr-defined]
        server.__exit__(None, None, None)
