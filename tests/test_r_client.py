"""The R client (clients/r/datalibrary) against a live platform over its Unix socket with a
workspace token, as inside a workspace: real R (Rscript), real lake, grants applied."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.workspace_helpers import UnixServer

PACKAGE = Path(__file__).parent.parent / "src" / "datalibrary" / "workspaces" / "inside" / "r" / "datalibrary"


def r_ready() -> bool:
    if not shutil.which("Rscript"):
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "library(curl); library(jsonlite)"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not r_ready(), reason="R with r-cran-curl and r-cran-jsonlite is needed")
def test_r_client_queries_the_lake_with_grants(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    add_policy(platform)
    write_csv(tmp_path / "dm.csv", {"USUBJID": ["S1", "S2", "S3"], "SITEID": ["701", "702", "701"]})
    ingest(platform, tmp_path / "dm.csv", "cdisc.dm")
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    granted = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.dm", "row_filter": "siteid = 701"}
    )
    assert granted.status_code == 201, granted.text
    with platform.db.session() as session:
        token = auth_service.create_token(
            session, Principal.system("test"), "ada", name="ws", scope="workspace:1"
        ).secret
    library = tmp_path / "rlib"
    library.mkdir()
    install = subprocess.run(
        ["R", "CMD", "INSTALL", "-l", str(library), str(PACKAGE)], capture_output=True, text=True, check=False
    )
    assert install.returncode == 0, install.stderr[-2000:]
    script = """
library(datalibrary)
frame <- dl_sql("SELECT siteid, count(*) AS n FROM cdisc.dm GROUP BY siteid")
stopifnot(is.data.frame(frame))
cat("rows", nrow(frame), "site", frame[[1]][1], "n", frame[[2]][1], "\\n")
cat("tables", dl_tables()$name, "\\n")
cat("me", dl_me()$name, "\\n")
r <- tryCatch(dl_sql("SELECT * FROM cdisc.nothing"), error = function(e) conditionMessage(e))
cat("error", substr(r, 1, 14), "\\n")
"""
    socket = tmp_path / "api.sock"
    with UnixServer(platform.app, socket):
        run = subprocess.run(
            ["Rscript", "-e", script], capture_output=True, text=True, check=False, timeout=120,
            env={"PATH": "/usr/bin:/bin", "R_LIBS": str(library), "DATALIBRARY_URL": f"unix://{socket}",
                 "DATALIBRARY_TOKEN": token, "HOME": str(tmp_path)},
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines())
    assert lines["rows"].split() == ["1", "site", "701", "n", "2"]  # the row filter applied
    assert lines["tables"].strip() == "cdisc.dm"
    assert lines["me"].strip() == "ada"
    assert lines["error"].startswith("DataLibrary 4")
    # metered and traced like any query
    with platform.db.session() as session:
        from sqlalchemy import select

        from datalibrary.query.models import QueryRecord

        assert session.scalars(select(QueryRecord).where(QueryRecord.user == "ada")).first() is not None
