"""Two first ingestions into one new table finish together: both record the dataset row, and
neither fails (found by a random-order run: on PostgreSQL the second INSERT violated the
unique (namespace, name) key and the job's final write failed)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from datalibrary.db import Database
from datalibrary.lake.catalog import TableName
from datalibrary.lake.datasets import record_ingestion
from datalibrary.lake.models import Dataset


def _record(db: Database, source_bytes: int) -> None:
    with db.session() as session:
        record_ingestion(
            session,
            TableName("race", "t"),
            owner="test",
            source="test",
            policy=("keep-all", "1", "h"),
            labels={},
            source_bytes=source_bytes,
            overwrite=False,
            columns=["USUBJID"],
        )


def test_two_first_ingestions_record_one_dataset(database_url: str) -> None:
    db = Database(database_url)
    errors: list[BaseException] = []

    def second() -> None:
        try:
            _record(db, 5)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    try:
        with db.session() as session:  # the first one has inserted its row, not yet committed
            record_ingestion(
                session, TableName("race", "t"), owner="test", source="test", policy=("keep-all", "1", "h"),
                labels={}, source_bytes=3, overwrite=False, columns=["USUBJID"],
            )  # fmt: skip
            other = threading.Thread(target=second)
            other.start()
            time.sleep(1.0)  # the second one now waits for the first one's row
        other.join(60)
        assert not other.is_alive()
        assert errors == []
        with db.session() as session:
            rows = session.scalars(select(Dataset).where(Dataset.namespace == "race")).all()
            assert len(rows) == 1 and rows[0].source_bytes == 8 and rows[0].subject_column == "USUBJID"
            assert session.scalar(select(func.count()).select_from(Dataset)) == 1
    finally:
        db.dispose()
