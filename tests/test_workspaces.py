"""Workspaces with real parts: real JupyterLab processes in real bubblewrap sandboxes (and as
plain processes), driven through the API, the authenticated proxy and kernel WebSockets. What
every backend must do is checked by tests/test_provisioner_behaviour.py; this module keeps the
catalog, the sandbox's own guarantees and the plain functions."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from datalibrary.db.base import utcnow
from datalibrary.errors import InvalidInput
from datalibrary.workspaces import idle, paths, service
from datalibrary.workspaces.cgroups import host_version
from datalibrary.workspaces.models import Workspace, WorkspaceUsage
from datalibrary.workspaces.products import load_catalog, parse_catalog
from datalibrary.workspaces.provisioners import backends, provisioner_class, sandbox_possible
from datalibrary.workspaces.sync import run_sync
from tests.helpers import LiveServer, Platform, make_platform
from tests.workspace_helpers import (
    CATALOG,
    UnixServer,
    build_test_environment,
    execute,
    handshake,
    kernel_socket,
    on_workspace,
    run_in_kernel,
    send_execute,
    wait_state,
)

SANDBOX_NEEDS = "bubblewrap, root and a writable cgroup hierarchy are needed"
needs_sandbox = pytest.mark.skipif(not (sandbox_possible() and host_version()), reason=SANDBOX_NEEDS)


@pytest.fixture(scope="session")
def environment_dir() -> Path:
    """Built once per machine and package list (cached under $XDG_CACHE_HOME or /tmp)."""
    return build_test_environment().parent


@pytest.fixture
def make_ws_platform(
    tmp_path: Path, sqlite_template: Path, environment_dir: Path, monkeypatch: pytest.MonkeyPatch
):  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    started: list[Platform] = []

    def make(provisioner: str) -> Platform:
        monkeypatch.setenv("DATALIBRARY_WORKSPACES__CATALOG", str(catalog))
        monkeypatch.setenv("DATALIBRARY_WORKSPACES__PROVISIONER", provisioner)
        monkeypatch.setenv("DATALIBRARY_WORKSPACES__ENVIRONMENTS_DIR", str(environment_dir))
        monkeypatch.setenv("DATALIBRARY_WORKSPACES__MAX_PER_USER", "2")
        db_path = tmp_path / "state.db"
        shutil.copy(sqlite_template, db_path)
        context = make_platform(tmp_path / "home", f"sqlite:///{db_path}")
        platform = context.__enter__()
        platform._context = context  # type: ignore[attr-defined]
        started.append(platform)
        return platform

    yield make
    for platform in started:
        with platform.db.session() as session:
            rows = session.scalars(select(Workspace).where(Workspace.state != "terminated")).all()
            for workspace in rows:
                run_sync(service.build_provisioner(platform.settings, workspace).stop())
        platform._context.__exit__(None, None, None)  # type: ignore[attr-defined]


@contextmanager
def serving(platform: Platform) -> Iterator[Platform]:
    """``platform``'s app on its API Unix socket (for the SDK) and on TCP (for the proxy tests)."""
    with UnixServer(platform.app, paths.api_socket(platform.settings)), LiveServer(platform.app) as live:
        platform.live_url = live.url  # type: ignore[attr-defined]
        yield platform


@pytest.fixture
def process_platform(make_ws_platform) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    with serving(make_ws_platform("process")) as platform:
        yield platform


@pytest.fixture
def sandbox_platform(make_ws_platform) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    if not (sandbox_possible() and host_version()):
        pytest.skip(SANDBOX_NEEDS)
    with serving(make_ws_platform("sandbox")) as platform:
        yield platform


def product_for(platform: Platform) -> str:
    """A product the platform's backend can launch: ``notebook`` requires isolation."""
    isolated = provisioner_class(platform.settings.workspaces.provisioner).isolated
    return "notebook" if isolated else "open-notebook"


def client_of(platform: Platform, user: str):  # type: ignore[no-untyped-def]
    client = platform.as_user(user)
    client.live_url = platform.live_url  # type: ignore[attr-defined]
    return client


def launch(platform: Platform, user: str = "alice", timeout: float = 90) -> tuple[object, int]:
    client = client_of(platform, user)
    response = client.post(
        "/api/v1/workspaces", json={"product": product_for(platform), "instance_type": "tiny"}
    )
    assert response.status_code == 202, response.text
    workspace_id = response.json()["id"]
    wait_state(client, workspace_id, "running", "failed", timeout=timeout)
    data = client.get(f"/api/v1/workspaces/{workspace_id}").json()
    assert data["state"] == "running", data["state_reason"]
    return client, workspace_id


