"""The ingestion pipeline end to end on real parts: SQLite/PostgreSQL, the local warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.ingest.models import IngestJob
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.scan_planning import plan_table
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, read_table, write_csv


def test_csv_lands_as_one_snapshot_with_provenance(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    source = write_csv(tmp_path / "lb.csv", {"USUBJID": ["S1", "S2", "S3"], "LBORRES": [1.5, 2.5, None]})
    job_id, state = ingest(platform, source, "study1.lb")
    assert state == "succeeded"
    table = read_table(platform, "study1.lb")
    assert table.num_rows == 3 and table.column_names == ["USUBJID", "LBORRES"]
    plan = plan_table(open_lake(platform.settings), "study1.lb")
    iceberg = open_lake(platform.settings).load(
        __import__("datalibrary.lake.catalog", fromlist=["x"]).parse_table_name("study1.lb")
    )
    summary = iceberg.current_snapshot().summary.additional_properties
    assert summary["datalibrary.job-id"] == job_id
    assert summary["datalibrary.policy"] == "keep-all" and summary["datalibrary.policy-version"] == "1"
    assert len(iceberg.snapshots()) == 1 and plan.row_count == 3
    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        assert job.rows_written == 3 and job.snapshot_id == plan.snapshot_id
        assert not Path(job.raw_path).exists(), "the raw landing copy is deleted after the commit"
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "ingest.submit" in actions and "ingest.commit" in actions


def test_same_content_twice_is_a_duplicate(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    source = write_csv(tmp_path / "dm.csv", {"USUBJID": ["A", "B"], "AGE": [40, 50]})
    assert ingest(platform, source, "s.dm")[1] == "succeeded"
    again = tmp_path / "dm-again.csv"
    again.write_bytes(source.read_bytes())
    job_id, state = ingest(platform, again, "s.dm")
    assert state == "duplicate"
    assert read_table(platform, "s.dm").num_rows == 2
    with platform.db.session() as session:
        assert session.get(IngestJob, job_id).reason["code"] == "duplicate"
    # the same bytes for another table are not a duplicate
    assert ingest(platform, again, "s.dm_copy")[1] == "succeeded"


def test_overwrite_replaces_in_one_snapshot_and_time_travel_reads_the_old_one(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    platform = sqlite_platform
    add_policy(platform)
    ingest(platform, write_csv(tmp_path / "a.csv", {"X": [1, 2, 3]}), "s.t")
    ingest(platform, write_csv(tmp_path / "b.csv", {"X": [4]}), "s.t")
    lake = open_lake(platform.settings)
    first = plan_table(lake, "s.t")
    assert first.row_count == 4
    ingest(platform, write_csv(tmp_path / "c.csv", {"X": [7, 8]}), "s.t", mode="overwrite")
    assert sorted(read_table(platform, "s.t").column("X").to_pylist()) == [7, 8]
    old = read_table(platform, "s.t", snapshot_id=first.snapshot_id)
    assert sorted(old.column("X").to_pylist()) == [1, 2, 3, 4]
    at = plan_table(lake, "s.t", as_of=first.snapshot_at)
    assert at.snapshot_id == first.snapshot_id
    import pytest as _pytest

    from datalibrary.errors import NotFound

    with _pytest.raises(NotFound):
        plan_table(lake, "s.t", snapshot_id=12345)


def test_policy_drops_columns_and_uncovered_columns_quarantine(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    platform = sqlite_platform
    add_policy(
        platform,
        "name: pii\nversion: 2\ncolumns:\n  USUBJID: keep\n  SSN: drop\n"
        "  're:^(FIRST|LAST)$': drop\n  '*DTC': keep\n",
    )
    good = write_csv(
        tmp_path / "p.csv",
        {"USUBJID": ["A"], "SSN": ["999-11-2222"], "FIRST": ["Ann"], "LAST": ["Lee"], "AESTDTC": ["2014-03"]},
    )
    assert ingest(platform, good, "s.p", policy="pii")[1] == "succeeded"
    table = read_table(platform, "s.p")
    assert table.column_names == ["USUBJID", "AESTDTC"]
    assert table.column("AESTDTC").to_pylist() == ["2014-03"], "partial ISO dates stay strings"
    bad = write_csv(tmp_path / "q.csv", {"USUBJID": ["B"], "PHONE": ["555"], "EMAIL": ["x@y"]})
    job_id, state = ingest(platform, bad, "s.p", policy="pii")
    assert state == "quarantined"
    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        # PHONE and EMAIL look identifying by name: quarantined with the evidence (#5)
        assert job.reason["code"] == "policy-identifying-column"
        assert job.reason["columns"] == ["PHONE", "EMAIL"]
        assert set(job.reason["evidence"]) == {"PHONE", "EMAIL"}
        assert "PHONE" in job.reason["message"]
        assert Path(job.raw_path).exists() and "quarantine" in job.raw_path
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.outcome == "failure")).all()
    assert "ingest.quarantine" in actions
    assert read_table(platform, "s.p").num_rows == 1, "nothing of the bad file is visible"


@pytest.mark.parametrize(
    "name,content,code",
    [
        ("empty.csv", b"", "unreadable"),
        ("ragged.csv", b"A,B\n1,2\n3\n", "unreadable"),
        ("binary.xpt", b"\x00\x01\x02garbage\x00" * 8, "unreadable"),
        ("binary.parquet", b"PAR1\x00\x01garbage", "unreadable"),
        ("truncated.parquet", None, "unreadable"),
    ],
)
def test_bad_files_are_quarantined_with_a_reason(
    sqlite_platform: Platform, tmp_path: Path, name: str, content: bytes | None, code: str
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    add_policy(sqlite_platform)
    path = tmp_path / name
    if content is None:
        pq.write_table(pa.table({"A": list(range(1000))}), path)
        path.write_bytes(path.read_bytes()[:-200])
    else:
        path.write_bytes(content)
    job_id, state = ingest(sqlite_platform, path, "s.bad")
    assert state == "quarantined"
    with sqlite_platform.db.session() as session:
        reason = session.get(IngestJob, job_id).reason
    assert reason["code"] in (code, "empty") and reason["message"]


def test_a_value_that_does_not_fit_names_file_row_column_and_value(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    platform = sqlite_platform
    add_policy(platform)
    ingest(platform, write_csv(tmp_path / "a.csv", {"ID": ["a"], "N": [1]}), "s.n")
    bad = tmp_path / "b.csv"
    bad.write_text("ID,N\nb,2\nc,3\nd,three\n")
    job_id, state = ingest(platform, bad, "s.n")
    assert state == "quarantined"
    with platform.db.session() as session:
        reason = session.get(IngestJob, job_id).reason
    assert reason["code"] == "invalid-data"
    assert reason["file"] == "b.csv" and reason["column"] == "N" and reason["row"] == 3
    assert "'three'" in reason["message"]
    assert read_table(platform, "s.n").num_rows == 1


def test_hostile_file_names_stay_inside_the_landing_area(sqlite_platform: Platform, tmp_path: Path) -> None:
    add_policy(sqlite_platform)
    source = write_csv(tmp_path / "x.csv", {"A": [1]})
    job_id, state = ingest(sqlite_platform, source, "s.h", display_name="../../../etc/passwd.csv")
    assert state == "succeeded"
    with sqlite_platform.db.session() as session:
        job = session.get(IngestJob, job_id)
    assert job.source_name == "passwd.csv"


def test_workers_never_claim_the_same_job_twice(platform: Platform, tmp_path: Path) -> None:
    import threading

    from datalibrary.ingest.jobs import claim
    from datalibrary.ingest.submit import submit_file
    from tests.lake_helpers import SYSTEM

    add_policy(platform)
    source = write_csv(tmp_path / "x.csv", {"A": [1]})
    with platform.db.session() as session:
        queued = {
            submit_file(session, SYSTEM, platform.settings, source, table="q.t", policy="keep-all").id
            for _ in range(12)
        }
    claimed: list[str] = []

    def worker(name: str) -> None:
        while (job_id := claim(platform.db.engine, name, 60)) is not None:
            claimed.append(job_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(claimed) == sorted(queued), "every job claimed exactly once"


def test_maintenance_removes_raw_copies_of_a_landing_that_died(sqlite_platform: Platform) -> None:
    from datalibrary.ingest.landing import ingest_dir
    from datalibrary.lake.maintenance import maintain
    from tests.lake_helpers import SYSTEM

    stale = ingest_dir(sqlite_platform.settings, "raw") / "deadbeef"
    stale.mkdir()
    (stale / "half.csv").write_text("A\n1\n")
    with sqlite_platform.db.session() as session:
        report = maintain(session, SYSTEM, open_lake(sqlite_platform.settings), grace_minutes=0)
    assert report["stale_raw_files_deleted"] == 1 and not stale.exists()


def test_an_unknown_reader_option_quarantines_the_job_naming_file_and_option(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """A job's options reach its reader typed: a misspelt one is refused, not dropped in silence;
    the pipeline's own keys (define.xml labels, manifest, fan-out links) never reach the reader."""
    from datalibrary.ingest.submit import submit_file
    from datalibrary.ingest.worker import run_one
    from tests.lake_helpers import SYSTEM

    platform = sqlite_platform
    add_policy(platform)
    submitted = []
    for name, options in [
        ("typo.csv", {"delimeter": ";", "parent": None}),
        ("fine.csv", {"delimiter": ";", "parent": None, "define_labels": {"FINE": {"ID": "Identifier"}}}),
    ]:
        path = tmp_path / name
        path.write_text("ID;N\na;1\nb;2\n")
        with platform.db.session() as session:
            job = submit_file(session, SYSTEM, platform.settings, path, table="s.opts", policy="keep-all")
            job.options = options
            submitted.append(job.id)
    typo, fine = (run_one(platform.settings, platform.db, "test-worker", job_id) for job_id in submitted)
    assert typo == (submitted[0], "quarantined")
    with platform.db.session() as session:
        reason = session.get(IngestJob, submitted[0]).reason
    assert reason["code"] == "unknown-option" and reason["options"] == ["delimeter"]
    assert (
        "'typo.csv'" in reason["message"] and "the csv reader has no option 'delimeter'" in reason["message"]
    )
    assert fine == (submitted[1], "succeeded")
    table = read_table(platform, "s.opts")
    assert table.column_names == ["ID", "N"] and table.num_rows == 2


