"""The package mirror with real parts: devpi-server caching a local upstream index (started
by the test, never the public one), the platform's policy in front, real pip clients."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from datalibrary.packages import server
from tests.helpers import LiveServer, Platform
from tests.package_helpers import StaticIndex, make_wheel, write_simple_index


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StaticIndex, Path]]:
    root = tmp_path_factory.mktemp("upstream")
    for name, version in [("tinypkg", "1.0"), ("tinypkg", "2.0"), ("otherpkg", "1.0"), ("blockedpkg", "1.0")]:
        make_wheel(root / "files", name, version)
    write_simple_index(root)
    with StaticIndex(root) as index:
        yield index, root


@pytest.fixture(scope="session")
def mirror_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One devpi-server for the whole session (it takes a while to start on a busy machine)."""
    directory = tmp_path_factory.mktemp("mirror")
    yield directory
    pid = directory / "devpi.pid"
    if pid.exists():
        os.kill(int(pid.read_text()), signal.SIGTERM)


@pytest.fixture
def mirror_platform(
    upstream, mirror_dir: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[tuple[Platform, str]]:  # type: ignore[no-untyped-def]
    index, _ = upstream
    monkeypatch.setenv("DATALIBRARY_PACKAGES__SERVER_DIR", str(mirror_dir))
    monkeypatch.setenv("DATALIBRARY_PACKAGES__UPSTREAM_URL", index.url)
    monkeypatch.setenv("DATALIBRARY_PACKAGES__UPSTREAM_CACHE_SECONDS", "0")
    platform: Platform = request.getfixturevalue("sqlite_platform")
    server.ensure_running(platform.settings)  # as the server's startup does; pip's timeout is short
    with LiveServer(platform.app) as live:
        yield platform, live.url


def pip_install(
    base: str, user: str, token: str, target: Path, *requirements: str
) -> subprocess.CompletedProcess[str]:
    index = f"http://{user}:{token}@{base.removeprefix('http://')}/pypi/simple/"
    return subprocess.run(
        ["/usr/bin/python3", "-m", "pip", "--isolated", "install", "--no-cache-dir", "--retries", "0",
         "--disable-pip-version-check", "--no-deps", "--target", str(target),
         "--index-url", index, *requirements],
        env={"PATH": "/usr/bin:/bin", "HOME": str(target.parent), "LANG": "C.UTF-8"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def installed_version(target: Path, module: str) -> str:
    return (target / module / "__init__.py").read_text().split("'")[1]


def test_upstream_packages_are_cached_and_every_install_is_recorded(
    mirror_platform, upstream, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    platform, base = mirror_platform
    _, root = upstream
    token = platform.as_user("alice").token
    result = pip_install(base, "alice", token, tmp_path / "a", "tinypkg")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(tmp_path / "a", "tinypkg") == "2.0"
    # the upstream loses the file: the mirror still serves it from its cache
    moved = root / "files" / "tinypkg-2.0-py3-none-any.whl"
    moved.rename(root / "tinypkg-2.0.moved")
    try:
        again = pip_install(base, "alice", token, tmp_path / "b", "tinypkg==2.0")
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        (root / "tinypkg-2.0.moved").rename(moved)
    # admins see who installed what
    platform.add_user("pat", "admin")
    installs = platform.as_user("pat").get("/api/v1/packages/installs").json()
    mine = [i for i in installs if i["user"] == "alice" and i["action"] == "package.install"]
    assert {(i["package"], i["version"]) for i in mine} == {("tinypkg", "2.0")} and len(mine) == 2


def test_policy_refusals_are_clear_inside_pip(mirror_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, base = mirror_platform
    platform.add_user("pat", "admin")
    admin = platform.as_user("pat")
    token = platform.as_user("alice").token
    assert (
        admin.post(
            "/api/v1/packages/rules", json={"kind": "deny", "name": "BlockedPkg", "note": "licence"}
        ).status_code
        == 201
    )
    result = pip_install(base, "alice", token, tmp_path / "a", "blockedpkg")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Refused-by-the-DataLibrary-package-policy" in output and "deny-list" in output, output
    # a denied version range: the other versions stay installable
    assert (
        admin.post(
            "/api/v1/packages/rules", json={"kind": "deny", "name": "tinypkg", "specifier": ">=2"}
        ).status_code
        == 201
    )
    result = pip_install(base, "alice", token, tmp_path / "b", "tinypkg")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(tmp_path / "b", "tinypkg") == "1.0"
    # allow-list mode: only allowed names (and versions)
    assert admin.put("/api/v1/packages/policy", json={"mode": "allowlist"}).status_code == 200
    result = pip_install(base, "alice", token, tmp_path / "c", "otherpkg")
    assert result.returncode != 0 and "allow-list" in result.stdout + result.stderr
    assert admin.post("/api/v1/packages/rules", json={"kind": "allow", "name": "otherpkg"}).status_code == 201
    result = pip_install(base, "alice", token, tmp_path / "d", "otherpkg")
    assert result.returncode == 0, result.stdout + result.stderr
    # scientists cannot change the policy; refusals are in the install log
    assert platform.as_user("alice").put("/api/v1/packages/policy", json={"mode": "open"}).status_code == 403
    refused = [i for i in admin.get("/api/v1/packages/installs").json() if i["action"] == "package.refused"]
    assert {i["package"] for i in refused} >= {"blockedpkg", "otherpkg"}


def test_internal_wheels_install_even_in_allowlist_mode(mirror_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, base = mirror_platform
    platform.add_user("pat", "admin")
    admin = platform.as_user("pat")
    wheel = make_wheel(tmp_path / "build", "company-stats", "0.3.1")
    response = admin.post("/api/v1/packages/internal", files={"file": (wheel.name, wheel.read_bytes())})
    assert response.status_code == 201, response.text
    assert admin.put("/api/v1/packages/policy", json={"mode": "allowlist"}).status_code == 200
    result = pip_install(base, "alice", platform.as_user("alice").token, tmp_path / "a", "company-stats")
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(tmp_path / "a", "company_stats") == "0.3.1"
    # only admins upload
    other = make_wheel(tmp_path / "build2", "sneaky", "1.0")
    assert (
        platform.as_user("alice")
        .post("/api/v1/packages/internal", files={"file": (other.name, other.read_bytes())})
        .status_code
        == 403
    )


def test_the_index_needs_a_token(mirror_platform) -> None:  # type: ignore[no-untyped-def]
    import httpx

    platform, base = mirror_platform
    response = httpx.get(f"{base}/pypi/simple/tinypkg/")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
    platform.add_user("audrey", "auditor")
    token = platform.as_user("audrey").token
    assert httpx.get(f"{base}/pypi/simple/tinypkg/", auth=("audrey", token)).status_code == 403
    assert httpx.get(f"{base}/pypi/files/../../etc/passwd", auth=("audrey", token)).status_code in (403, 404)


def test_cli_manages_rules_uploads_and_r_packages(  # type: ignore[no-untyped-def]
    mirror_platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's packages commands (each with --json) against the same installation."""
    import json

    from typer.testing import CliRunner

    from datalibrary.cli import app
    from tests.test_packages_r_policy import r_tarball

    platform, base = mirror_platform
    monkeypatch.setenv("DATALIBRARY_HOME", str(platform.settings.home))
    monkeypatch.setenv("DATALIBRARY_DATABASE_URL", platform.settings.connect_url())
    runner = CliRunner()

    def cli(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == code, f"{args}: {result.output} {result.stderr}"
        return json.loads(result.stdout) if code == 0 else " ".join(result.stderr.split())

    wheel = make_wheel(tmp_path / "build", "cli-stats", "1.2.0")
    assert cli("packages", "upload", str(wheel)) == {
        "name": "cli-stats",
        "version": "1.2.0",
        "file": wheel.name,
    }
    assert cli("packages", "uploads")[0]["file"] == wheel.name
    result = pip_install(base, "alice", platform.as_user("alice").token, tmp_path / "a", "cli-stats")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is not a file" in cli("packages", "upload", str(tmp_path / "build"), code=2)
    junk = tmp_path / "junk.txt"
    junk.write_text("x")
    assert "not a wheel or sdist" in cli("packages", "upload", str(junk), code=2)
    denied = cli("packages", "rule", "deny", "cli-stats", "--note", "withdrawn")
    assert (denied["kind"], denied["ecosystem"], denied["name"]) == ("deny", "python", "cli-stats")
    r_rule = cli("packages", "rule", "allow", "tinyr", "--ecosystem", "r", "--specifier", "<1")
    policy = cli("packages", "rules")
    assert policy["mode"] == "open" and {r["id"] for r in policy["rules"]} == {denied["id"], r_rule["id"]}
    refused = pip_install(base, "alice", platform.as_user("alice").token, tmp_path / "b", "cli-stats")
    assert refused.returncode != 0 and "withdrawn" in refused.stdout + refused.stderr
    assert cli("packages", "rule-delete", str(denied["id"]))["name"] == "cli-stats"
    assert "no package rule with id" in cli("packages", "rule-delete", str(denied["id"]), code=2)
    assert [r["id"] for r in cli("packages", "rules")["rules"]] == [r_rule["id"]]
    tarball = r_tarball(tmp_path / "r", "tinyr", "0.1.0")
    assert cli("packages", "r-upload", str(tarball))["name"] == "tinyr"
    assert [(p["name"], p["version"]) for p in cli("packages", "r-list")] == [("tinyr", "0.1.0")]
    # every change is audited
    from sqlalchemy import select

    from datalibrary.audit.models import AuditEvent

    with platform.db.session() as session:
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("packages.%"))))
    assert {
        "packages.upload",
        "packages.deny",
        "packages.allow",
        "packages.rule_delete",
        "packages.r_upload",
    } <= actions


def test_the_mirror_runs_offline_from_its_cache(  # type: ignore[no-untyped-def]
    upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Cache through the upstream, then run with no upstream at all (devpi's offline mode):
    what was cached still installs, nothing else does."""
    import time

    from datalibrary.api import create_app
    from datalibrary.config import Settings

    index, _ = upstream
    monkeypatch.setenv("DATALIBRARY_PACKAGES__SERVER_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("DATALIBRARY_PACKAGES__UPSTREAM_URL", index.url)
    platform: Platform = request.getfixturevalue("sqlite_platform")
    token = platform.as_user("alice").token
    try:
        server.ensure_running(platform.settings)
        with LiveServer(platform.app) as live:
            cached = pip_install(live.url, "alice", token, tmp_path / "a", "tinypkg==1.0")
            assert cached.returncode == 0, cached.stdout + cached.stderr
        server.stop(platform.settings)
        deadline = time.monotonic() + 30
        while server._alive(server.socket_path(platform.settings)) and time.monotonic() < deadline:
            time.sleep(0.2)
        monkeypatch.delenv("DATALIBRARY_PACKAGES__UPSTREAM_URL")
        offline = Settings(home=platform.settings.home, database_url=platform.settings.database_url)
        assert not offline.packages.upstream_url
        server.ensure_running(offline)
        with LiveServer(create_app(offline, platform.db)) as live:
            again = pip_install(live.url, "alice", token, tmp_path / "b", "tinypkg==1.0")
            assert again.returncode == 0, again.stdout + again.stderr
            assert installed_version(tmp_path / "b", "tinypkg") == "1.0"
            missing = pip_install(live.url, "alice", token, tmp_path / "c", "otherpkg")
            assert missing.returncode != 0
    finally:
        server.stop(platform.settings)