# --- catalog -----------------------------------------------------------------------------


def test_default_catalog_has_an_m5_2xlarge_like_type() -> None:
    catalog = load_catalog()
    m5 = catalog.instance_type("m5.2xlarge")
    assert (m5.vcpu, m5.memory_gib, m5.price_per_hour) == (8, 32, 0.35)
    assert {e.name for e in catalog.environments} >= {"python", "r"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2", "not valid YAML"),
        ("- a list", "must be a mapping"),
        (
            CATALOG.replace(
                "environment: python, instance_types: [tiny, m5.2xlarge]",
                "environment: nope, instance_types: [tiny]",
            ),
            "unknown environment",
        ),
        (CATALOG.replace("[tiny, m5.2xlarge]", "[huge]"), "unknown instance types"),
        (CATALOG.replace("vcpu: 1,", "vcpu: -1,"), "vcpu"),
        (CATALOG.replace("packages: [jupyterlab, ipykernel]", "packages: [numpy]"), "must list"),
        (CATALOG + "\n" + "x" * 10, "YAML"),
    ],
)
def test_bad_catalogs_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_catalog(text)


def test_catalog_api_and_refusals(make_ws_platform) -> None:  # type: ignore[no-untyped-def]
    platform = make_ws_platform("process")
    client = platform.as_user("alice")
    catalog = client.get("/api/v1/workspaces/catalog").json()
    assert catalog["provisioner"] == "process" and catalog["isolated"] is False
    products = {p["name"]: p for p in catalog["products"]}
    assert "oncology-only" not in products  # restricted to a group alice is not in
    assert products["notebook"]["launchable"] is False
    # a product that requires isolation is refused by a backend that cannot enforce it
    refused = client.post("/api/v1/workspaces", json={"product": "notebook", "instance_type": "tiny"})
    assert refused.status_code == 422 and "cannot enforce" in refused.json()["detail"]
    assert (
        client.post(
            "/api/v1/workspaces", json={"product": "oncology-only", "instance_type": "tiny"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/workspaces", json={"product": "open-notebook", "instance_type": "m5.2xlarge"}
        ).status_code
        == 422
    )
    assert (
        client.post("/api/v1/workspaces", json={"product": "x" * 65, "instance_type": "tiny"}).status_code
        == 422
    )
    assert (
        client.post("/api/v1/workspaces", json={"product": "nope", "instance_type": "tiny"}).status_code
        == 404
    )
    # the console page shows the catalog and labels the backend as not isolated
    page = client.get("/workspaces")
    assert page.status_code == 200 and "not isolated" in page.text and "m5.2xlarge" in page.text


def test_gpu_types_are_refused_by_backends_without_gpus(sandbox_platform: Platform) -> None:
    client = sandbox_platform.as_user("alice")
    refused = client.post("/api/v1/workspaces", json={"product": "gpu-notebook", "instance_type": "gpu"})
    assert refused.status_code == 422 and "gpu" in refused.json()["detail"]


def test_only_the_owner_opens_a_workspace(sandbox_platform: Platform) -> None:
    platform = sandbox_platform
    owner, wid = launch(platform, "alice")
    intruder = client_of(platform, "mallory")
    assert on_workspace(intruder, wid).get(f"/workspaces/{wid}/lab").status_code == 404
    assert intruder.get(f"/api/v1/workspaces/{wid}").status_code == 404
    assert intruder.post(f"/api/v1/workspaces/{wid}/stop").status_code == 404
    anonymous = on_workspace(platform.anonymous, wid)
    assert anonymous.get(f"/workspaces/{wid}/lab", headers={"Accept": "text/html"}).status_code == 401
    assert anonymous.get(f"/workspaces/{wid}/api/status").status_code == 401
    kernel = (
        on_workspace(owner, wid).post(f"/workspaces/{wid}/api/kernels", json={"name": "python3"}).json()["id"]
    )
    with pytest.raises(Exception):  # noqa: B017, SIM117 - the WebSocket is refused
        with kernel_socket(intruder, wid, kernel) as ws:
            ws.recv(timeout=5)
    # an administrator needs an audited reason
    platform.add_user("root-admin", "admin")
    admin = platform.as_user("root-admin")
    assert on_workspace(admin, wid).get(f"/workspaces/{wid}/api/status").status_code == 403
    assert admin.post(f"/api/v1/workspaces/{wid}/admin-access", json={"reason": "short"}).status_code == 422
    granted = admin.post(
        f"/api/v1/workspaces/{wid}/admin-access", json={"reason": "ticket 42: user asked for help"}
    )
    assert granted.status_code == 200
    assert on_workspace(admin, wid).get(f"/workspaces/{wid}/api/status").status_code == 200
    events = admin.get("/api/v1/audit/events", params={"action": "workspace.admin_access"}).json()
    assert events and events[0]["details"]["reason"].startswith("ticket 42")
    # the workspace's own token cannot drive workspaces
    from datalibrary.auth.permissions import Principal
    from datalibrary.errors import PermissionDenied

    scoped = Principal.for_user(1, "alice", {"scientist"}, via="token", token_scope=f"workspace:{wid}")
    with platform.db.session() as session, pytest.raises(PermissionDenied):
        service.request(session, scoped, wid, "stop")
    assert owner


ISOLATION_PROBE = r"""
import json, os, socket, subprocess, sys
result = {}
def can_connect(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False
result["platform_port"] = can_connect("127.0.0.1", PLATFORM_PORT)
result["postgres"] = can_connect("127.0.0.1", 5432)
result["internet"] = can_connect("1.1.1.1", 443)
result["interfaces"] = sorted(name for _, name in socket.if_nameindex())
result["visible"] = {p: os.path.exists(p) for p in PATHS}
try:
    result["shadow"] = open("/etc/shadow").read()
except OSError:
    result["shadow"] = ""
result["uid"] = os.getuid()
hog = subprocess.run([sys.executable, "-c", "b = bytearray(900 << 20); b[::4096] = b'x' * (len(b) // 4096)"])
result["hog_returncode"] = hog.returncode
print(json.dumps(result))
"""


def test_sandbox_isolation(sandbox_platform: Platform, tmp_path: Path) -> None:
    platform = sandbox_platform
    client, wid = launch(platform, "alice")
    _, other = launch(platform, "bob")
    settings = platform.settings
    hidden = [
        str(paths.home_dir(settings, other)),
        str(settings.home),
        str(settings.home / "datalibrary.db"),
        str(tmp_path / "state.db"),
        "/work/shared/data",
        str(Path.home()),
        "/root",
    ]
    # the live server's port (not settings.server.port, where nothing listens in tests): reachable
    # from the host, so "unreachable from the sandbox" is the sandbox's doing
    live_port = urlsplit(platform.live_url).port  # type: ignore[attr-defined]
    socket.create_connection(("127.0.0.1", live_port), timeout=2).close()
    code = ISOLATION_PROBE.replace("PLATFORM_PORT", str(live_port)).replace("PATHS", repr(hidden))
    out = execute(client, wid, code, timeout=120)
    assert out["error"] is None, out
    result = json.loads(out["stdout"].strip().splitlines()[-1])
    assert result["platform_port"] is False and result["postgres"] is False and result["internet"] is False
    assert result["interfaces"] == ["lo"]
    assert not any(result["visible"].values()), result["visible"]
    assert result["shadow"] == ""
    assert result["uid"] == 1000
    # the process beyond the 512 MiB limit is killed; the workspace and the host are fine
    assert result["hog_returncode"] == -9
    assert execute(client, wid, "print('still here')")["stdout"].strip() == "still here"
    # a symlink planted where JupyterLab's socket lives never sends the proxy elsewhere
    plant = "import os; os.rename('/run/workspace/jupyter.sock', '/run/workspace/moved.sock'); "
    plant += "os.symlink('/run/postgresql/.s.PGSQL.5432', '/run/workspace/jupyter.sock'); print('planted')"
    assert execute(client, wid, plant)["stdout"].strip() == "planted"
    assert on_workspace(client, wid).get(f"/workspaces/{wid}/api/status").status_code == 503


# --- idle stop ---------------------------------------------------------------------------


def test_busy_kernel_without_browser_is_not_idle(sandbox_platform: Platform) -> None:

    platform = sandbox_platform
    client, wid = launch(platform)
    kernel = (
        on_workspace(client, wid)
        .post(f"/workspaces/{wid}/api/kernels", json={"name": "python3"})
        .json()["id"]
    )
    run_in_kernel(client, wid, kernel, "x = 1")
    # start a long computation and close the browser's connection
    with kernel_socket(client, wid, kernel) as ws:
        handshake(ws)
        msg_id = send_execute(ws, "import time; time.sleep(20)")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=10))
            if (
                message.get("parent_header", {}).get("msg_id") == msg_id
                and message["msg_type"] == "execute_input"
            ):
                break
    time.sleep(0.5)  # the server sees the connection close
    later = utcnow() + timedelta(hours=3)
    verdicts = run_sync(idle.check(platform.db, platform.settings, now=later))
    verdict = next(v for v in verdicts if v.workspace_id == wid)
    assert verdict.active and verdict.signals["busy_kernels"] == 1 and verdict.signals["connections"] == 0
    assert verdict.action == "none"
    # once the kernel is done and nobody is connected, the owner is warned, then it stops
    on_workspace(client, wid).post(f"/workspaces/{wid}/api/kernels/{kernel}/interrupt")
    time.sleep(0.5)
    timeout = timedelta(minutes=60)
    warning_time = later + timeout - timedelta(minutes=5)
    verdict = next(
        v
        for v in run_sync(idle.check(platform.db, platform.settings, now=warning_time))
        if v.workspace_id == wid
    )
    assert not verdict.active and verdict.action == "warned", verdict
    shown = client.get(f"/api/v1/workspaces/{wid}").json()
    assert shown["idle_warning_at"] and shown["idle_stop_at"]
    verdict = next(
        v
        for v in run_sync(idle.check(platform.db, platform.settings, now=later + timeout))
        if v.workspace_id == wid
    )
    assert verdict.action == "stopped"
    assert client.get(f"/api/v1/workspaces/{wid}").json()["state"] == "stopped"


