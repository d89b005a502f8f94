"""Package installs from inside a real sandboxed workspace: no network, no typed credentials.
pip, uv and R's install.packages() reach the platform through the loopback forwarder with
the workspace's token; the mirror's upstream is a local index the test starts."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from datalibrary.packages import cran, server
from datalibrary.workspaces import paths
from tests.helpers import LiveServer, Platform
from tests.package_helpers import make_wheel
from tests.test_packages import mirror_dir, upstream  # noqa: F401
from tests.test_workspaces import (  # noqa: F401
    client_of,
    environment_dir,
    launch,
    make_ws_platform,
    r_environment_dir,
)
from tests.workspace_helpers import UnixServer, execute, wait_state


@pytest.fixture
def pip_platform(
    make_ws_platform,  # noqa: F811
    upstream,  # noqa: F811
    mirror_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    from datalibrary.workspaces.cgroups import host_version
    from datalibrary.workspaces.provisioners import sandbox_possible

    if not (sandbox_possible() and host_version()):
        pytest.skip("bubblewrap, root and a writable cgroup hierarchy are needed")
    index, _ = upstream
    monkeypatch.setenv("DATALIBRARY_PACKAGES__SERVER_DIR", str(mirror_dir))
    monkeypatch.setenv("DATALIBRARY_PACKAGES__UPSTREAM_URL", index.url)
    monkeypatch.setenv("DATALIBRARY_PACKAGES__UPSTREAM_CACHE_SECONDS", "0")
    platform = make_ws_platform("sandbox")
    server.ensure_running(platform.settings)
    with UnixServer(platform.app, paths.api_socket(platform.settings)), LiveServer(platform.app) as live:
        platform.live_url = live.url  # type: ignore[attr-defined]
        yield platform


PIP_IN_WORKSPACE = r"""
import json, os, subprocess
def run(*args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=240)
    return {"code": r.returncode, "out": (r.stdout + r.stderr)[-3000:]}
out = {}
out["internal"] = run("pip", "install", "company-stats")
out["upstream"] = run("pip", "install", "tinypkg==1.0")
out["denied"] = run("pip", "install", "blockedpkg")
out["uv"] = run("uv", "pip", "install", "otherpkg")
out["import"] = run("python", "-c", "import company_stats, tinypkg, otherpkg; "
                    "print(company_stats.VERSION, tinypkg.VERSION, otherpkg.VERSION)")
print(json.dumps(out))
"""


def test_pip_and_uv_install_from_a_sandboxed_workspace(pip_platform: Platform, tmp_path: Path) -> None:
    platform = pip_platform
    platform.add_user("pat", "admin")
    admin = platform.as_user("pat")
    wheel = make_wheel(tmp_path / "build", "company-stats", "0.3.1")
    assert (
        admin.post("/api/v1/packages/internal", files={"file": (wheel.name, wheel.read_bytes())}).status_code
        == 201
    )
    assert (
        admin.post(
            "/api/v1/packages/rules", json={"kind": "deny", "name": "blockedpkg", "note": "licence"}
        ).status_code
        == 201
    )
    client, wid = launch(platform, "alice")
    out = execute(client, wid, PIP_IN_WORKSPACE, timeout=600)
    assert out["error"] is None, out
    result = json.loads(out["stdout"].strip().splitlines()[-1])
    assert result["internal"]["code"] == 0, result["internal"]
    assert result["upstream"]["code"] == 0, result["upstream"]  # cached from the local upstream
    assert result["uv"]["code"] == 0, result["uv"]
    assert result["import"]["out"].split() == ["0.3.1", "1.0", "1.0"], result["import"]
    # the refusal says why, inside pip's own output
    denied = result["denied"]
    assert denied["code"] != 0 and "Refused-by-the-DataLibrary-package-policy" in denied["out"], denied
    assert "deny-list-licence" in denied["out"], denied
    # every install is audited with user, workspace, package and version; admins see them
    log = admin.get("/api/v1/packages/installs").json()
    seen = {(i["action"], i["user"], i["workspace"], i["package"], i["version"]) for i in log}
    for package, version in [("company-stats", "0.3.1"), ("tinypkg", "1.0"), ("otherpkg", "1.0")]:
        assert ("package.install", "alice", str(wid), package, version) in seen, (package, log)
    assert any(
        i["action"] == "package.refused" and i["package"] == "blockedpkg" and i["workspace"] == str(wid)
        for i in log
    )
    assert platform.as_user("alice").get("/api/v1/packages/installs").status_code == 403


TINY_DESCRIPTION = """Package: tinyr
Version: 0.1.0
Title: A Tiny Package Built by the Test
Description: Says hello from the platform's CRAN-like repository.
Authors@R: person("Test", "Author", email = "t@example.org", role = c("aut", "cre"))
License: MIT + file LICENSE
Encoding: UTF-8
"""


def build_r_package(directory: Path, version: str = "0.1.0") -> Path:
    source = directory / "tinyr"
    (source / "R").mkdir(parents=True)
    (source / "DESCRIPTION").write_text(TINY_DESCRIPTION.replace("0.1.0", version))
    (source / "LICENSE").write_text("YEAR: 2026\nCOPYRIGHT HOLDER: test\n")
    (source / "NAMESPACE").write_text("export(hello)\n")
    (source / "R" / "hello.R").write_text('hello <- function() paste("hello from", "tinyr")\n')
    subprocess.run(
        ["R", "CMD", "build", "--no-build-vignettes", "--no-manual", "tinyr"],
        cwd=directory, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return directory / f"tinyr_{version}.tar.gz"


R_IN_WORKSPACE = r"""
r <- getOption("repos")
cat("REPO", sub("//[^@]*@", "//", r[[1]]), "\n")
install.packages("tinyr", quiet = TRUE)
library(tinyr)
cat("RESULT", hello(), "\n")
cat("LIB", find.package("tinyr"), "\n")
res <- tryCatch(install.packages("ggplot2", quiet = TRUE), warning = function(w) conditionMessage(w))
cat("MISSING", res, "\n")
denied <- character()
withCallingHandlers(install.packages("blockr", quiet = TRUE),
  warning = function(w) { denied <<- c(denied, conditionMessage(w)); invokeRestart("muffleWarning") })