def test_the_commit_guard_gives_a_typed_verdict(sqlite_platform: Platform, tmp_path: Path) -> None:
    """The guard the lake calls before each commit attempt: its string is for the lake's logs,
    the pipeline matches on the typed verdict (this job's own snapshot, or the same bytes)."""
    from datalibrary.ingest.outcomes import Duplicate, Succeeded
    from datalibrary.ingest.pipeline import CommitGuard
    from datalibrary.lake.catalog import parse_table_name

    platform = sqlite_platform
    add_policy(platform)
    job_id, _ = ingest(platform, write_csv(tmp_path / "a.csv", {"X": [1]}), "s.g")
    table = open_lake(platform.settings).load(parse_table_name("s.g"))
    snapshot = table.current_snapshot().snapshot_id
    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        session.expunge(job)
    own = CommitGuard(job)
    assert own(table) == f"committed:{snapshot}"
    assert own.verdict == Succeeded(snapshot, resumed=True)
    job.id = "another-job"
    same_bytes = CommitGuard(job)
    assert same_bytes(table) == f"duplicate:{snapshot}" and same_bytes.verdict == Duplicate(snapshot)
    job.sha256 = "0" * 64
    other = CommitGuard(job)
    assert other(table) is None and other.verdict is None


def test_a_final_write_that_loses_a_unique_row_race_is_retried(platform: Platform) -> None:
    """Two first deliveries to one new table both commit, then both create its catalog entry;
    the loser's insert violates the unique key. Its final write is retried in a new transaction
    (which finds the winner's row) instead of ending a committed job ``failed``."""
    from datalibrary.ingest.pipeline import retry_locked
    from datalibrary.lake import datasets
    from datalibrary.lake.catalog import TableName
    from datalibrary.lake.models import Dataset

    name = TableName("race", "t")

    def deliver(session, source_bytes: int) -> None:  # type: ignore[no-untyped-def]
        datasets.record_ingestion(
            session,
            name,
            owner="cli",
            source="cli",
            policy=("keep-all", "1", None),
            labels={},
            source_bytes=source_bytes,
            overwrite=False,
            columns=["X"],
        )

    with platform.db.session() as session:
        deliver(session, 1)  # the winner
    attempts = []

    def write() -> None:
        attempts.append(len(attempts) + 1)
        with platform.db.session() as session:
            if len(attempts) == 1:  # what the loser did: it had looked before the winner committed
                loser = Dataset(namespace="race", name="t", title="t", owner="cli", tags=[], source="cli")
                session.add(loser)
                session.flush()
            deliver(session, 2)

    retry_locked(write)
    assert attempts == [1, 2]
    with platform.db.session() as session:
        rows = session.scalars(select(Dataset).where(Dataset.namespace == "race")).all()
        assert [row.source_bytes for row in rows] == [3]
