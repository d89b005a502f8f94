"""Maintenance and erasure: files are really deleted, and the erasure report proves it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from pyiceberg.avro.file import AvroFile
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.typedef import Record
from sqlalchemy import select, update

from datalibrary.audit.models import AuditEvent
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, Unavailable
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.submit import submit_file
from datalibrary.ingest.worker import run_one
from datalibrary.lake import locks
from datalibrary.lake.catalog import open_lake, parse_table_name
from datalibrary.lake.erasure import erase_subject
from datalibrary.lake.files import reachable_files
from datalibrary.lake.maintenance import maintain
from datalibrary.lake.scan_planning import plan_table
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, add_policy, ingest, read_table, write_csv


def table_files(platform: Platform, table: str) -> set[str]:
    lake = open_lake(platform.settings)
    iceberg = lake.load(parse_table_name(table))
    return {f.uri for f in lake.storage.list(iceberg.location())}


def _decoded_values(value: object) -> Iterator[str | bytes]:
    """Every text and bytes value in a decoded Avro record (pyiceberg's generic records)."""
    if isinstance(value, str | bytes):
        yield value
    elif isinstance(value, Record):
        for index in range(len(value)):
            yield from _decoded_values(value[index])
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _decoded_values(key)
            yield from _decoded_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _decoded_values(item)


def independent_mentions(platform: Platform, uri: str, subject: str, scratch: Path) -> list[str]:
    """Where ``subject`` appears in one stored file, decoded by readers other than the erasure
    report's own (which uses pyarrow and its own Avro decoder): DuckDB for Parquet values,
    statistics and key/value metadata, pyiceberg's Avro reader for manifests, the raw bytes of
    everything. Compressed pages hide a value from a byte search, so Parquet and Avro files
    are never judged by their bytes alone."""
    raw = open_lake(platform.settings).storage.read_bytes(uri)
    copy = scratch / f"{uuid.uuid4().hex}{Path(uri).suffix}"
    copy.write_bytes(raw)
    found = ["raw bytes"] if subject.encode() in raw else []
    if uri.endswith(".parquet"):
        with duckdb.connect() as connection:
            rows = connection.execute("SELECT * FROM read_parquet(?)", [str(copy)]).fetchall()
            stats = connection.execute(
                "SELECT stats_min, stats_max, stats_min_value, stats_max_value FROM parquet_metadata(?)",
                [str(copy)],
            ).fetchall()
            meta = connection.execute("SELECT key, value FROM parquet_kv_metadata(?)", [str(copy)]).fetchall()
        found += [where for where, seen in (("values", rows), ("statistics", stats), ("metadata", meta))
                  if subject in repr(seen)]  # fmt: skip
    elif uri.endswith(".avro"):
        with AvroFile(PyArrowFileIO().new_input(str(copy))) as manifest:
            decoded = list(_decoded_values(list(manifest)))
        if any(subject in (v.decode("latin-1") if isinstance(v, bytes) else v) for v in decoded):
            found.append("decoded Avro records")
    return found


def test_maintenance_compacts_expires_and_deletes_files(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    for index in range(4):
        ingest(platform, write_csv(tmp_path / f"f{index}.csv", {"ID": [f"S{index}"], "V": [index]}), "m.t")
    lake = open_lake(platform.settings)
    before = plan_table(lake, "m.t")
    assert len(before.files) == 4
    old_data = {f.uri for f in before.files}
    orphan = f"{lake.load(parse_table_name('m.t')).location()}/data/job-dead/part-00000.parquet"
    with lake.storage.open_output(orphan) as out:
        out.write(b"left behind by a crashed job")
    with platform.db.session() as session:
        report = maintain(session, SYSTEM, lake, retention_hours=0, grace_minutes=0)
    table_report = report["tables"][0]
    assert table_report["files_compacted"] == 4 and table_report["files_written"] == 1
    assert report["snapshots_expired"] == 4 and report["files_deleted"] > 4
    assert report["orphans_deleted"] >= 1
    after = plan_table(lake, "m.t")
    assert len(after.files) == 1 and after.row_count == 4
    remaining = table_files(platform, "m.t")
    assert not old_data & remaining, "data files of expired snapshots are gone from storage"
    assert orphan not in remaining
    iceberg = lake.load(parse_table_name("m.t"))
    assert reachable_files(iceberg) <= remaining, "nothing the table needs was deleted"
    assert sorted(read_table(platform, "m.t").column("ID").to_pylist()) == ["S0", "S1", "S2", "S3"]
    with platform.db.session() as session:
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "lake.maintain"))


