"""Queries end to end over the real lake: grants, masks, row filters, time travel,
revocation, metering, records, audit, lineage, formats and the table browser."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update

from datalibrary.access.models import Grant
from datalibrary.audit.models import AuditEvent
from datalibrary.db.base import utcnow
from datalibrary.lineage.models import LineageEdge, LineageEvent
from datalibrary.query.models import QueryRecord
from tests.helpers import ApiClient, Platform
from tests.lake_helpers import add_policy, ingest, write_csv

SITES = ["701", "702", "703", "704"]


@pytest.fixture
def lake(platform: Platform, tmp_path: Path) -> Platform:
    """cdisc.lb (400 rows over 4 sites) and cdisc.dm (40 subjects) in the real lake."""
    add_policy(platform)
    subjects = [f"01-{SITES[i % 4]}-{i:04d}" for i in range(40)]
    write_csv(
        tmp_path / "dm.csv",
        {
            "USUBJID": subjects,
            "SITEID": [s.split("-")[1] for s in subjects],
            "AGE": [30 + i for i in range(40)],
        },
    )
    write_csv(
        tmp_path / "lb.csv",
        {
            "USUBJID": [subjects[i % 40] for i in range(400)],
            "SITEID": [subjects[i % 40].split("-")[1] for i in range(400)],
            "LBTESTCD": ["ALT" if i % 2 else "AST" for i in range(400)],
            "VISITNUM": [1 + i % 5 for i in range(400)],
            "LBSTRESN": [float(i) for i in range(400)],
        },
    )
    assert ingest(platform, tmp_path / "dm.csv", "cdisc.dm")[1] == "succeeded"
    assert ingest(platform, tmp_path / "lb.csv", "cdisc.lb")[1] == "succeeded"
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    for table in ("dm", "lb"):  # public: downloads go directly (policy: test_download_policy.py)
        public = platform.as_user("stew").request(
            "PATCH", f"/api/v1/datasets/cdisc/{table}", json={"sensitivity": "public"}
        )
        assert public.status_code == 200, public.text
    return platform


def grant(platform: Platform, **body) -> dict:
    response = platform.as_user("stew").post("/api/v1/grants", json={"principal": "user:ada"} | body)
    assert response.status_code == 201, response.text
    return response.json()


def query(client: ApiClient, sql: str, **kw) -> dict:
    response = client.post("/api/v1/query", json={"sql": sql} | kw)
    assert response.status_code == 200, response.text
    return response.json()


def test_no_grant_no_data_and_no_existence_leak(lake: Platform) -> None:
    ada = lake.as_user("ada")
    for sql in ("SELECT * FROM cdisc.lb", "SELECT * FROM cdisc.nonexistent"):
        response = ada.post("/api/v1/query", json={"sql": sql})
        assert response.status_code == 404
        assert "does not exist or you have no grant" in response.json()["detail"]


def test_row_filter_and_columns_hold_across_sql_forms(lake: Platform) -> None:
    grant(
        lake,
        table="cdisc.lb",
        columns=["usubjid", "siteid", "lbtestcd", "visitnum"],
        row_filter="siteid IN ('701','703')",
    )
    grant(lake, table="cdisc.dm", row_filter="siteid IN ('701','703')")
    ada = lake.as_user("ada")
    forms = [
        "SELECT DISTINCT siteid FROM cdisc.lb",
        "SELECT DISTINCT l.siteid FROM cdisc.lb l JOIN cdisc.dm d ON l.usubjid = d.usubjid",
        "WITH x AS (SELECT * FROM cdisc.lb) SELECT DISTINCT siteid FROM x",
        "SELECT siteid FROM cdisc.lb UNION SELECT siteid FROM cdisc.dm",
        "SELECT DISTINCT siteid FROM (SELECT siteid, rank() OVER (ORDER BY visitnum) FROM cdisc.lb)",
        "SELECT DISTINCT siteid FROM cdisc.lb WHERE usubjid IN (SELECT usubjid FROM cdisc.lb)",
    ]
    for sql in forms:
        sites = {str(row[0]) for row in query(ada, sql)["rows"]}
        assert sites == {"701", "703"}, sql  # exactly: an empty answer must not pass
    assert [c["name"] for c in query(ada, "SELECT * FROM cdisc.lb LIMIT 1")["columns"]] == [
        "USUBJID", "SITEID", "LBTESTCD", "VISITNUM",
    ]  # fmt: skip
    hidden = ada.post("/api/v1/query", json={"sql": "SELECT lbstresn FROM cdisc.lb"})
    assert hidden.status_code == 422 and "lbstresn" in hidden.json()["detail"].lower()
    assert query(ada, "SELECT count(*) FROM cdisc.lb")["rows"] == [[200]]


def test_masks(lake: Platform) -> None:
    grant(lake, table="cdisc.dm", masks={"usubjid": "null"})
    rows = query(lake.as_user("ada"), "SELECT usubjid, age FROM cdisc.dm")["rows"]
    assert {r[0] for r in rows} == {None} and len(rows) == 40


def test_time_travel_keeps_the_row_filter(lake: Platform, tmp_path: Path) -> None:
    grant(lake, table="cdisc.dm", row_filter="siteid = '701'")
    ada = lake.as_user("ada")
    first = query(ada, "SELECT count(*) FROM cdisc.dm")
    snapshot = first["stats"]["tables"][0]["snapshot_id"]
    write_csv(tmp_path / "dm2.csv", {"USUBJID": ["01-701-9999"], "SITEID": ["701"], "AGE": [50]})
    ingest(lake, tmp_path / "dm2.csv", "cdisc.dm")
    assert query(ada, "SELECT count(*) FROM cdisc.dm")["rows"] == [[11]]
    old = query(ada, f"SELECT count(*), min(siteid), max(siteid) FROM cdisc.dm FOR VERSION AS OF {snapshot}")
    assert old["rows"] == [[10, 701, 701]]
    missing = ada.post("/api/v1/query", json={"sql": "SELECT * FROM cdisc.dm FOR VERSION AS OF 1"})
    assert missing.status_code == 404


def test_revocation_and_expiry_take_effect_on_the_next_query(lake: Platform) -> None:
    granted = grant(lake, table="cdisc.dm")
    ada = lake.as_user("ada")
    assert query(ada, "SELECT count(*) FROM cdisc.dm")["rows"] == [[40]]
    with lake.db.session() as session:
        session.execute(update(Grant).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert ada.post("/api/v1/query", json={"sql": "SELECT 1 FROM cdisc.dm"}).status_code == 404
    with lake.db.session() as session:
        session.execute(update(Grant).values(expires_at=None))
    assert lake.as_user("stew").delete(f"/api/v1/grants/{granted['id']}").status_code == 200
    assert ada.post("/api/v1/query", json={"sql": "SELECT 1 FROM cdisc.dm"}).status_code == 404


def test_every_query_is_metered_recorded_audited_and_traced(lake: Platform) -> None:
    grant(lake, table="cdisc.lb")
    ada = lake.as_user("ada")
    narrow = query(ada, "SELECT siteid FROM cdisc.lb")["stats"]
    wide = query(ada, "SELECT * FROM cdisc.lb")["stats"]
    assert 0 < narrow["bytes_scanned"] < wide["bytes_scanned"]
    ada.post("/api/v1/query", json={"sql": "DROP TABLE cdisc.lb"})
    with lake.db.session() as session:
        records = session.scalars(select(QueryRecord).order_by(QueryRecord.id)).all()
        assert [r.outcome for r in records] == ["success", "success", "failure"]
        assert records[1].rows_returned == 400 and records[1].tables[0]["name"] == "cdisc.lb"
        audits = session.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "query.run")).all()
        assert sorted(audits) == ["failure", "success", "success"]
        events = session.scalars(select(LineageEvent).where(LineageEvent.run_id == records[0].run_id)).all()
        assert sorted(e.event_type for e in events) == ["COMPLETE", "START"]
        assert events[0].payload["run"]["facets"]["datalibrary_actor"]["user"] == "ada"
        edges = session.scalars(
            select(LineageEdge.dataset_name).where(LineageEdge.event_id == events[0].id)
        ).all()
        assert edges == ["cdisc.lb"]
    history = ada.get("/api/v1/queries").json()
    assert len(history) == 3 and history[0]["outcome"] == "failure"
    assert ada.get("/api/v1/queries", params={"user": "stew"}).status_code == 403


def test_formats_and_pages(lake: Platform) -> None:
    grant(lake, table="cdisc.lb")
    ada = lake.as_user("ada")
    page = query(ada, "SELECT * FROM cdisc.lb ORDER BY lbstresn", limit=150, offset=300)
    assert len(page["rows"]) == 100 and page["next_offset"] is None and page["rows"][0][4] == 300.0
    assert query(ada, "SELECT * FROM cdisc.lb", limit=150)["next_offset"] == 150
    for fmt in ("csv", "parquet", "arrow"):
        response = ada.post("/api/v1/query", json={"sql": "SELECT * FROM cdisc.lb", "format": fmt})
        assert response.status_code == 200 and response.headers["X-Rows"] == "400"
        if fmt == "parquet":
            assert pq.read_table(io.BytesIO(response.content)).num_rows == 400
        elif fmt == "arrow":
            assert pa.ipc.open_stream(response.content).read_all().num_rows == 400
        else:
            assert response.text.count("\n") == 401


def test_table_browser_lists_only_granted_tables(lake: Platform) -> None:
    grant(lake, table="cdisc.lb", columns=["usubjid", "siteid"], masks={"usubjid": "null"})
    tables = lake.as_user("ada").get("/api/v1/query/tables").json()
    assert [t["name"] for t in tables] == ["cdisc.lb"]
    assert [(c["name"], c["masked"]) for c in tables[0]["columns"]] == [("USUBJID", True), ("SITEID", False)]


def test_grants_are_checked_against_the_table(lake: Platform) -> None:
    response = lake.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.lb", "columns": ["nope"]}
    )
    assert response.status_code == 422 and "no column 'nope'" in response.json()["detail"]


def test_project_must_be_the_callers(lake: Platform) -> None:
    grant(lake, table="cdisc.dm")
    response = lake.as_user("ada").post(
        "/api/v1/query", json={"sql": "SELECT 1 FROM cdisc.dm", "project": "x"}
    )
    assert response.status_code == 403 and "not a member of project" in response.json()["detail"]


def test_grant_filters_prune_files_and_null_means_invisible(platform: Platform, tmp_path: Path) -> None:
    """One delivery per site: the grant's filter prunes whole files by statistics, yet every
    file kept is filtered row by row, and a NULL site passes no filter (not even ``<>``)."""
    add_policy(platform)
    for site in ("S701", "S702", "S703"):
        write_csv(tmp_path / f"{site}.csv", {"USUBJID": [f"{site}-1", f"{site}-2"], "SITEID": [site, site]})
        ingest(platform, tmp_path / f"{site}.csv", "cdisc.vs")
    write_csv(
        tmp_path / "mixed.csv", {"USUBJID": ["S701-9", "S702-9", "x"], "SITEID": ["S701", "S702", None]}
    )
    ingest(platform, tmp_path / "mixed.csv", "cdisc.vs")
    # statistics of this file "prove" siteid <> 'S702' by Iceberg's rules (NULLs ignored)
    write_csv(tmp_path / "null.csv", {"USUBJID": ["S703-3", "y"], "SITEID": ["S703", None]})
    ingest(platform, tmp_path / "null.csv", "cdisc.vs")
    planned = platform.app.state.planner.plan("cdisc", "vs", row_filter="siteid IN ('S701', 'S703')")
    assert len(planned.files) == 4  # 702's file pruned, mixed files kept
    platform.add_user("stew", "steward")
    for row_filter, expected in [
        ("siteid IN ('S701', 'S703')", ["S701-1", "S701-2", "S701-9", "S703-1", "S703-2", "S703-3"]),
        ("siteid <> 'S702'", ["S701-1", "S701-2", "S701-9", "S703-1", "S703-2", "S703-3"]),
        ("siteid NOT IN ('S702')", ["S701-1", "S701-2", "S701-9", "S703-1", "S703-2", "S703-3"]),
        ("NOT (siteid = 'S702')", ["S701-1", "S701-2", "S701-9", "S703-1", "S703-2", "S703-3"]),
    ]:
        with platform.db.session() as session:
            session.execute(update(Grant).values(revoked_at=utcnow()))
        granted = platform.as_user("stew").post(
            "/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.vs", "row_filter": row_filter}
        )
        assert granted.status_code == 201, granted.text
        rows = query(platform.as_user("ada"), "SELECT usubjid FROM cdisc.vs ORDER BY 1")["rows"]
        assert [r[0] for r in rows] == expected, row_filter


def test_a_filter_iceberg_cannot_read_is_still_applied(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    write_csv(tmp_path / "a.csv", {"USUBJID": ["S701-1"], "SITEID": ["S701"]})
    write_csv(tmp_path / "b.csv", {"USUBJID": ["S702-1"], "SITEID": ["S702"]})
    ingest(platform, tmp_path / "a.csv", "cdisc.vs")
    ingest(platform, tmp_path / "b.csv", "cdisc.vs")
    platform.add_user("stew", "steward")
    platform.as_user("stew").post(
        "/api/v1/grants",
        json={"principal": "user:ada", "table": "cdisc.vs", "row_filter": "lower(siteid) = 's701'"},
    )
    planned = platform.app.state.planner.plan("cdisc", "vs", row_filter="lower(siteid) = 's701'")
    assert len(planned.files) == 2  # not translatable for pruning: nothing pruned
    assert query(platform.as_user("ada"), "SELECT usubjid FROM cdisc.vs")["rows"] == [["S701-1"]]