def test_quota_per_user(make_ws_platform) -> None:  # type: ignore[no-untyped-def]
    platform = make_ws_platform("process")
    client = platform.as_user("alice")
    with platform.db.session() as session:
        from datalibrary.auth.service import get_user

        owner = get_user(session, "alice").id
        for _ in range(2):
            session.add(Workspace(owner_id=owner, product="open-notebook", instance_type="tiny", environment="python",  # noqa: E501
                                  provisioner="process", state="stopped", provisioner_state={}))  # fmt: skip
    refused = client.post("/api/v1/workspaces", json={"product": "open-notebook", "instance_type": "tiny"})
    assert refused.status_code == 409 and "quota" in refused.json()["detail"]
    assert client.post("/api/v1/workspaces/1/pause").status_code == 409  # stopped cannot pause
    assert client.post("/api/v1/workspaces/999/stop").status_code == 404
    assert platform.db.session  # usage rows exist only for real launches
    with platform.db.session() as session:
        assert session.scalars(select(WorkspaceUsage)).all() == []


@pytest.fixture(scope="session")
def r_environment_dir() -> Path:
    from datalibrary.workspaces.environments import r_available

    if not r_available():
        pytest.skip("R with IRkernel is not installed (apt-get install r-base-core r-cran-irkernel)")
    from datalibrary.workspaces.environments import build
    from tests.workspace_helpers import CACHE, R_ENVIRONMENT

    return build(CACHE, R_ENVIRONMENT, python="/usr/bin/python3")