def test_maintenance_waits_for_running_commits(sqlite_platform: Platform) -> None:
    engine = open_lake(sqlite_platform.settings).catalog.engine

    def refused(resource: str, mode: str) -> bool:
        try:
            with locks.lease(engine, resource, mode, holder="probe", timeout=0.3):
                return False
        except Unavailable:
            return True

    with locks.lease(engine, "table:x.y", locks.SHARED, holder="commit"):
        assert refused("table:x.y", locks.EXCLUSIVE)
        assert not refused("table:x.y", locks.SHARED), "commits do not wait for each other"
    with locks.lease(engine, "table:x.y", locks.EXCLUSIVE, holder="maint"):
        assert refused("table:x.y", locks.SHARED)
        assert not refused("table:x.z", locks.SHARED), "other tables are free"
    assert not refused("table:x.y", locks.EXCLUSIVE)


def test_erasure_removes_a_subject_everywhere_and_proves_it(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    subject = "01-701-1015"
    ingest(
        platform,
        write_csv(
            tmp_path / "dm.csv", {"USUBJID": [subject, "01-701-1023", "01-701-1028"], "AGE": [63, 64, 71]}
        ),
        "study.dm",
    )
    ingest(
        platform,
        write_csv(tmp_path / "ae1.csv", {"USUBJID": [subject, subject], "AETERM": ["HEADACHE", "RASH"]}),
        "study.ae",
    )
    ingest(
        platform,
        write_csv(tmp_path / "ae2.csv", {"USUBJID": ["01-701-1023"], "AETERM": ["NAUSEA"]}),
        "study.ae",
    )
    lake = open_lake(platform.settings)
    first_ae = plan_table(lake, "study.ae")
    scratch = tmp_path / "decoded"
    scratch.mkdir()
    # the independent check finds the subject before erasure, in data files and in manifests
    # (column bounds): its silence afterwards means something
    before = {
        uri: independent_mentions(platform, uri, subject, scratch)
        for name in ("study.dm", "study.ae")
        for uri in table_files(platform, name)
    }
    assert any(found for uri, found in before.items() if uri.endswith(".parquet")), before
    assert any(found for uri, found in before.items() if uri.endswith(".avro")), before
    with platform.db.session() as session:
        report = erase_subject(session, SYSTEM, lake, namespace="study", subject=subject)
    dirty = [(f["uri"], f["found_in"]) for t in report["tables"] for f in t["files"] if f["contains_subject"]]
    assert dirty == [] and report["ok"] is True, report
    assert report["rows_removed"] == 3
    assert report["files_checked"] >= 6
    kinds = {f["kind"] for t in report["tables"] for f in t["files"]}
    assert {"data", "manifest", "metadata"} <= kinds
    assert read_table(platform, "study.dm").column("USUBJID").to_pylist() == ["01-701-1023", "01-701-1028"]
    assert read_table(platform, "study.ae").column("AETERM").to_pylist() == ["NAUSEA"]
    for name in ("study.dm", "study.ae"):
        iceberg = lake.load(parse_table_name(name))
        assert len(iceberg.snapshots()) == 1, "older snapshots are expired"
        present = table_files(platform, name)
        logged = [entry.metadata_file for entry in iceberg.metadata.metadata_log]
        assert all(uri in present for uri in logged), "the metadata log names only files that exist"
        assert [uri for uri in present if uri.endswith(".metadata.json")] == [iceberg.metadata_location]
        for uri in table_files(platform, name):  # every file, Parquet included, decoded
            assert independent_mentions(platform, uri, subject, scratch) == [], uri
    assert not {f.uri for f in first_ae.files} & table_files(platform, "study.ae"), "old files deleted"
    with platform.db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "lake.erase")).one()
    assert subject not in str(event.details) and event.details["ok"] is True


def test_erasure_check_finds_a_subject_left_behind(sqlite_platform: Platform, tmp_path: Path) -> None:
    """The proof is not vacuous: a table without a declared subject column keeps the rows, and
    the report says so."""
    add_policy(sqlite_platform)
    ingest(
        sqlite_platform,
        write_csv(tmp_path / "x.csv", {"PATIENT": ["P-777-XYZ", "P-1"], "V": [1, 2]}),
        "ehr.x",
    )
    lake = open_lake(sqlite_platform.settings)
    with sqlite_platform.db.session() as session:
        report = erase_subject(session, SYSTEM, lake, namespace="ehr", subject="P-777-XYZ")
    assert report["ok"] is False and report["files_containing_subject"]
    assert report["tables"][0]["note"] == "no subject column declared"
    # the independent decoder of the test above agrees: the subject is still in the data file
    scratch = tmp_path / "decoded"
    scratch.mkdir()
    data = [uri for uri in table_files(sqlite_platform, "ehr.x") if uri.endswith(".parquet")]
    assert data and all(
        "values" in independent_mentions(sqlite_platform, uri, "P-777-XYZ", scratch) for uri in data
    )


