"""One behaviour suite for the lake, run against every storage backend: the local directory
and a real S3-protocol server (moto's, on loopback) — as pyiceberg runs one suite over every
catalog. Ingestion, queries through the API, maintenance, and erasure that finds every copy
(lake files, old snapshots, quarantine, the S3 query cache, export snapshots, workspace
homes and archives)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.app import create_app
from datalibrary.auth import service as auth_service
from datalibrary.config import LakeSettings
from datalibrary.lake.catalog import forget_lakes, open_lake, parse_table_name
from datalibrary.lake.copies import file_mentions, query_cache_dir
from datalibrary.lake.erasure import erase_subject
from datalibrary.lake.maintenance import maintain
from datalibrary.lake.models import Dataset
from datalibrary.lineage.models import ExportRequest
from datalibrary.workspaces.models import Workspace
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, add_policy, ingest, read_table, write_csv
from tests.test_lake_s3 import s3_endpoint  # noqa: F401  (module-scoped fixture: one server)

SUBJECT = "01-701-1015"
OTHERS = ["01-701-1023", "01-702-1028", "01-703-1033"]


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, sqlite_platform: Platform) -> Iterator[Platform]:
    """The same platform on each storage backend (the app is rebuilt on the S3 settings)."""
    platform = sqlite_platform
    if request.param == "s3":
        import boto3

        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"behave-{id(platform) % 100000}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        lake = LakeSettings(
            warehouse=f"s3://{bucket}/warehouse",
            s3_endpoint=endpoint,
            s3_access_key_id="test",
            s3_secret_access_key="test",  # noqa: S106 - moto's fixed test credentials
        )
        platform.settings = platform.settings.model_copy(update={"lake": lake})
        platform.app = create_app(platform.settings, platform.db)
        platform.tokens.clear()
    yield platform
    forget_lakes()


def every_stored_copy(platform: Platform, subject: str) -> list[str]:
    """Every file under the state directory and every object of the warehouse that still
    holds the subject (Parquet decoded, not only raw bytes)."""
    found = [
        str(path)
        for path in platform.settings.home.rglob("*")
        if path.is_file() and not path.is_symlink() and file_mentions(path, subject)
    ]
    if platform.settings.warehouse.startswith("s3://"):
        lake = open_lake(platform.settings)
        from datalibrary.lake.erasure import check_file

        for namespace in lake.namespaces():
            for name in lake.tables(namespace):
                for item in lake.storage.list(lake.load(name).location()):
                    if check_file(lake, item.uri, subject)["contains_subject"]:
                        found.append(item.uri)
    return found


def scientist_with_grant(platform: Platform, table: str) -> None:
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    response = platform.as_user("stew").post("/api/v1/grants", json={"principal": "user:ada", "table": table})
    assert response.status_code == 201, response.text


def test_ingest_and_query(backend: Platform, tmp_path: Path) -> None:
    add_policy(backend)
    ingest(backend, write_csv(tmp_path / "a.csv", {"USUBJID": OTHERS, "V": [1, 2, 3]}), "st.lb")
    ingest(backend, write_csv(tmp_path / "b.csv", {"USUBJID": [SUBJECT], "V": [4]}), "st.lb")
    scientist_with_grant(backend, "st.lb")
    result = backend.as_user("ada").post("/api/v1/query", json={"sql": "SELECT SUM(V) AS s FROM st.lb"})
    assert result.status_code == 200, result.text
    assert int(result.json()["rows"][0][0]) == 10
    cached = list(query_cache_dir(backend.settings).glob("*.parquet"))
    assert bool(cached) == backend.settings.warehouse.startswith("s3://"), "S3 files are cached locally"


def test_maintenance_deletes_expired_files(backend: Platform, tmp_path: Path) -> None:
    add_policy(backend)
    for index in range(3):
        ingest(backend, write_csv(tmp_path / f"f{index}.csv", {"ID": [f"S{index}"], "V": [index]}), "m.t")
    lake = open_lake(backend.settings)
    location = lake.load(parse_table_name("m.t")).location()
    before = {f.uri for f in lake.storage.list(location) if f.uri.endswith(".parquet")}
    with backend.db.session() as session:
        report = maintain(session, SYSTEM, lake, retention_hours=0, grace_minutes=0)
    assert report["errors"] == 0 and report["files_deleted"] >= 3
    after = {f.uri for f in lake.storage.list(location) if f.uri.endswith(".parquet")}
    assert len(after) == 1 and not after & before
    assert sorted(read_table(backend, "m.t").column("ID").to_pylist()) == ["S0", "S1", "S2"]


def _workspace_with_copies(platform: Platform) -> Path:
    """ada's workspace: an extract in the home, and an archive holding another one."""
    with platform.db.session() as session:
        owner = auth_service.get_user(session, "ada")
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
    (home / "work").mkdir(parents=True)
    (home / "work" / "extract.csv").write_text(f"USUBJID,AGE\n{SUBJECT},63\n{OTHERS[0]},64\n")
    (home / "work" / "notes.txt").write_text("nothing to see\n")
    archives = platform.settings.home / "workspaces" / "archives"
    archives.mkdir(parents=True)
    with tarfile.open(archives / "workspace-99.tar.gz", "w:gz") as archive:
        for name, text in (("old/extract.csv", f"USUBJID\n{SUBJECT}\n"), ("old/readme.md", "hello\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return archives / "workspace-99.tar.gz"


def test_erasure_after_a_query_finds_every_copy(backend: Platform, tmp_path: Path) -> None:
    add_policy(backend)
    ingest(
        backend,
        write_csv(tmp_path / "dm.csv", {"USUBJID": [SUBJECT, *OTHERS], "AGE": [63, 64, 71, 58]}),
        "study.dm",
    )
    ingest(backend, write_csv(tmp_path / "ae.csv", {"USUBJID": [SUBJECT], "AETERM": ["RASH"]}), "study.ae")
    ingest(
        backend, write_csv(tmp_path / "ae2.csv", {"USUBJID": [OTHERS[1]], "AETERM": ["NAUSEA"]}), "study.ae"
    )
    # a delivery quarantined (an unknown policy column): its raw file holds the subject
    strict = "name: strict\nversion: 1\ncolumns:\n  USUBJID: keep\n"
    add_policy(backend, strict)
    bad = write_csv(tmp_path / "bad.csv", {"USUBJID": [SUBJECT], "NOTE": ["x"]})
    assert ingest(backend, bad, "study.ae", policy="strict")[1] == "quarantined"
    scientist_with_grant(backend, "study.dm")
    ada = backend.as_user("ada")
    queried = ada.post("/api/v1/query", json={"sql": "SELECT USUBJID, AGE FROM study.dm"})
    assert queried.status_code == 200 and [SUBJECT, 63] in queried.json()["rows"]
    exported = ada.post(
        "/api/v1/exports",
        json={
            "sql": "SELECT USUBJID, AGE FROM study.dm",
            "purpose": "row-level data for the partner",
            "destination": "partner sftp",
            "format": "parquet",
        },
    )
    assert exported.status_code == 201, exported.text
    archive = _workspace_with_copies(backend)
    on_s3 = backend.settings.warehouse.startswith("s3://")
    assert bool(list(query_cache_dir(backend.settings).glob("*.parquet"))) == on_s3
    assert every_stored_copy(backend, SUBJECT), "the subject is stored before the erasure"

    with backend.db.session() as session:
        report = erase_subject(
            session, SYSTEM, open_lake(backend.settings), namespace="study", subject=SUBJECT
        )
    assert report["ok"] is True, report["files_containing_subject"]
    locations = {entry["location"]: entry for entry in report["locations"]}
    assert set(locations) >= {
        "lake tables",
        "quarantine",
        "query cache",
        "export files",
        "workspace homes",
        "workspace archives",
    }
    assert locations["export files"]["removed"] == 1
    assert locations["workspace homes"]["removed"] == 1
    assert locations["workspace archives"]["removed"] == 1
    assert locations["quarantine"]["removed"] == 1
    if on_s3:
        assert locations["query cache"]["files"] >= 1 and locations["query cache"]["removed"] >= 1
    assert every_stored_copy(backend, SUBJECT) == []
    with tarfile.open(archive) as kept:
        assert kept.getnames() == ["old/readme.md"], "the archive keeps what does not name the subject"
    with backend.db.session() as session:
        export = session.get(ExportRequest, exported.json()["id"])
        assert export.state == "erased"
    after = ada.post("/api/v1/query", json={"sql": "SELECT USUBJID FROM study.dm ORDER BY 1"})
    assert after.json()["rows"] == [[o] for o in sorted(OTHERS)]
    assert every_stored_copy(backend, SUBJECT) == [], "a query after the erasure re-caches no copy"


SYNTHEA_PATIENTS = (
    "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,MIDDLE,LAST,SUFFIX,MAIDEN,MARITAL,RACE,"
    "ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,FIPS,ZIP,LAT,LON,HEALTHCARE_EXPENSES,"
    "HEALTHCARE_COVERAGE,INCOME"
)


def _patients(path: Path, ids: list[str]) -> Path:
    lines = [SYNTHEA_PATIENTS]
    for index, pid in enumerate(ids):
        lines.append(
            f"{pid},1955-09-0{index + 1},,999-96-682{index},S9999192{index},X5658369{index}X,Mr.,Al{index},,"
            f"West{index},,,M,white,nonhispanic,M,Boston MA US,1 Main St,Boston,Massachusetts,Suffolk,,"
            f"0213{index},42.3,-71.0,1000.0,0.0,46057"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _encounters(path: Path, patients: list[str]) -> Path:
    lines = [
        "Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,"
        "BASE_ENCOUNTER_COST,TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION"
    ]
    for index, pid in enumerate(patients):
        lines.append(
            f"e{index}-enc,2019-11-07T09:12:44Z,2019-11-07T09:27:44Z,{pid},org-1,prov-1,payer-1,ambulatory,"
            "185345009,Encounter for symptom,75.00,75.00,0.00,,"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ehr_patients_have_a_subject_column_and_are_erased(backend: Platform, tmp_path: Path) -> None:
    ids = ["6872def5-772f-427c-3053-de6e1c71ce0a", "a1b2c3d4-0000-1111-2222-333344445555"]
    assert ingest(backend, _patients(tmp_path / "patients.csv", ids), "ehr.patients", policy="ehr")[1] == (
        "succeeded"
    )
    assert ingest(backend, _encounters(tmp_path / "encounters.csv", ids), "ehr.encounters", policy="ehr")[
        1
    ] == ("succeeded")
    with backend.db.session() as session:
        subjects = {
            d.name: d.subject_column
            for d in session.scalars(select(Dataset).where(Dataset.namespace == "ehr"))
        }
    assert subjects == {"patients": "Id", "encounters": "PATIENT"}
    pseudonym = read_table(backend, "ehr.patients").column("Id").to_pylist()[0]
    assert pseudonym not in ids, "the identifier is pseudonymized"
    assert pseudonym in read_table(backend, "ehr.encounters").column("PATIENT").to_pylist()
    with backend.db.session() as session:
        report = erase_subject(
            session, SYSTEM, open_lake(backend.settings), namespace="ehr", subject=pseudonym
        )
    assert report["ok"] is True and report["rows_removed"] == 2
    assert pseudonym not in read_table(backend, "ehr.patients").column("Id").to_pylist()
    assert every_stored_copy(backend, pseudonym) == []


def _stored_texts(platform: Platform) -> Iterator[tuple[str, bytes]]:
    """Every file of the state dir (Parquet decoded to its values: the query cache holds Parquet)
    and every database row."""
    import json

    import pyarrow.parquet as pq
    from sqlalchemy import inspect, text

    for path in sorted(p for p in platform.settings.home.rglob("*") if p.is_file() and not p.is_symlink()):
        yield str(path), path.read_bytes()
        if path.suffix == ".parquet":
            values = pq.read_table(path).to_pylist()
            yield f"{path} (values)", json.dumps(values, default=str).encode()
    with platform.db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).fetchall()
            yield f"db:{table}", "\n".join(map(repr, rows)).encode()


def test_canaries_stay_out_of_caches_logs_and_exports_after_queries(
    backend: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue #21: the canary scan after queries. Planted identifiers (subject ids, SSNs, licence
    and passport numbers, names) are ingested through the ``ehr`` policy; then a scientist
    queries the table (a JSON page, a CSV download routed to the airlock, a query whose error
    quotes a value), the steward approves the export and the scientist downloads it. No
    planted value may be in any answer, any file of the state dir (the S3 query cache
    included), any database row (query history, audit, lineage) or any log line."""
    import logging

    caplog.set_level(logging.DEBUG)
    ids = ["6872def5-772f-427c-3053-de6e1c71ce0a", "a1b2c3d4-0000-1111-2222-333344445555"]
    source = _patients(tmp_path / "patients.csv", ids)
    assert ingest(backend, source, "ehr.patients", policy="ehr")[1] == "succeeded"
    canaries = [*ids, "999-96-6820", "999966820", "S99991920", "X56583690X", "West0", "West1"]
    assert all(c.encode() in source.read_bytes() for c in canaries if c != "999966820")
    scientist_with_grant(backend, "ehr.patients")
    ada, stew = backend.as_user("ada"), backend.as_user("stew")
    answers: list[tuple[str, bytes]] = []
    page = ada.post("/api/v1/query", json={"sql": "SELECT * FROM ehr.patients"})
    assert page.status_code == 200 and len(page.json()["rows"]) == 2, page.text
    answers.append(("page", page.content))
    failed = ada.post("/api/v1/query", json={"sql": 'SELECT CAST("SSN" AS INTEGER) FROM ehr.patients'})
    answers.append(("error", failed.content))
    routed = ada.post("/api/v1/query", json={"sql": "SELECT * FROM ehr.patients", "format": "csv"})
    assert routed.status_code == 202, routed.text
    export_id = routed.json()["export"]["id"]
    decided = stew.post(
        f"/api/v1/exports/{export_id}/decision",
        json={"decision": "approve", "override_reason": "canary test: every byte is checked"},
    )
    assert decided.status_code == 200, decided.text
    download = ada.post(f"/api/v1/exports/{export_id}/download")
    assert download.status_code == 200 and download.content.count(b"\n") == 3
    answers += [("export", download.content), ("history", ada.get("/api/v1/queries").content)]
    on_s3 = backend.settings.warehouse.startswith("s3://")
    assert bool(list(query_cache_dir(backend.settings).glob("*.parquet"))) == on_s3, "the cache is scanned"
    logs = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    # the scan can fail: a canary planted in the state dir's cache is found, then removed
    planted = backend.settings.home / "cache" / "planted.txt"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(f"row,{canaries[2]}\n")
    assert any(canaries[2].encode() in data for _, data in _stored_texts(backend))
    planted.unlink()
    hits = [
        (where, canary)
        for where, data in [*answers, *_stored_texts(backend), ("logs", logs.encode())]
        for canary in canaries
        if canary.encode() in data or canary.lower().encode() in data
    ]
    assert not hits, hits[:10]
