"""REST: uploads (single and chunked, size limit), jobs, catalog; the landing folder; the scheduler."""

from __future__ import annotations

import io
import os
import time

import pyarrow as pa
import pyarrow.csv as pacsv

from datalibrary.ingest.watch import LandingWatcher
from datalibrary.ingest.worker import run_pending
from datalibrary.lake.scheduler import run_if_due
from tests.helpers import Platform
from tests.lake_helpers import add_policy, read_table


def csv_bytes(rows: dict) -> bytes:  # type: ignore[type-arg]
    sink = io.BytesIO()
    pacsv.write_csv(pa.table(rows), sink)
    return sink.getvalue()


def test_upload_then_catalog_over_the_api(platform: Platform) -> None:
    add_policy(platform)
    platform.add_user("stew", "steward")
    steward = platform.as_user("stew")
    body = csv_bytes({"USUBJID": ["A", "B", "C"], "AGE": [30, None, 50]})
    response = steward.post(
        "/api/v1/ingest/files",
        params={"table": "study.dm", "policy": "keep-all", "filename": "dm.csv"},
        content=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] == "queued" and job["size_bytes"] == len(body) and job["source_via"] == "upload"
    assert run_pending(platform.settings, platform.db) == [(job["id"], "succeeded")]
    assert steward.get(f"/api/v1/ingest/jobs/{job['id']}").json()["rows_written"] == 3
    listed = steward.get("/api/v1/datasets", params={"q": "dm"}).json()
    assert [d["name"] for d in listed] == ["study.dm"] and listed[0]["row_count"] == 3
    patched = steward.request(
        "PATCH",
        "/api/v1/datasets/study/dm",
        json={"title": "Demographics", "tags": ["sdtm"], "sensitivity": "restricted"},
    )
    assert patched.status_code == 200, patched.text
    scientist = platform.as_user("sci")
    assert scientist.get("/api/v1/datasets/study/dm").status_code == 404, "no grant: as if it did not exist"
    granted = steward.post("/api/v1/grants", json={"principal": "user:sci", "table": "study.dm"})
    assert granted.status_code == 201, granted.text
    detail = scientist.get("/api/v1/datasets/study/dm").json()
    assert detail["title"] == "Demographics" and detail["tags"] == ["sdtm"]
    assert detail["subject_column"] == "USUBJID"
    assert detail["jobs"] == [], "job details are for those who ingest"
    age = next(p for p in detail["profile"] if p["name"] == "AGE")
    assert age["null_share"] == round(1 / 3, 4) and age["min"] == "30" and age["max"] == "50"
    subject = next(p for p in detail["profile"] if p["name"] == "USUBJID")
    assert subject["distinct"] == 3 and subject["min"] is None, "text values are not shown"
    assert scientist.get("/api/v1/datasets", params={"tag": "nope"}).json() == []
    assert scientist.get("/api/v1/ingest/jobs").status_code == 403
    bad = steward.request("PATCH", "/api/v1/datasets/study/dm", json={"sensitivity": "secret"})
    assert bad.status_code == 422
    # the schema allows null: it clears tags and text (the title falls back to the name)
    cleared = steward.request(
        "PATCH", "/api/v1/datasets/study/dm", json=dict.fromkeys(("tags", "title", "owner", "source"))
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["tags"] == [] and cleared.json()["title"] == "dm" and cleared.json()["owner"] == ""
    assert scientist.get("/api/v1/datasets/study/nothing").status_code == 404


def test_chunked_upload_resumes_at_the_right_offset(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    add_policy(platform)
    client = platform.as_user("admin")
    body = csv_bytes({"ID": [f"s{i}" for i in range(20000)], "V": list(range(20000))})
    upload = client.post("/api/v1/ingest/uploads", json={"filename": "../big lab.csv"}).json()
    assert upload["filename"] == "big_lab.csv"
    half = len(body) // 2
    path = f"/api/v1/ingest/uploads/{upload['id']}"
    assert client.request("PUT", path, params={"offset": 0}, content=body[:half]).json()["size_bytes"] == half
    wrong = client.request("PUT", path, params={"offset": 0}, content=body[half:])
    assert wrong.status_code == 409 and wrong.json()["size_bytes"] == half
    assert client.get(path).json()["size_bytes"] == half
    client.request("PUT", path, params={"offset": half}, content=body[half:])
    typo = client.post(f"{path}/complete", json={"table": "lab.big", "policy": "keep-all", "delimeter": ";"})
    assert typo.status_code == 422 and "body.delimeter" in typo.json()["detail"], "unknown fields: refused"
    job = client.post(f"{path}/complete", json={"table": "lab.big", "policy": "keep-all"}).json()
    assert job["sha256"] and job["size_bytes"] == len(body)
    assert client.post(f"{path}/complete", json={"table": "lab.big", "policy": "keep-all"}).status_code == 409
    run_pending(platform.settings, platform.db)
    assert read_table(platform, "lab.big").num_rows == 20000


def test_uploads_over_the_limit_are_refused(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    add_policy(platform)
    small = platform.settings.model_copy(
        update={"ingest": platform.settings.ingest.model_copy(update={"upload_max_mb": 1})}
    )
    platform.app.state.settings = small
    client = platform.as_user("admin")
    response = client.post(
        "/api/v1/ingest/files",
        params={"table": "a.b", "policy": "keep-all", "filename": "x.csv"},
        content=b"A\n" + b"1\n" * (600 * 1024),
    )
    assert response.status_code == 413 and response.json()["type"] == "/problems/too-large"
    assert list((platform.settings.home / "ingest" / "uploads").iterdir()) == []


def test_files_dropped_in_the_landing_folder_are_ingested(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    add_policy(platform)
    folder = platform.settings.home / "landing" / "site1" / "vitals"
    folder.mkdir(parents=True)
    (folder / "POLICY").write_text("keep-all\n")
    dropped = folder / "vs.csv"
    dropped.write_bytes(csv_bytes({"ID": ["a", "b"], "V": [1, 2]}))
    old = time.time() - 60
    os.utime(dropped, (old, old))
    watcher = LandingWatcher(platform.settings, platform.db)
    assert watcher.scan() == [], "a file is taken only once it stopped changing"
    queued = watcher.scan()
    assert len(queued) == 1 and not dropped.exists()
    assert run_pending(platform.settings, platform.db) == [(queued[0], "succeeded")]
    assert read_table(platform, "site1.vitals").num_rows == 2
    (folder / "POLICY").unlink()
    second = folder / "more.csv"
    second.write_bytes(csv_bytes({"ID": ["c"], "V": [3]}))
    os.utime(second, (old, old))
    watcher.scan()
    assert len(watcher.scan()) == 1, "later files use the table's policy"


def test_the_scheduler_runs_maintenance_once_a_day(sqlite_platform: Platform) -> None:
    first = run_if_due(sqlite_platform.settings, sqlite_platform.db)
    assert first is not None and first["errors"] == 0
    assert run_if_due(sqlite_platform.settings, sqlite_platform.db) is None


def test_policies_over_the_api(sqlite_platform: Platform) -> None:
    client = sqlite_platform.as_user("admin")
    created = client.post("/api/v1/policies", json={"document": "name: p\nversion: 1\ncolumns:\n  A: keep\n"})
    assert created.status_code == 201 and created.json()["sha256"]
    changed = client.post("/api/v1/policies", json={"document": "name: p\nversion: 1\ncolumns:\n  A: drop\n"})
    assert changed.status_code == 409
    invalid = client.post(
        "/api/v1/policies", json={"document": "name: p\nversion: 2\ncolumns:\n  A: shred\n"}
    )
    assert invalid.status_code == 422 and "unknown action 'shred'" in invalid.json()["detail"]
    # the built-in policies (sdtm, ehr; #5) are stored by init
    assert [p["name"] for p in client.get("/api/v1/policies").json()] == ["ehr", "p", "sdtm"]