def test_erasure_quarantines_waiting_deliveries_that_would_bring_the_subject_back(
    platform: Platform, tmp_path: Path
) -> None:
    """A delivery still waiting sealed for a worker would re-ingest the erased subject: it is
    quarantined with the reason and its file deleted; one without the subject waits on. While
    a job of the namespace runs, erasure refuses (that job could commit the subject after)."""
    add_policy(platform)
    subject = "01-701-1015"
    ingest(platform, write_csv(tmp_path / "dm.csv", {"USUBJID": [subject, "01-701-1023"]}), "study.dm")
    waiting = {}
    for name, ids in [("with", [subject, "01-701-1099"]), ("without", ["01-701-1098"])]:
        with platform.db.session() as session:
            job = submit_file(session, SYSTEM, platform.settings, write_csv(tmp_path / f"{name}.csv",
                              {"USUBJID": ids}), table="study.dm", policy="keep-all")  # fmt: skip
            waiting[name] = (job.id, Path(job.raw_path))
    assert all(path.is_file() and subject.encode() not in path.read_bytes() for _, path in waiting.values())
    lake = open_lake(platform.settings)
    with platform.db.session() as session:  # a live worker holds one job: refused, nothing changed
        session.execute(
            update(IngestJob)
            .where(IngestJob.id == waiting["without"][0])
            .values(state="running", worker="w", lease_expires_at=utcnow() + timedelta(minutes=5))
        )
    with platform.db.session() as session, pytest.raises(Conflict, match="running"):
        erase_subject(session, SYSTEM, lake, namespace="study", subject=subject)
    assert waiting["with"][1].is_file()
    with platform.db.session() as session:  # its worker died: the lease ran out, the job waits again
        session.execute(
            update(IngestJob)
            .where(IngestJob.id == waiting["without"][0])
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    with platform.db.session() as session:
        report = erase_subject(session, SYSTEM, lake, namespace="study", subject=subject)
    assert report["ok"] is True, report
    pending = {item["uri"]: item for item in report["copies"]["pending deliveries"]}
    assert pending[str(waiting["with"][1])]["action"] == "deleted"
    assert pending[str(waiting["without"][1])]["action"] == "kept"
    assert not waiting["with"][1].exists() and waiting["without"][1].is_file()
    with platform.db.session() as session:
        erased = session.get(IngestJob, waiting["with"][0])
        assert erased.state == "quarantined" and erased.reason["code"] == "erased-subject"
        assert subject not in str(erased.reason) and erased.raw_path is None
    assert run_one(platform.settings, platform.db, "w2", waiting["without"][0]) == (
        waiting["without"][0],
        "succeeded",
    )
    assert subject not in read_table(platform, "study.dm").column("USUBJID").to_pylist()


def test_concurrent_ingestions_into_one_table_lose_no_rows(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    ingest(platform, write_csv(tmp_path / "seed.csv", {"ID": ["seed"], "N": [0]}), "c.t")
    files = [
        write_csv(tmp_path / f"part{i}.csv", {"ID": [f"w{i}-{k}" for k in range(50)], "N": list(range(50))})
        for i in range(6)
    ]
    results: list[str] = []
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        try:
            results.append(ingest(platform, path, "c.t")[1])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and results == ["succeeded"] * 6
    table = read_table(platform, "c.t")
    assert table.num_rows == 1 + 6 * 50
    assert len(set(table.column("ID").to_pylist())) == 301
    iceberg = open_lake(platform.settings).load(parse_table_name("c.t"))
    assert len(iceberg.snapshots()) == 7, "one snapshot per ingestion"


def test_a_commit_that_loses_the_race_reloads_and_reapplies(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """Deterministic: a competing commit lands between our load and our compare-and-swap."""
    from datalibrary.lake.tables import FileWriter, commit_files, file_schema

    platform = sqlite_platform
    add_policy(platform)
    ingest(platform, write_csv(tmp_path / "seed.csv", {"ID": ["seed"]}), "r.t")
    lake = open_lake(platform.settings)
    name = parse_table_name("r.t")

    def staged(tag: str, value: str) -> list[str]:
        import pyarrow as pa

        table = lake.load(name)
        writer = FileWriter(lake, table, tag, file_schema(table), 1 << 20)
        writer.write(pa.record_batch({"ID": [value]}, schema=file_schema(table)))
        return writer.close()

    ours, theirs = staged("ours", "ours"), staged("theirs", "theirs")
    calls = []

    def guard(table) -> None:  # type: ignore[no-untyped-def]
        calls.append(table.current_snapshot().snapshot_id)
        if len(calls) == 1:  # another writer commits right after we loaded the table
            commit_files(lake, name, add=theirs, properties={"operation": "test"})
        return None

    result = commit_files(lake, name, add=ours, properties={"operation": "test"}, guard=guard)
    assert result.attempts == 2 and calls[0] != calls[1]
    assert sorted(read_table(platform, "r.t").column("ID").to_pylist()) == ["ours", "seed", "theirs"]
