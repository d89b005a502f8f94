"""R packages under the mirror's policy: the admin's allow and deny rules (ecosystem ``r``)
and the allow-list switch govern what ``install.packages()`` may fetch from ``/cran/``.
Real parts: the platform served by uvicorn, real R (``Rscript``) installing from it, the
audit log. The sandboxed R kernel is covered in test_packages_workspace.py."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from datalibrary.packages import cran
from tests.helpers import LiveServer, Platform


def r_tarball(directory: Path, name: str, version: str) -> Path:
    """A minimal R source package (what R CMD INSTALL needs), built without R."""
    files = {
        "DESCRIPTION": (
            f"Package: {name}\nVersion: {version}\nTitle: Test Package {name}\n"
            f"Description: Says hello.\nAuthors@R: person('T', 'A', email = 't@example.org', "
            f"role = c('aut', 'cre'))\nLicense: MIT\nEncoding: UTF-8\n"
        ),
        "NAMESPACE": "export(hello)\n",
        f"R/{name}.R": f'hello <- function() "hello from {name}"\n',
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}_{version}.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for relative, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{relative}")
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def r_platform(sqlite_platform: Platform, tmp_path: Path) -> Iterator[tuple[Platform, str]]:
    platform = sqlite_platform
    platform.add_user("pat", "admin")
    admin = platform.as_user("pat")
    for name, version in (("tinyr", "0.1.0"), ("blockr", "1.0"), ("rangedr", "2.0-1")):
        tarball = r_tarball(tmp_path / "built", name, version)
        published = admin.post("/api/v1/packages/r", files={"file": (tarball.name, tarball.read_bytes())})
        assert published.status_code == 201, published.text
    with LiveServer(platform.app) as live:
        yield platform, live.url


def index_records(text: str) -> dict[str, dict[str, str]]:
    return {
        record["Package"]: record
        for record in (cran.parse_dcf(block) for block in text.split("\n\n") if block.strip())
    }


def test_denied_r_packages_point_at_their_refusal(r_platform) -> None:  # type: ignore[no-untyped-def]
    platform, base = r_platform
    admin, alice = platform.as_user("pat"), platform.as_user("alice")
    auth = ("x", alice.token)
    # a Python rule of the same name does not touch R
    assert admin.post("/api/v1/packages/rules", json={"kind": "deny", "name": "tinyr"}).status_code == 201
    denied = admin.post(
        "/api/v1/packages/rules", json={"kind": "deny", "name": "blockr", "ecosystem": "r", "note": "licence"}
    )
    assert denied.status_code == 201 and denied.json()["ecosystem"] == "r", denied.text
    ranged = admin.post(
        "/api/v1/packages/rules",
        json={"kind": "deny", "name": "RangedR", "ecosystem": "r", "specifier": ">=2"},
    )
    assert ranged.status_code == 201 and ranged.json()["name"] == "rangedr", ranged.text
    index = httpx.get(f"{base}/cran/src/contrib/PACKAGES", auth=auth)
    assert index.status_code == 200
    records = index_records(index.text)
    assert "Path" not in records["tinyr"]
    assert records["blockr"]["Path"].startswith("refused/Refused-by-the-DataLibrary-package-policy")
    assert "deny-list-licence" in records["blockr"]["Path"]
    assert "version-2.0-1-of-rangedr-is-not-allowed" in records["rangedr"]["Path"]
    packed = httpx.get(f"{base}/cran/src/contrib/PACKAGES.gz", auth=auth)
    assert gzip.decompress(packed.content).decode() == index.text
    # the tarball itself is refused, with the reason, and the refusal is recorded
    tarball = httpx.get(f"{base}/cran/src/contrib/blockr_1.0.tar.gz", auth=auth)
    assert tarball.status_code == 403 and "deny list (licence)" in tarball.text
    path = records["blockr"]["Path"]
    refused = httpx.get(f"{base}/cran/src/contrib/{path}/blockr_1.0.tar.gz", auth=auth)
    assert refused.status_code == 403 and "deny list" in refused.text
    assert httpx.get(f"{base}/cran/src/contrib/tinyr_0.1.0.tar.gz", auth=auth).status_code == 200
    log = admin.get("/api/v1/packages/installs").json()
    outcomes = [(i["ecosystem"], i["action"], i["package"], i["user"]) for i in log]
    assert outcomes.count(("r", "package.refused", "blockr", "alice")) == 2, log
    assert ("r", "package.install", "tinyr", "alice") in outcomes
    # the refused address needs a token too, and names nothing outside the repository
    assert httpx.get(f"{base}/cran/src/contrib/{path}/blockr_1.0.tar.gz").status_code == 401
    assert httpx.get(f"{base}/cran/src/contrib/{path}/..%2F..%2Fx", auth=auth).status_code == 404


def test_allow_list_mode_governs_r_packages(r_platform) -> None:  # type: ignore[no-untyped-def]
    platform, base = r_platform
    admin, alice = platform.as_user("pat"), platform.as_user("alice")
    assert admin.put("/api/v1/packages/policy", json={"mode": "allowlist"}).status_code == 200
    allowed = {"kind": "allow", "name": "tinyr", "ecosystem": "r"}
    assert admin.post("/api/v1/packages/rules", json=allowed).status_code == 201
    ranged = {"kind": "allow", "name": "rangedr", "ecosystem": "r", "specifier": "<2"}
    assert admin.post("/api/v1/packages/rules", json=ranged).status_code == 201
    records = index_records(httpx.get(f"{base}/cran/src/contrib/PACKAGES", auth=("x", alice.token)).text)
    assert "Path" not in records["tinyr"]
    assert "not-on-the-mirror-s-allow-list-allow-list-mode" in records["blockr"]["Path"]
    assert "version-2.0-1-of-rangedr-is-not-allowed" in records["rangedr"]["Path"]
    assert httpx.get(f"{base}/cran/src/contrib/blockr_1.0.tar.gz", auth=("x", alice.token)).status_code == 403
    # only admins change the rules; bad rules are refused with the field named
    assert alice.post("/api/v1/packages/rules", json=allowed).status_code == 403
    bad = admin.post("/api/v1/packages/rules", json={"kind": "allow", "name": "no/such", "ecosystem": "r"})
    assert bad.status_code == 422 and "name" in bad.text, bad.text
    unknown = admin.post("/api/v1/packages/rules", json={"kind": "allow", "name": "x", "ecosystem": "julia"})
    assert unknown.status_code == 422
    again = admin.post("/api/v1/packages/rules", json=allowed)
    assert again.status_code == 409 and "r package 'tinyr'" in again.text, again.text


def test_install_packages_shows_the_refusal(r_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Real R: the allowed package installs, the denied one fails and R's warning carries
    the reason (the address the index points it at)."""
    if shutil.which("Rscript") is None:
        pytest.skip("R is not installed")
    platform, base = r_platform
    admin, alice = platform.as_user("pat"), platform.as_user("alice")
    rule = {"kind": "deny", "name": "blockr", "ecosystem": "r", "note": "licence"}
    assert admin.post("/api/v1/packages/rules", json=rule).status_code == 201
    library = tmp_path / "library"
    library.mkdir()
    repo = base.replace("http://", f"http://alice:{alice.token}@") + "/cran"
    script = f"""
options(repos = c(DataLibrary = "{repo}"))
install.packages("tinyr", lib = "{library}", quiet = TRUE)
library(tinyr, lib.loc = "{library}")
cat("RESULT", hello(), "\\n")
res <- withCallingHandlers(
  install.packages("blockr", lib = "{library}", quiet = TRUE),
  warning = function(w) {{ cat("WARNING", conditionMessage(w), "\\n"); invokeRestart("muffleWarning") }}
)
cat("INSTALLED", "blockr" %in% rownames(installed.packages(lib.loc = "{library}")), "\\n")
"""
    result = subprocess.run(
        ["Rscript", "--vanilla", "-e", script], capture_output=True, text=True, timeout=300, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "RESULT hello from tinyr" in output, output
    assert "INSTALLED FALSE" in output, output
    warnings = "\n".join(line for line in output.splitlines() if line.startswith("WARNING"))
    assert (
        "Refused-by-the-DataLibrary-package-policy-blockr-is-on-the-mirror-s-deny-list-licence" in warnings
    ), output
    log = admin.get("/api/v1/packages/installs").json()
    assert any(i["action"] == "package.refused" and i["package"] == "blockr" for i in log), log
    assert any(i["action"] == "package.install" and i["package"] == "tinyr" for i in log), log
