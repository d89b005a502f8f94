"""The warm pool with real JupyterLab in real sandboxes: a member holds nothing of anyone and
runs no user code before a launch takes it; the launch binds the home and the token once;
nobody else gets it; terminate discards it; its time is the platform's, not a user's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.costs import pricebook
from datalibrary.costs.engine import Scope, workspace_lines
from datalibrary.db.base import utcnow
from datalibrary.errors import Unavailable
from datalibrary.workspaces import jupyter, paths, pool, service
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.models import Workspace, WorkspaceUsage
from datalibrary.workspaces.provisioners import sandbox_possible
from datalibrary.workspaces.sync import run_sync
from tests.helpers import LiveServer, Platform
from tests.test_workspaces import (  # noqa: F401 - fixtures
    client_of,
    environment_dir,
    make_ws_platform,
    product_for,
)
from tests.test_workspaces_cli import cli  # noqa: F401 - fixture
from tests.workspace_helpers import UnixServer, execute, on_workspace, wait_state


@pytest.fixture
def pool_platform(make_ws_platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:  # type: ignore[no-untyped-def]  # noqa: F811
    if not (sandbox_possible() and host_version()):
        pytest.skip("bubblewrap, root and a writable cgroup hierarchy are needed")
    # one member for python/tiny; the R environment stays out (it may not be built here)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__WARM_POOL", '{"r/tiny": 0}')
    platform = make_ws_platform("sandbox")
    with UnixServer(platform.app, paths.api_socket(platform.settings)), LiveServer(platform.app) as live:
        platform.live_url = live.url  # type: ignore[attr-defined]
        yield platform


def _members(platform: Platform) -> list[Workspace]:
    with platform.db.session() as session:
        account = pool.account_id(session, create=False)
        return list(
            session.scalars(
                select(Workspace).where(Workspace.owner_id == account, Workspace.state == pool.STATE)
            )
        )


def _fill(platform: Platform) -> Workspace:
    run_sync(pool.refill(platform.db, platform.settings))
    members = _members(platform)
    assert len(members) == 1, [(m.id, m.state, m.state_reason) for m in members]
    return members[0]


def _provisioner(platform: Platform, workspace_id: int):  # type: ignore[no-untyped-def]
    with platform.db.session() as session:
        return service.build_provisioner(platform.settings, session.get(Workspace, workspace_id))


def _inside(platform: Platform, workspace_id: int) -> tuple[str, str]:
    """The home mount and JupyterLab's environment, read from the host's /proc."""
    from datalibrary.workspaces import homebind

    provisioner = _provisioner(platform, workspace_id)
    pid = homebind.inner_pid(provisioner.cgroup.pids())
    home = [
        line for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        if line.split()[4] == "/home/jovyan"
    ]  # fmt: skip
    environ = b""
    for candidate in provisioner.cgroup.pids():
        if b"jupyterlab" in Path(f"/proc/{candidate}/cmdline").read_bytes():
            environ = Path(f"/proc/{candidate}/environ").read_bytes()
    return "\n".join(home), environ.decode(errors="replace")


def test_targets_follow_the_settings(make_ws_platform, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__WARM_POOL", '{"r/tiny": 0, "python/m5.2xlarge": 2}')
    platform = make_ws_platform("sandbox")
    found = {(t.environment, t.instance_type): t.size for t in pool.targets(platform.settings)}
    # the first type of each product, 1 each; explicit sizes override; no GPU on this host
    assert found == {("python", "tiny"): 1, ("python", "m5.2xlarge"): 2}

    def changed(**values: object):  # type: ignore[no-untyped-def]
        workspaces = platform.settings.workspaces.model_copy(update=values)
        return platform.settings.model_copy(update={"workspaces": workspaces})

    off = changed(warm_pool_size=0, warm_pool={})
    assert pool.targets(off) == [] and pool.disabled_because(off)
    assert "sandbox" in (pool.disabled_because(changed(provisioner="process")) or "")


def test_a_member_holds_nothing_and_binds_once(pool_platform: Platform) -> None:
    platform = pool_platform
    member = _fill(platform)
    wid = member.id
    # before assignment: an empty placeholder home (tmpfs), no token, no kernel, no home on the host
    home, environ = _inside(platform, wid)
    assert " - tmpfs " in home and "nosuid" in home, home
    names = {item.partition("=")[0] for item in environ.split("\0")}
    assert "DATALIBRARY_TOKEN" not in names and "PIP_INDEX_URL" in names, names
    assert "workspace:" not in environ  # no token in any URL either
    assert not paths.home_dir(platform.settings, wid).exists()
    secret = paths.jupyter_token(platform.settings, member)

    async def kernels() -> list[object]:
        async with jupyter.client(paths.socket_path(platform.settings, wid), secret) as http:
            return (await http.get(f"/workspaces/{wid}/api/kernels")).json()

    assert run_sync(kernels()) == []
    with platform.db.session() as session:
        usage = session.scalars(
            select(WorkspaceUsage).where(WorkspaceUsage.workspace_id == wid).order_by(WorkspaceUsage.id)
        ).all()
        account = pool.account_id(session, create=False)
        assert {u.user_id for u in usage} == {account} and usage[-1].state == pool.STATE
    # nobody opens a pool member: not a user, not through its origin
    mallory = client_of(platform, "mallory")
    assert mallory.get(f"/api/v1/workspaces/{wid}").status_code == 404
    assert on_workspace(mallory, wid).get(f"/workspaces/{wid}/api/status").status_code == 404
    assert mallory.get("/api/v1/workspaces").json() == []
    # the admin sees it
    platform.add_user("root-admin", "admin")
    admin = platform.as_user("root-admin")
    shown = admin.get("/api/v1/workspaces/pool").json()
    assert shown["enabled"] and [m["id"] for m in shown["members"]] == [wid]
    assert shown["targets"] == [
        {"environment": "python", "instance_type": "tiny", "size": 1, "ready": 1, "starting": 0}
    ]
    assert mallory.get("/api/v1/workspaces/pool").status_code == 403

    time.sleep(1.1)  # intervals are kept to the second: the pool's wait must last one to be priced
    # alice's launch takes it: fast, hers, with her home and her token
    alice = client_of(platform, "alice")
    started = time.perf_counter()
    response = alice.post(
        "/api/v1/workspaces", json={"product": product_for(platform), "instance_type": "tiny"}
    )
    assert response.status_code == 202 and response.json()["id"] == wid, response.text
    assert wait_state(alice, wid, "running", "failed")["state"] == "running"
    taken = time.perf_counter() - started
    assert taken < 30  # not a speed test: the benchmark measures; a cold start fails the checks below
    home, environ = _inside(platform, wid)
    assert " - tmpfs " not in home.splitlines()[-1] and "nosuid" in home and "nodev" in home, home
    out = execute(
        alice, wid,
        "import os; open('mine.txt', 'w').write('hi')\n"
        "from datalibrary.sdk import connect\n"
        "print(connect().me()['name'], os.environ.get('PIP_INDEX_URL', '')[:24])",
    )  # fmt: skip
    assert out["error"] is None and out["stdout"].split()[0] == "alice", out
    assert "workspace:" in out["stdout"]  # pip's index carries the token handed over at assignment

    # JupyterLab's own files (notebook signatures under ~/.local/share/jupyter) go to the real home
    async def new_notebook() -> int:  # what JupyterLab's launcher does (API tokens may not)
        async with jupyter.client(paths.socket_path(platform.settings, wid), secret) as http:
            return (await http.post(f"/workspaces/{wid}/api/contents", json={"type": "notebook"})).status_code

    assert run_sync(new_notebook()) == 201
    host_home = paths.home_dir(platform.settings, wid)
    made = (host_home / "mine.txt").stat()
    host_uid = platform.settings.workspaces.sandbox_uid_base + wid
    assert (made.st_uid, made.st_gid) == (host_uid, host_uid)
    # usage: the pool's interval ended at assignment, alice's started there
    with platform.db.session() as session:
        usage = session.scalars(
            select(WorkspaceUsage).where(WorkspaceUsage.workspace_id == wid).order_by(WorkspaceUsage.id)
        ).all()
        owner = session.get(Workspace, wid).owner_id
        pooled = [u for u in usage if u.state == pool.STATE]
        cut = usage.index(pooled[-1]) + 1  # the pool's own start and wait, then the user's
        assert all(u.user_id == account and u.ended_at for u in usage[:cut])
        assert [u.state for u in usage[cut:]] == ["starting", "running"]
        assert all(u.user_id == owner for u in usage[cut:])
        assert usage[-1].state == "running" and usage[-1].ended_at is None
        book = pricebook.load(session, platform.settings)
        lines = workspace_lines(session, book, Scope(usage[0].started_at, utcnow(), utcnow()))
        users = {line.user for line in lines if line.resource == f"workspace:{wid}"}
        assert pool.ACCOUNT in users  # the pool's time is the platform's compute

    # it cannot be assigned again: JupyterLab refuses, the proxy never forwards the control path
    with pytest.raises(Unavailable):
        run_sync(jupyter.assign(paths.socket_path(platform.settings, wid), f"/workspaces/{wid}/", secret, {}))
    assert on_workspace(alice, wid).post(f"/workspaces/{wid}/_dl/assign", json={}).status_code == 404
    # bob's launch gets another member (refilled), never alice's
    second = _fill(platform)
    assert second.id != wid
    bob = client_of(platform, "bob")
    response = bob.post(
        "/api/v1/workspaces", json={"product": product_for(platform), "instance_type": "tiny"}
    )
    assert response.json()["id"] == second.id
    assert wait_state(bob, second.id, "running", "failed")["state"] == "running"
    assert bob.get(f"/api/v1/workspaces/{wid}").status_code == 404
    assert on_workspace(bob, wid).get(f"/workspaces/{wid}/api/status").status_code == 404
    out = execute(bob, second.id, "import os; print(sorted(os.listdir('.')))")
    assert "mine.txt" not in out["stdout"], out


def test_terminate_discards_a_member_and_the_pool_refills(pool_platform: Platform) -> None:
    platform = pool_platform
    member = _fill(platform)
    platform.add_user("root-admin", "admin")
    admin = platform.as_user("root-admin")
    # the pool's account owns the members: nobody can become it
    assert admin.post(f"/api/v1/users/{pool.ACCOUNT}/enable").status_code == 409
    strong = {"password": "Another-Long-Passphrase-42!"}
    assert admin.put(f"/api/v1/users/{pool.ACCOUNT}/password", json=strong).status_code == 409
    assert admin.post(f"/api/v1/workspaces/{member.id}/terminate").status_code == 202
    assert wait_state(admin, member.id, "terminated")["state"] == "terminated"
    assert not _provisioner(platform, member.id).cgroup.exists()
    # a dead member is discarded by the reconciler, never re-adopted as anyone's
    replacement = _fill(platform)
    assert replacement.id != member.id
    run_sync(_provisioner(platform, replacement.id).stop())
    from datalibrary.workspaces import reconcile

    report = run_sync(reconcile.reconcile(platform.db, platform.settings))
    assert report.repaired.get(replacement.id) == "terminated"
    refilled = admin.post("/api/v1/workspaces/pool/refill").json()
    assert refilled["started"] == 1


@pytest.fixture
def catalog_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.workspace_helpers import CATALOG

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__CATALOG", str(catalog))
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", "sandbox")


def test_a_member_is_taken_once_on_both_databases(catalog_env: None, platform: Platform) -> None:
    """Two launches never get the same member (compare-and-swap on the row, in a savepoint);
    with no member left a launch starts cold. No sandbox needed: rows only."""
    from datalibrary.auth.permissions import Principal

    settings = platform.settings
    target = pool.Target("python", "tiny", 2, "notebook")
    ids = [pool._create_member(platform.db, settings, target) for _ in range(2)]
    with platform.db.session() as session:
        for wid in ids:
            service._transition(session, session.get(Workspace, wid), pool.STATE, "warm pool: ready")
    for name in ("alice", "bob", "carol"):
        platform.add_user(name, "scientist")
    operator = Principal.system("test")
    with platform.db.session() as first, platform.db.session() as second:
        # the second launch read the members before the first one took one
        stale = second.scalars(select(Workspace).where(Workspace.state == pool.STATE)).all()
        assert len(stale) == 2
        a = service.request_create(
            first, operator, settings, product="notebook", instance_type="tiny", user="alice"
        )
        first.commit()
        b = service.request_create(
            second, operator, settings, product="notebook", instance_type="tiny", user="bob"
        )
        second.commit()
        assert {a.id, b.id} == set(ids)
    with platform.db.session() as session:
        c = service.request_create(
            session, operator, settings, product="notebook", instance_type="tiny", user="carol"
        )
        assert c.id not in ids and "warm pool" not in c.state_reason  # the pool is empty: cold
        owners = {w.id: w.owner_id for w in session.scalars(select(Workspace))}
        names = service.owner_names(session, session.scalars(select(Workspace)).all())
        assert {names[owners[a.id]], names[owners[b.id]]} == {"alice", "bob"}
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "workspace.create").order_by(AuditEvent.id)
        ).all()
        assert [e.details.get("warm_pool", False) for e in events] == [True, True, False]


def test_the_pool_from_the_shell(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import json

    if not (sandbox_possible() and host_version()):
        pytest.skip("bubblewrap, root and a writable cgroup hierarchy are needed")
    shown = json.loads(cli("workspaces", "pool", "--json"))  # the process provisioner: no pool
    assert not shown["enabled"] and "sandbox" in shown["disabled_because"]
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", "sandbox")
    monkeypatch.setenv("DATALIBRARY_WORKSPACES__WARM_POOL", '{"r/tiny": 0}')
    shown = json.loads(cli("workspaces", "pool", "--refill", "--json"))
    assert shown["enabled"] and shown["account"] == pool.ACCOUNT
    assert [(t["environment"], t["instance_type"], t["ready"]) for t in shown["targets"]] == [
        ("python", "tiny", 1)
    ]
    member = shown["members"][0]
    assert member["state"] == pool.STATE
    # terminating a member discards it
    done = json.loads(cli("workspaces", "terminate", str(member["id"]), "--json"))
    assert done["state"] == "terminated"
    shown = json.loads(cli("workspaces", "pool", "--json"))
    assert shown["members"] == [] and shown["targets"][0]["ready"] == 0


def test_a_member_that_cannot_start_backs_off(
    catalog_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_platform: Platform
) -> None:
    """An environment marked built whose interpreter is missing: the member fails; the next
    rounds discard it and wait instead of starting (and auditing) a new one every round."""
    if not (sandbox_possible() and host_version()):
        pytest.skip("bubblewrap, root and a writable cgroup hierarchy are needed")
    from datalibrary.workspaces import environments

    settings = sqlite_platform.settings
    broken = tmp_path / "broken-envs"
    workspaces = settings.workspaces.model_copy(
        update={"environments_dir": broken, "warm_pool": {"r/tiny": 0}, "start_timeout_seconds": 20}
    )
    settings = settings.model_copy(update={"workspaces": workspaces})
    target = environments.environment_path(broken, service.catalog_of(settings).environment("python"))
    target.mkdir(parents=True)
    (target / ".ready").write_text("{}")  # "built", but there is no venv inside
    monkeypatch.setattr(pool, "_backoff", {})
    first = run_sync(pool.refill(sqlite_platform.db, settings))
    assert first == {"started": 1, "discarded": 0}
    second = run_sync(pool.refill(sqlite_platform.db, settings))
    assert second == {"started": 0, "discarded": 1}  # the failed one goes, no new one yet
    with sqlite_platform.db.session() as session:
        states = [w.state for w in session.scalars(select(Workspace))]
    assert states == ["terminated"]