def test_r_kernel_in_a_sandbox(sandbox_platform: Platform, r_environment_dir: Path) -> None:
    client = client_of(sandbox_platform, "alice")
    response = client.post("/api/v1/workspaces", json={"product": "r-notebook", "instance_type": "tiny"})
    assert response.status_code == 202, response.text
    wid = response.json()["id"]
    assert wait_state(client, wid, "running", "failed")["state"] == "running"
    specs = on_workspace(client, wid).get(f"/workspaces/{wid}/api/kernelspecs").json()["kernelspecs"]
    assert {"ir", "python3"} <= set(specs)
    out = execute(client, wid, "cat(6 * 7, R.version$major, '\\n')", kernel_name="ir")
    assert out["error"] is None and out["stdout"].split()[0] == "42", out


def test_unknown_provisioners_say_what_to_do() -> None:
    from datalibrary.errors import Unavailable

    with pytest.raises(Unavailable, match="Kubernetes"):
        provisioner_class("kubernetes")
    with pytest.raises(InvalidInput, match="unknown provisioner"):
        provisioner_class("vmware")
    assert os.path.exists(paths.SDK_SOURCE / "client.py")


def test_a_plugin_provisioner_is_found_by_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backends are entry points (group ``datalibrary.provisioners``): an installed package adds
    one without touching the platform, and one naming something that is not a Provisioner is
    refused rather than run."""
    from pydantic import ValidationError

    from datalibrary.config import WorkspaceSettings
    from datalibrary.errors import Unavailable

    (tmp_path / "acme_provisioner.py").write_text(
        "from datalibrary.workspaces.process import ProcessProvisioner\n"
        "class Acme(ProcessProvisioner):\n    pass\n"
        "def not_one():\n    return None\n"
    )
    info = tmp_path / "acme_provisioner-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-provisioner\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[datalibrary.provisioners]\nacme = acme_provisioner:Acme\nbogus = acme_provisioner:not_one\n"
    )
    assert "acme" not in backends()
    with pytest.raises(ValidationError, match="'acme' is not an installed provisioner"):
        WorkspaceSettings(provisioner="acme")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"sandbox", "process", "slurm", "acme"} <= set(backends())
    assert provisioner_class("acme").__name__ == "Acme"
    assert WorkspaceSettings(provisioner="acme").provisioner == "acme"  # the settings select it
    with pytest.raises(Unavailable, match="not a Provisioner"):
        provisioner_class("bogus")


@pytest.mark.parametrize(
    "busy, connections, cpu, newer, expected",
    [
        (0, 0, 0.0, False, False),  # nothing at all: idle
        (1, 0, 0.0, False, True),  # a kernel computing with no browser: busy
        (0, 1, 0.0, False, True),  # an open connection
        (0, 0, 0.5, False, True),  # CPU without any kernel (a script in a terminal)
        (0, 0, 0.01, False, False),  # CPU noise under the threshold
        (0, 0, 0.0, True, True),  # terminal or server activity since the last check
    ],
)
def test_idle_combines_every_signal(
    busy: int, connections: int, cpu: float, newer: bool, expected: bool
) -> None:
    from datalibrary.workspaces.jupyter import Activity

    since = utcnow()
    last = since + timedelta(seconds=1) if newer else since - timedelta(seconds=1)
    activity = Activity(busy_kernels=busy, connections=connections, terminals=0, last_activity=last)
    assert idle.is_active(activity, cpu, since, threshold=0.05)[0] is expected
    # unreachable JupyterLab: only CPU decides
    assert idle.is_active(None, cpu, since, threshold=0.05)[0] is (cpu >= 0.05)


FORK_LOOP = r"""
import os, subprocess
# small processes (vfork + exec of sleep): forks of the whole kernel would meet the instance
# type's memory limit (the OOM killer ends the kernel) before its process limit
children, error = [], None
try:
    for _ in range(5000):
        children.append(subprocess.Popen(["sleep", "60"]))
