"""Attacks on the warm pool's boundary: the control path, the proxy's path checks, a grant
made while a member belonged to nobody, and the pool account (real JupyterLab in real
sandboxes where a sandbox is needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from datalibrary.auth.permissions import Principal
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, NotFound, PermissionDenied
from datalibrary.workspaces import access, jupyter, paths, pool, service
from datalibrary.workspaces.models import Workspace, WorkspaceAdminAccess
from datalibrary.workspaces.sync import run_sync
from tests.helpers import Platform
from tests.test_workspaces import (  # noqa: F401 - fixtures
    client_of,
    environment_dir,
    make_ws_platform,
    product_for,
)
from tests.test_workspaces_pool import _fill, catalog_env, pool_platform  # noqa: F401 - fixtures
from tests.workspace_helpers import execute, on_workspace, wait_state

# Ways to spell a path the proxy refuses so that the workspace sees it after all: the proxy
# forwards the decoded path and the HTTP client then removes dot segments.
DOT_TRICKS = ("lab/%2E%2E/{0}", "lab/%2e%2e%2F{0}", "lab/..%2F{0}", "api/kernels/%2E%2E/%2E%2E/{0}", "./{0}")


def test_dot_segments_never_reach_a_route_the_proxy_refuses(pool_platform: Platform) -> None:  # noqa: F811
    platform = pool_platform
    member = _fill(platform)
    wid = member.id
    alice = client_of(platform, "alice")
    response = alice.post(
        "/api/v1/workspaces", json={"product": product_for(platform), "instance_type": "tiny"}
    )
    assert response.json()["id"] == wid
    assert wait_state(alice, wid, "running", "failed")["state"] == "running"
    out = execute(alice, wid, "open('mine.txt', 'w').write('alice-private-123')")
    assert out["error"] is None, out
    site = on_workspace(alice, wid)
    base = f"/workspaces/{wid}/"
    # API tokens never read files, whatever the spelling
    assert site.get(base + "files/mine.txt").status_code == 403
    for trick in DOT_TRICKS:
        for route in ("files/mine.txt", "api/contents/mine.txt?content=1"):
            got = site.get(base + trick.format(route))
            assert "alice-private-123" not in got.text, (trick, route, got.status_code)
            assert got.status_code in (403, 404, 422), (trick, route, got.status_code, got.text[:200])
        # nor writes one past the upload scan
        put = site.put(
            base + trick.format("api/contents/planted.txt"),
            json={"type": "file", "format": "text", "content": "x"},
        )
        assert put.status_code in (403, 404, 422), (trick, put.status_code)
    # the control path: refused by the proxy itself in every spelling (never forwarded)
    secret = paths.jupyter_token(platform.settings, member)
    for spelling in ("_dl/assign", "_DL/assign", "%5Fdl/assign", "lab/%2E%2E/_dl/assign", "./_dl/assign",
                     "_dl%2Fassign", "api/%2E%2E/_dl/assign"):  # fmt: skip
        got = site.post(base + spelling, json={"env": {"DATALIBRARY_TOKEN": "x"}})
        assert got.status_code in (404, 422), (spelling, got.status_code)
        assert got.headers.get("content-type", "").startswith("application/problem+json"), (
            spelling,
            got.text,
        )
    # JupyterLab itself: assigned once, refuses a second hand-over even with the secret
    with pytest.raises(Exception, match="409|assigned"):
        run_sync(jupyter.assign(paths.socket_path(platform.settings, wid), base, secret, {}))
    # from inside the sandbox: the socket is not reachable with the secret (it is not in the env)
    out = execute(alice, wid, "import os; print(sorted(k for k in os.environ if 'PROXY' in k))")
    assert out["stdout"].strip() == "[]", out


def test_an_admin_grant_on_a_pool_member_does_not_carry_over(catalog_env: None, platform: Platform) -> None:  # noqa: F811
    """An administrator states a reason for a member that holds nobody's data; after a launch
    takes it, that grant must not open the user's workspace. No sandbox needed: rows only."""
    settings = platform.settings
    target = pool.Target("python", "tiny", 1, "notebook")
    wid = pool._create_member(platform.db, settings, target)
    with platform.db.session() as session:
        service._transition(session, session.get(Workspace, wid), pool.STATE, "warm pool: ready")
    platform.add_user("root-admin", "admin")
    platform.add_user("alice", "scientist")
    with platform.db.session() as session:
        from datalibrary.auth import service as auth_service

        admin = auth_service.principal_for(auth_service.get_user(session, "root-admin"))
        with pytest.raises(Conflict, match="warm-pool member"):
            access.grant_admin_access(session, admin, wid, "looking at the warm pool member")
        # one made anyway (a grant that raced the pool's start, or an older release's): a row
        now = utcnow()
        session.add(WorkspaceAdminAccess(workspace_id=wid, admin_id=admin.user_id, reason="raced grant",
                                         granted_at=now, expires_at=now + timedelta(hours=1)))  # fmt: skip
    with platform.db.session() as session:
        taken = service.request_create(
            session,
            Principal.system("test"),
            settings,
            product="notebook",
            instance_type="tiny",
            user="alice",
        )
        assert taken.id == wid
    with platform.db.session() as session:
        admin = auth_service.principal_for(auth_service.get_user(session, "root-admin"))
        with pytest.raises((PermissionDenied, NotFound)):
            access.can_open(session, admin, wid)


