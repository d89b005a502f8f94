"""Lineage end to end: ingestion, query, download, export and erasure events (validated
against the official OpenLineage JSON schemas), the dataset and user graphs over the API, the exports
airlock, the compliance report and forwarding to a real HTTP endpoint."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.config import LineageSettings
from datalibrary.lineage import forward
from datalibrary.lineage.models import ExportRequest, LineageEvent
from datalibrary.lineage.naming import Naming, naming_for_url
from datalibrary.privacy.risk import k_anonymity
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.openlineage_check import validate_event

POLICY = "name: dm-policy\nversion: 3\ncolumns:\n  SUBJ: drop\n  '*': keep\n"


@pytest.fixture
def lake(platform: Platform, tmp_path: Path) -> Platform:
    """study.dm ingested under a policy that drops a column; ada may read it."""
    add_policy(platform, POLICY)
    write_csv(
        tmp_path / "dm.csv",
        {
            "SUBJ": [f"S{i}" for i in range(60)],
            "SITEID": [str(700 + i % 3) for i in range(60)],
            "SEX": ["M" if i % 2 else "F" for i in range(60)],
            "AGE": [30 + i % 4 for i in range(60)],
        },
    )
    assert ingest(platform, tmp_path / "dm.csv", "study.dm", policy="dm-policy")[1] == "succeeded"
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    platform.add_user("audrey", "auditor")
    response = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:ada", "table": "study.dm"}
    )
    assert response.status_code == 201, response.text
    # public: its downloads go directly (the download policy is tested in test_download_policy.py)
    public = platform.as_user("stew").request(
        "PATCH", "/api/v1/datasets/study/dm", json={"sensitivity": "public"}
    )
    assert public.status_code == 200, public.text
    return platform


def naming(platform: Platform) -> Naming:
    return naming_for_url(platform.settings.connect_url())


def events(platform: Platform, job: str | None = None) -> list[LineageEvent]:
    with platform.db.session() as session:
        query = select(LineageEvent).order_by(LineageEvent.id)
        if job:
            query = query.where(LineageEvent.job_name == job)
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


def test_every_event_validates_and_ingestion_names_file_policy_and_masking(lake: Platform) -> None:
    ada = lake.as_user("ada")
    assert (
        ada.post("/api/v1/query", json={"sql": "SELECT * FROM study.dm", "client": "sdk"}).status_code == 200
    )
    download = ada.post("/api/v1/query", json={"sql": "SELECT SITEID FROM study.dm", "format": "csv"})
    assert download.status_code == 200
    every = events(lake)
    assert {e.job_name for e in every} >= {"ingest", "query", "download"}
    for event in every:
        validate_event(event.payload)
    start, complete = [e for e in every if e.job_name == "ingest"]
    assert (start.event_type, complete.event_type) == ("START", "COMPLETE")
    assert start.run_id == complete.run_id
    source = complete.payload["inputs"][0]
    # the file by its path (naming spec: namespace "file", name = path); the hash in a facet
    job_path = complete.payload["inputs"][0]["name"]
    assert source["namespace"] == "file" and job_path.startswith("/") and Path(job_path).name != ""
    file_facet = source["facets"]["datalibrary_sourceFile"]
    assert len(file_facet["sha256"]) == 64 and file_facet["sha256"] not in job_path
    assert file_facet["fileName"] == "dm.csv" and file_facet["size"] > 0 and file_facet["deliveredAt"]
    output = complete.payload["outputs"][0]
    assert output["name"] == "study.dm"
    assert output["facets"]["datalibrary_policy"]["version"] == "3"
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["SITEID", "SEX", "AGE"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 60
    assert int(output["facets"]["version"]["datasetVersion"]) > 0
    lineage_fields = output["facets"]["columnLineage"]["fields"]
    assert lineage_fields["SITEID"]["inputFields"][0]["transformations"][0]["masking"] is False
    query = [e for e in every if e.job_name == "query"][-1]
    assert query.payload["run"]["facets"]["datalibrary_actor"]["user"] == "ada"
    first_query = [e for e in every if e.job_name == "query"][1]
    assert first_query.payload["run"]["facets"]["datalibrary_actor"]["via"] == "sdk"
    dl = [e for e in every if e.job_name == "download"]
    assert [e.event_type for e in dl] == ["START", "COMPLETE"]
    assert dl[1].payload["outputs"][0]["outputFacets"]["outputStatistics"]["size"] == len(download.content)


def test_masked_columns_are_marked_with_the_policy(sqlite_platform: Platform, tmp_path: Path) -> None:
    from datalibrary.lineage.facets import column_lineage_facet

    facet = column_lineage_facet("sha256:x", {"A": "keep", "B": "pseudonymize"}, "p@2")
    assert facet.fields["B"].inputFields[0].transformations[0].masking is True
    assert facet.fields["B"].transformationDescription == "pseudonymize (p@2)"
    assert facet.fields["A"].inputFields[0].transformations[0].masking is False


def test_dataset_and_user_lineage_over_the_api(lake: Platform) -> None:
    ada = lake.as_user("ada")
    ada.post("/api/v1/query", json={"sql": "SELECT * FROM study.dm"})
    ada.post("/api/v1/query", json={"sql": "SELECT * FROM study.dm", "format": "parquet"})
    auditor = lake.as_user("audrey")
    body = auditor.get("/api/v1/lineage/datasets/study.dm").json()
    ingestion = body["upstream"]["ingestions"][0]
    assert ingestion["file_name"] == "dm.csv" and len(ingestion["sha256"]) == 64
    assert ingestion["policy"] == "dm-policy@3" and ingestion["rows"] == 60
    assert body["upstream"]["policies"][0]["name"] == "dm-policy"
    assert body["downstream"]["totals"] == {"query": 2, "download": 1}
    assert body["downstream"]["users"][0]["user"] == "ada"
    node_ids = {n["id"] for n in body["graph"]["nodes"]}
    assert {"dataset:study.dm", "user:ada", "job:query", "policy:dm-policy@3"} <= node_ids
    user = auditor.get("/api/v1/lineage/users/ada").json()
    assert user["datasets"][0]["dataset"] == "study.dm"
    assert user["datasets"][0]["by_kind"] == {"query": 2, "download": 1}
    # a scientist sees their own page, not another user's, and no dataset graph
    assert ada.get("/api/v1/lineage/users/ada").status_code == 200
    assert ada.get("/api/v1/lineage/users/audrey").status_code == 403
    assert ada.get("/api/v1/lineage/datasets/study.dm").status_code == 403
    for bad in ("nodot", "a.b.c", "x" * 300 + ".t", "s.t;drop"):
        assert auditor.get(f"/api/v1/lineage/datasets/{bad}").status_code in (404, 422)


def test_export_airlock_query_flow(lake: Platform) -> None:
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    bad = ada.post(
        "/api/v1/exports",
        json={"sql": "SELECT 1", "path": "x.csv", "purpose": "p" * 20, "destination": "laptop"},
    )
    assert bad.status_code == 422
    short = ada.post(
        "/api/v1/exports", json={"sql": "SELECT * FROM study.dm", "purpose": "why", "destination": "laptop"}
    )
    assert short.status_code == 422
    made = ada.post(
        "/api/v1/exports",
        json={
            "sql": "SELECT SITEID, SEX, AGE FROM study.dm",
            "purpose": "Figures for the paper draft",
            "destination": "university laptop",
            "format": "csv",
        },
    )
    assert made.status_code == 201, made.text
    export = made.json()
    assert export["state"] == "pending" and export["datasets"] == ["study.dm"]
    assert ada.post(f"/api/v1/exports/{export['id']}/download").status_code == 409
    summary = stew.get(f"/api/v1/exports/{export['id']}/summary", params={"qi": ["SITEID", "SEX"]}).json()
    assert summary["rows"] == 60 and [c["name"] for c in summary["columns"]] == ["SITEID", "SEX", "AGE"]
    assert summary["risk"]["k"] == 10 and summary["risk"]["passes"] is False  # 6 classes of 10
    decided = stew.post(
        f"/api/v1/exports/{export['id']}/decision",
        json={"decision": "approve", "quasi_identifiers": ["SITEID"], "note": "ok"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "approved" and decided.json()["summary"]["risk"]["k"] == 20
    again = stew.post(f"/api/v1/exports/{export['id']}/decision", json={"decision": "deny"})
    assert again.status_code == 409
    assert lake.as_user("mallory").post(f"/api/v1/exports/{export['id']}/download").status_code == 404
    got = ada.post(f"/api/v1/exports/{export['id']}/download")
    assert got.status_code == 200
    rows = list(csv.reader(io.StringIO(got.text)))
    assert rows[0] == ["SITEID", "SEX", "AGE"] and len(rows) == 61
    assert ada.post(f"/api/v1/exports/{export['id']}/download").status_code == 409  # once
    with lake.db.session() as session:
        stored = session.get(ExportRequest, export["id"])
        assert stored.state == "downloaded" and not Path(stored.file_path).exists()
        actions = set(
            session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"export:{export['id']}"))
        )
    assert actions == {"export.request", "export.approve", "export.download"}
    trail = [e for e in events(lake, "export")]
    assert [e.event_type for e in trail] == ["START", "COMPLETE"]
    for event in trail:
        validate_event(event.payload)
    # named where the data left: this installation's URL + the download path
    left = trail[1].payload["outputs"][0]
    assert (left["namespace"], left["name"]) == (
        naming(lake).base_url,
        f"/api/v1/exports/{export['id']}/download",
    )
    mine = ada.get("/api/v1/exports").json()
    assert [x["id"] for x in mine] == [export["id"]]


def test_export_of_a_workspace_file_refuses_traversal_and_can_be_denied(lake: Platform) -> None:
    from tests.test_exports_airlock import workspace_home

    lake.as_user("ada")
    _, home = workspace_home(lake, "ada")  # homes are homes/<workspace id>
    (home / "out").mkdir(parents=True)
    (home / "out" / "table.csv").write_text("AGE,SEX\n30,M\n31,F\n")
    (lake.settings.home / "secret.txt").write_text("no")
    (home / "link.csv").symlink_to(lake.settings.home / "secret.txt")
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    base = {"purpose": "share aggregate with partner", "destination": "partner sftp"}
    for path in ("../../../secret.txt", "/etc/passwd", "out/../../x", "link.csv", "missing.csv", ""):
        response = ada.post("/api/v1/exports", json=base | {"path": path})
        assert response.status_code in (422, 404), (path, response.status_code)
    made = ada.post("/api/v1/exports", json=base | {"path": "out/table.csv"}).json()
    summary = stew.get(f"/api/v1/exports/{made['id']}/summary").json()
    assert summary["rows"] == 2 and summary["risk"]["k"] == 1
    assert summary["risk"]["named_by"] == "suggested from column names"
    denied = stew.post(
        f"/api/v1/exports/{made['id']}/decision", json={"decision": "deny", "note": "too risky"}
    )
    assert denied.json()["state"] == "denied"
    assert ada.post(f"/api/v1/exports/{made['id']}/download").status_code == 409
    assert [e.event_type for e in events(lake, "export")] == ["START", "FAIL"]


def test_export_reviewer_cannot_review_own_request_and_expired_exports_are_deleted(lake: Platform) -> None:
    from datetime import timedelta

    from datalibrary.db.base import utcnow
    from datalibrary.lineage.exports import expire_exports

    lake.add_user("boss", "steward", "scientist")
    boss = lake.as_user("boss")
    lake.as_user("stew").post("/api/v1/grants", json={"principal": "user:boss", "table": "study.dm"})
    made = boss.post(
        "/api/v1/exports",
        json={"sql": "SELECT AGE FROM study.dm", "purpose": "my own analysis", "destination": "home"},
    ).json()
    assert (
        boss.post(f"/api/v1/exports/{made['id']}/decision", json={"decision": "approve"}).status_code == 403
    )
    assert (
        lake.as_user("stew")
        .post(f"/api/v1/exports/{made['id']}/decision", json={"decision": "approve"})
        .status_code
        == 200
    )
    with lake.db.session() as session:
        session.get(ExportRequest, made["id"]).expires_at = utcnow() - timedelta(seconds=1)
    with lake.db.session() as session:
        assert expire_exports(session) == 1
        stored = session.get(ExportRequest, made["id"])
        assert stored.state == "expired" and not Path(stored.file_path).exists()
    assert [e.event_type for e in events(lake, "export")] == ["START", "ABORT"]


def test_compliance_report_json_csv_and_permissions(lake: Platform) -> None:
    ada, bob = lake.as_user("ada"), lake.as_user("bob")
    ada.post("/api/v1/query", json={"sql": "SELECT * FROM study.dm", "project": None})
    asked = bob.post(
        "/api/v1/access-requests", json={"table": "study.dm", "justification": "Safety signal study"}
    )
    assert asked.status_code == 201, asked.text
    decided = lake.as_user("stew").post(
        f"/api/v1/access-requests/{asked.json()['id']}/decision", json={"decision": "approve"}
    )
    assert decided.status_code == 200, decided.text
    assert bob.post("/api/v1/query", json={"sql": "SELECT AGE FROM study.dm"}).status_code == 200
    auditor = lake.as_user("audrey")
    body = auditor.get("/api/v1/lineage/report", params={"scope": "study"}).json()
    assert body["audit_chain"]["ok"] is True
    assert [a["user"] for a in body["accesses"]] == ["ada", "bob"]
    assert body["accesses"][1]["purpose"] == "Safety signal study"

    assert body["policies"][0]["policy"] == "dm-policy" and body["policies"][0]["version"] == "3"
    text = auditor.get("/api/v1/lineage/report", params={"scope": "study.dm", "format": "csv"}).text
    sections = [row["section"] for row in csv.DictReader(io.StringIO(text))]
    assert sections[:2] == ["report", "audit_chain"] and "access" in sections and "policy" in sections
    assert ada.get("/api/v1/lineage/report", params={"scope": "study"}).status_code == 403
    bad = auditor.get("/api/v1/lineage/report", params={"scope": "a.b.c"})
    assert bad.status_code == 422
    empty = auditor.get(
        "/api/v1/lineage/report",
        params={"scope": "study", "start": "2000-01-01T00:00:00", "end": "2000-02-01"},
    ).json()
    assert empty["accesses"] == []


def test_erasure_emits_lineage_without_the_subject(lake: Platform) -> None:
    from datalibrary.auth.permissions import Principal
    from datalibrary.lake.catalog import open_lake
    from datalibrary.lake.erasure import erase_subject

    with lake.db.session() as session:
        erase_subject(
            session, Principal.system("test"), open_lake(lake.settings), namespace="study", subject="S7"
        )
    trail = events(lake, "erasure")
    assert [e.event_type for e in trail] == ["START", "COMPLETE"]
    for event in trail:
        validate_event(event.payload)
        assert "S7" not in json.dumps(event.payload)
    report = lake.as_user("audrey").get("/api/v1/lineage/report", params={"scope": "study"}).json()
    assert report["erasures"][0]["dataset"] == "study.dm"


def test_k_anonymity_counts_classes() -> None:
    import pyarrow as pa

    table = pa.table({"AGE": [30] * 11 + [40] * 2 + [None], "SEX": ["M"] * 11 + ["F"] * 3})
    report = k_anonymity(table, ["age", "sex", "zip"], threshold=0.091)  # 0.091: k >= 11
    assert report["threshold_k"] == 11 and k_anonymity(table, ["age"])["threshold_k"] == 12
    assert report["k"] == 1 and report["classes"] == 3 and report["missing"] == ["zip"]
    assert report["rows_at_risk"] == 3 and report["max_risk"] == 1.0
    assert k_anonymity(table, [])["k"] is None


class _Endpoint(BaseHTTPRequestHandler):
    """A real OpenLineage receiver that fails until told to recover."""

    received: list[dict] = []
    failing = True

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).failing:
            self.send_response(503)
        else:
            type(self).received.append(json.loads(body))
            self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_forwarding_retries_while_the_endpoint_is_down_then_catches_up(sqlite_platform: Platform) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/v1/lineage"
        settings = LineageSettings(
            forward_url=url, forward_interval_seconds=0.01, forward_max_backoff_seconds=0.01
        )
        ada = sqlite_platform.as_user("ada")
        for _ in range(3):  # the platform keeps answering while the endpoint is down
            assert ada.post("/api/v1/query", json={"sql": "SELECT * FROM nothing.here"}).status_code == 404
        first = forward.forward_once(sqlite_platform.db, settings)
        assert first["sent"] == 0 and first["error"] == "HTTP 503"
        with sqlite_platform.db.session() as session:
            state = forward.status(session, url)
            assert state["backlog"] == 6 and state["failures"] == 1
        _Endpoint.failing = False
        time.sleep(0.02)  # past the (tiny) backoff
        assert forward.forward_once(sqlite_platform.db, settings)["sent"] == 6
        assert forward.forward_once(sqlite_platform.db, settings)["sent"] == 0
        assert [e["eventType"] for e in _Endpoint.received] == ["START", "FAIL"] * 3
        with sqlite_platform.db.session() as session:
            assert forward.status(session, url)["backlog"] == 0
        # the server's background thread drains new events on its own
        worker = forward.LineageWorker(sqlite_platform.db, settings)
        worker.start()
        try:
            ada.post("/api/v1/query", json={"sql": "SELECT * FROM nothing.here"})
            deadline = time.monotonic() + 30
            while len(_Endpoint.received) < 8 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            worker.stop()
        assert len(_Endpoint.received) == 8
        # an endpoint that does not answer at all is an error too, not a hang
        dead = LineageSettings(forward_url="http://127.0.0.1:1/x", forward_timeout_seconds=1)
        assert forward.forward_once(sqlite_platform.db, dead)["error"]
    finally:
        server.shutdown()
        _Endpoint.failing, _Endpoint.received = True, []