except OSError as exc:
    error = exc.errno
for child in children:
    child.kill()
for child in children:
    child.wait()
open("made.txt", "w").write("x")
os.symlink("made.txt", "link")
import shutil; shutil.copy("/usr/bin/true", "setuid-true"); os.chmod("setuid-true", 0o4755)
mounts = [l.split() for l in open("/proc/self/mountinfo")]
options = {m[4]: m[5] for m in mounts}
print(len(children), error, os.getuid(), options.get("/home/jovyan"), options.get("/tmp"))
"""


def test_sandbox_limits_processes_and_mounts_nosuid(sandbox_platform: Platform) -> None:
    import errno

    platform = sandbox_platform
    client, wid = launch(platform, "alice")
    out = execute(client, wid, FORK_LOOP, timeout=180)
    assert out["error"] is None, out
    count, error, uid, home_options, tmp_options = out["stdout"].split()
    # the fork loop stops at the instance type's limit (256 processes + threads), not the host's
    assert int(count) < 256 and int(error) == errno.EAGAIN, out
    assert uid == "1000"
    assert {"nosuid", "nodev"} <= set(home_options.split(",")), home_options
    assert {"nosuid", "nodev"} <= set(tmp_options.split(",")), tmp_options
    # a setuid file made inside is inert there (nosuid) and loses its setuid bit in the archive
    home = paths.home_dir(platform.settings, wid)
    assert (home / "setuid-true").exists()
    # files made inside belong to the workspace's own unprivileged host uid, never host root
    host_uid = platform.settings.workspaces.sandbox_uid_base + wid
    for name in ("made.txt", "setuid-true", "."):
        owner = (home / name).lstat()
        assert (owner.st_uid, owner.st_gid) == (host_uid, host_uid), name
    assert (home / "link").lstat().st_uid == host_uid
    # the workspace still works, and so does the host
    assert execute(client, wid, "print('alive')")["stdout"].strip() == "alive"
