"""The Python SDK against a live server: tables, schema, queries as Arrow/pandas/rows,
problems as SdkError, revocation live on the next call."""

from __future__ import annotations

from pathlib import Path

import pytest

import datalibrary
from datalibrary.sdk import SdkError
from tests.helpers import LiveServer, Platform
from tests.lake_helpers import add_policy, ingest, write_csv


@pytest.fixture
def served(sqlite_platform: Platform, tmp_path: Path):  # type: ignore[no-untyped-def]
    add_policy(sqlite_platform)
    write_csv(
        tmp_path / "dm.csv",
        {"USUBJID": ["S1", "S2", "S3"], "SITEID": ["701", "702", "701"], "AGE": [40, 50, 60]},
    )
    ingest(sqlite_platform, tmp_path / "dm.csv", "cdisc.dm")
    sqlite_platform.add_user("stew", "steward")
    grant = (
        sqlite_platform.as_user("stew")
        .post(
            "/api/v1/grants",
            json={
                "principal": "user:ada",
                "table": "cdisc.dm",
                "masks": {"usubjid": "null"},
                "row_filter": "siteid = 701",
            },
        )
        .json()
    )
    with LiveServer(sqlite_platform.app) as server:
        lake = datalibrary.connect(server.url, sqlite_platform.as_user("ada").token)
        # outside a workspace, a row-level Arrow result of a confidential table needs review
        with pytest.raises(SdkError) as routed:
            lake.sql("SELECT * FROM cdisc.dm").to_arrow()
        assert routed.value.status == 202 and "export request" in routed.value.detail
        public = sqlite_platform.as_user("stew").request(
            "PATCH", "/api/v1/datasets/cdisc/dm", json={"sensitivity": "public"}
        )
        assert public.status_code == 200, public.text
        yield sqlite_platform, lake, grant


def test_tables_schema_and_queries(served) -> None:  # type: ignore[no-untyped-def]
    platform, lake, _ = served
    assert [t.name for t in lake.tables()] == ["cdisc.dm"]
    table = lake.table("cdisc.dm")
    assert list(table.schema) == ["USUBJID", "SITEID", "AGE"] and table.row_filtered
    query = lake.sql("SELECT * FROM cdisc.dm ORDER BY age")
    arrow = query.to_arrow()
    assert arrow.num_rows == 2 and arrow.column("USUBJID").to_pylist() == [None, None]
    assert query.stats["bytes_scanned"] > 0 and query.stats["rows"] == 2
    pandas = pytest.importorskip("pandas")
    frame = lake.sql("SELECT age FROM cdisc.dm").to_pandas()
    assert isinstance(frame, pandas.DataFrame) and sorted(frame["AGE"]) == [40, 60]
    assert lake.sql("SELECT count(*) FROM cdisc.dm").rows() == [[2]]


def test_problems_and_revocation(served) -> None:  # type: ignore[no-untyped-def]
    platform, lake, grant = served
    with pytest.raises(SdkError) as error:
        lake.sql("DROP TABLE cdisc.dm").rows()
    assert error.value.status == 422 and "query refused" in error.value.detail
    platform.as_user("stew").delete(f"/api/v1/grants/{grant['id']}")
    with pytest.raises(SdkError) as error:
        lake.sql("SELECT * FROM cdisc.dm").to_arrow()
    assert error.value.status == 404
    with pytest.raises(SdkError):
        lake.table("cdisc.dm")


def test_the_sdk_is_named_in_audit_and_lineage_and_no_other_client_can_be_claimed(served) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from datalibrary.audit.models import AuditEvent
    from datalibrary.lineage.models import LineageEvent

    platform, lake, _ = served
    lake.sql("SELECT count(*) FROM cdisc.dm").rows()
    ada = platform.as_user("ada")
    assert ada.post("/api/v1/query", json={"sql": "SELECT 1 AS plain"}).status_code == 200
    claimed = ada.post(
        "/api/v1/query", json={"sql": "SELECT 2 AS claimed"}, headers={"X-DataLibrary-Client": "cli"}
    )
    assert claimed.status_code == 200
    with platform.db.session() as session:
        runs = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "query.run").order_by(AuditEvent.id)
        ).all()
        vias = [e.details["via"] for e in runs if e.actor == "ada"]
        facets = [
            e.payload["run"]["facets"]["datalibrary_actor"]["via"]
            for e in session.scalars(select(LineageEvent).where(LineageEvent.job_name == "query"))
        ]
    assert vias[-3:] == ["sdk", "api", "api"], vias  # the SDK, a plain token, a false claim
    assert "sdk" in facets and set(facets) <= {"sdk", "api"}