def test_the_pool_account_cannot_sign_in_or_get_a_token(catalog_env: None, platform: Platform) -> None:  # noqa: F811
    from datalibrary.auth import service as auth_service
    from datalibrary.errors import DataLibraryError

    with platform.db.session() as session:
        pool.account_id(session)
    platform.add_user("root-admin", "admin")
    admin = platform.as_user("root-admin")
    assert admin.post(f"/api/v1/users/{pool.ACCOUNT}/enable").status_code == 409
    strong = {"password": "Another-Long-Passphrase-42!"}
    assert admin.put(f"/api/v1/users/{pool.ACCOUNT}/password", json=strong).status_code == 409
    login = admin.post("/api/v1/auth/login", json={"name": pool.ACCOUNT, "password": strong["password"]})
    assert login.status_code in (401, 403, 422), login.text
    with platform.db.session() as session:
        admin_principal = auth_service.principal_for(auth_service.get_user(session, "root-admin"))
        with pytest.raises(DataLibraryError):
            auth_service.create_token(session, admin_principal, pool.ACCOUNT, name="pool")
    with platform.db.session() as session:
        user = session.scalar(select(auth_service.User).where(auth_service.User.name == pool.ACCOUNT))
        assert user is not None and not user.is_active and user.password_hash is None


PROBE = """
import os, re
found = []
for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    for name in ('environ', 'cmdline'):
        try:
            data = open(f'/proc/{pid}/{name}', 'rb').read()
        except OSError:
            continue
        found += [(pid, name, m.decode()) for m in re.findall(rb'[0-9a-f]{64}', data)]
    try:
        descriptors = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        continue
    for fd in descriptors:  # an inherited file (bubblewrap's --args) would carry the secret
        try:
            if not os.readlink(f'/proc/{pid}/fd/{fd}').startswith(('/memfd:', '/tmp', '/run')):
                continue  # pipes and sockets could block; devices say nothing
            data = open(f'/proc/{pid}/fd/{fd}', 'rb').read(1 << 16)
        except OSError:
            continue
        found += [(pid, 'fd', m.decode()) for m in re.findall(rb'[0-9a-f]{64}', data)]
print('FOUND', found)
"""


def test_user_code_cannot_read_the_proxy_secret_from_proc(pool_platform: Platform) -> None:  # noqa: F811
    """The secret is popped from JupyterLab's environment, but the kernel (same uid) could read
    the process's original environment block in /proc/<pid>/environ; bubblewrap (pid 1
    inside) showed every variable on its command line; the forwarder inherited the secret."""
    platform = pool_platform
    member = _fill(platform)
    alice = client_of(platform, "alice")
    launch = {"product": product_for(platform), "instance_type": "tiny"}
    assert alice.post("/api/v1/workspaces", json=launch).json()["id"] == member.id
    assert wait_state(alice, member.id, "running", "failed")["state"] == "running"
    secret = paths.jupyter_token(platform.settings, member)
    out = execute(alice, member.id, PROBE)
    assert out["error"] is None and out["stdout"].startswith("FOUND"), out
    assert secret not in out["stdout"], out["stdout"]
    # nor any user of the host: no command line of the sandbox's processes carries it
    from pathlib import Path

    from tests.test_workspaces_pool import _provisioner

    pids = _provisioner(platform, member.id).cgroup.pids()
    assert pids and all(secret.encode() not in Path(f"/proc/{p}/cmdline").read_bytes() for p in pids)
    # the secret the platform uses still works (JupyterLab answers the platform)

    async def status() -> int:
        async with jupyter.client(paths.socket_path(platform.settings, member.id), secret) as http:
            return (await http.get(f"/workspaces/{member.id}/api/status")).status_code

    assert run_sync(status()) == 200
