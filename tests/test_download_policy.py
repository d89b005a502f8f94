"""Downloads follow the airlock policy: row-level downloads of datasets whose sensitivity
needs review become export requests (holding exactly the computed result); aggregates whose
smallest cell meets the threshold, public datasets and reads inside a workspace go directly."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from tests.helpers import ApiClient, Platform
from tests.lake_helpers import add_policy, ingest, write_csv


@pytest.fixture
def lake(platform: Platform, tmp_path: Path) -> Platform:
    """study.dm: 60 subjects over 3 sites (20 each), one subject at site 799."""
    add_policy(platform)
    write_csv(
        tmp_path / "dm.csv",
        {
            "USUBJID": [f"S{i}" for i in range(61)],
            "SITEID": [str(700 + i % 3) for i in range(60)] + ["799"],
            "AGE": [30 + i % 4 for i in range(61)],
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


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_row_level_download_becomes_an_export_request(lake: Platform, fmt: str) -> None:
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    response = ada.post(
        "/api/v1/query", json={"sql": "SELECT USUBJID, SITEID, AGE FROM study.dm", "format": fmt}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["routed_to_airlock"] is True and "row-level" in body["reason"]
    export = body["export"]
    assert export["state"] == "pending" and export["format"] == fmt and export["datasets"] == ["study.dm"]
    assert export["summary"]["rows"] == 61 and export["summary"]["result_kind"] == "row-level"
    assert "S0" not in response.text, "no row leaves with the routing answer"
    pending = stew.get("/api/v1/exports/review", params={"state": "pending"}).json()
    assert [x["id"] for x in pending] == [export["id"]]
    approved = stew.post(
        f"/api/v1/exports/{export['id']}/decision",
        json={"decision": "approve", "override_reason": "the partner's DUA covers row-level data"},
    )
    assert approved.status_code == 200, approved.text
    got = ada.post(f"/api/v1/exports/{export['id']}/download")
    assert got.status_code == 200
    if fmt == "parquet":
        assert pq.read_table(io.BytesIO(got.content)).num_rows == 61


def test_aggregate_with_large_cells_downloads_directly(lake: Platform) -> None:
    ada = lake.as_user("ada")
    sql = (
        "SELECT SITEID, COUNT(*) AS n, AVG(AGE) AS mean_age FROM study.dm "
        "WHERE SITEID <> '799' GROUP BY SITEID"
    )
    response = ada.post("/api/v1/query", json={"sql": sql, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.text.count("\n") == 4


def test_aggregate_with_a_small_cell_is_reviewed_as_an_aggregate(lake: Platform) -> None:
    ada, stew = lake.as_user("ada"), lake.as_user("stew")
    sql = "SELECT SITEID, COUNT(*) AS n FROM study.dm GROUP BY SITEID ORDER BY SITEID"
    response = ada.post(
        "/api/v1/query",
        json={"sql": sql, "format": "csv", "purpose": "site enrolment table", "destination": "journal"},
    )
    assert response.status_code == 202, response.text
    export = response.json()["export"]
    assert export["purpose"] == "site enrolment table" and export["destination"] == "journal"
    summary = stew.get(f"/api/v1/exports/{export['id']}/summary").json()
    assert summary["result_kind"] == "aggregate" and summary["risk"]["smallest_cell"] == 1
    assert summary["risk"]["cells"] == 4 and summary["risk"]["passes"] is False
    assert summary["sample"]["rows"][0] == ["700", "20"]


def test_min_and_max_are_not_safe_aggregates(lake: Platform) -> None:
    sql = "SELECT SITEID, MAX(USUBJID) AS last FROM study.dm WHERE SITEID <> '799' GROUP BY SITEID"
    response = lake.as_user("ada").post("/api/v1/query", json={"sql": sql, "format": "csv"})
    assert response.status_code == 202 and "row-level" in response.json()["reason"]


def test_public_datasets_download_directly(lake: Platform) -> None:
    changed = lake.as_user("stew").request(
        "PATCH", "/api/v1/datasets/study/dm", json={"sensitivity": "public"}
    )
    assert changed.status_code == 200, changed.text
    response = lake.as_user("ada").post(
        "/api/v1/query", json={"sql": "SELECT * FROM study.dm", "format": "csv"}
    )
    assert response.status_code == 200 and response.text.count("\n") == 62


def test_reads_inside_a_workspace_stay_direct(lake: Platform) -> None:
    with lake.db.session() as session:
        ada: Principal = auth_service.principal_for(auth_service.get_user(session, "ada"))
        issued = auth_service.create_token(session, ada, "ada", name="ws", scope="workspace:1")
    client = ApiClient(lake.app, issued.secret)
    response = client.post("/api/v1/query", json={"sql": "SELECT * FROM study.dm", "format": "arrow"})
    assert response.status_code == 200, response.text