cat("DENIED", gsub("\n", " ", paste(denied, collapse = " | ")), "\n")
cat("BLOCKR", requireNamespace("blockr", quietly = TRUE), "\n")
"""


def test_install_packages_in_the_r_kernel(
    pip_platform: Platform,
    r_environment_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    if shutil.which("R") is None:
        pytest.skip("R is not installed")
    platform = pip_platform
    platform.add_user("pat", "admin")
    admin = platform.as_user("pat")
    tarball = build_r_package(tmp_path)
    published = admin.post("/api/v1/packages/r", files={"file": (tarball.name, tarball.read_bytes())})
    assert published.status_code == 201, published.text
    from tests.test_packages_r_policy import r_tarball

    blocked = r_tarball(tmp_path / "blocked", "blockr", "1.0")
    assert (
        admin.post("/api/v1/packages/r", files={"file": (blocked.name, blocked.read_bytes())}).status_code
        == 201
    )
    rule = {"kind": "deny", "name": "blockr", "ecosystem": "r", "note": "licence"}
    assert admin.post("/api/v1/packages/rules", json=rule).status_code == 201
    assert {"blockr", "tinyr"} <= {p["name"] for p in admin.get("/api/v1/packages/r").json()}
    client = client_of(platform, "alice")
    response = client.post("/api/v1/workspaces", json={"product": "r-notebook", "instance_type": "tiny"})
    assert response.status_code == 202, response.text
    wid = response.json()["id"]
    assert wait_state(client, wid, "running", "failed")["state"] == "running"
    out = execute(client, wid, R_IN_WORKSPACE, kernel_name="ir", timeout=300)
    assert out["error"] is None, out
    lines = {
        line.split(" ", 1)[0]: line.split(" ", 1)[1].strip()
        for line in out["stdout"].splitlines()
        if " " in line
    }
    assert lines["REPO"] == "http://127.0.0.1:8790/cran", out
    assert lines["RESULT"] == "hello from tinyr", out
    assert "/R/library/tinyr" in lines["LIB"], out  # the persistent user library
    assert "not available" in lines["MISSING"], out  # upstream CRAN is not reachable
    # a denied package fails, and R's warning names the policy's reason
    assert "blockr-is-on-the-mirror-s-deny-list-licence" in lines["DENIED"], out
    assert lines["BLOCKR"] == "FALSE", out
    log = admin.get("/api/v1/packages/installs").json()
    assert any(
        (i["ecosystem"], i["user"], i["workspace"], i["package"], i["version"])
        == ("r", "alice", str(wid), "tinyr", "0.1.0")
        for i in log
    ), log
    assert any(
        (i["action"], i["workspace"], i["package"]) == ("package.refused", str(wid), "blockr") for i in log
    ), log


def test_r_uploads_are_checked_and_admin_only(pip_platform: Platform, tmp_path: Path) -> None:
    platform = pip_platform
    platform.add_user("pat", "admin")
    admin = platform.as_user("pat")
    alice = platform.as_user("alice")
    tarball = build_r_package(tmp_path)
    data = tarball.read_bytes()
    assert alice.post("/api/v1/packages/r", files={"file": (tarball.name, data)}).status_code == 403
    wrong = admin.post("/api/v1/packages/r", files={"file": ("tinyr_0.2.0.tar.gz", data)})
    assert wrong.status_code == 422 and "file name says" in wrong.text, wrong.text
    junk = admin.post("/api/v1/packages/r", files={"file": ("junk_1.0.tar.gz", b"not a tarball")})
    assert junk.status_code == 422 and "gzip" in junk.text, junk.text
    assert admin.post("/api/v1/packages/r", files={"file": ("../x_1.0.tar.gz", data)}).status_code == 422
    # a new version replaces the old one in the index; the old one moves to Archive/
    assert admin.post("/api/v1/packages/r", files={"file": (tarball.name, data)}).status_code == 201
    newer = build_r_package(tmp_path / "newer", "0.2.0")
    assert (
        admin.post("/api/v1/packages/r", files={"file": (newer.name, newer.read_bytes())}).status_code == 201
    )
    published = alice.get("/api/v1/packages/r").json()  # the session's mirror may hold others' packages
    assert [(p["name"], p["version"]) for p in published if p["name"] == "tinyr"] == [("tinyr", "0.2.0")]
    contrib = cran.contrib(platform.settings)
    assert (contrib / "Archive" / "tinyr" / "tinyr_0.1.0.tar.gz").exists()
    assert "Version: 0.2.0" in (contrib / "PACKAGES").read_text()
    # the repository needs a token, like the Python index
    import httpx

    base = platform.live_url  # type: ignore[attr-defined]
    assert httpx.get(f"{base}/cran/src/contrib/PACKAGES").status_code == 401
    assert httpx.get(f"{base}/cran/src/contrib/PACKAGES", auth=("x", alice.token)).status_code == 200
    assert httpx.get(f"{base}/cran/src/contrib/..%2Fcran.lock", auth=("x", alice.token)).status_code == 404
