"""Helpers for the lake and ingestion tests: policies, files, running jobs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from datalibrary.auth.permissions import Principal
from datalibrary.ingest.submit import submit_file
from datalibrary.ingest.worker import run_one
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.scan_planning import plan_table
from datalibrary.privacy.store import save_policy
from tests.helpers import Platform

SYSTEM = Principal.system("test")
KEEP_ALL = "name: keep-all\nversion: 1\ncolumns:\n  '*': keep\n"


def add_policy(platform: Platform, text: str = KEEP_ALL) -> str:
    with platform.db.session() as session:
        policy, _ = save_policy(session, SYSTEM, text)
    return policy.name


def write_csv(path: Path, rows: dict[str, list]) -> Path:
    pacsv.write_csv(pa.table(rows), path)
    return path


def ingest(
    platform: Platform, path: Path, table: str, policy: str = "keep-all", mode: str = "append", **kw
) -> tuple[str, str]:
    with platform.db.session() as session:
        job = submit_file(
            session, SYSTEM, platform.settings, path, table=table, policy=policy, mode=mode, **kw
        )
        job_id = job.id
    result = run_one(platform.settings, platform.db, "test-worker", job_id)
    assert result is not None
    return result


def read_table(platform: Platform, table: str, **kw) -> pa.Table:
    import pyarrow.dataset as pads

    lake = open_lake(platform.settings)
    plan = plan_table(lake, table, **kw)
    if not plan.files:
        return plan.schema.empty_table()
    return pads.dataset(
        [f.path for f in plan.files], format="parquet", filesystem=lake.storage.fs, schema=plan.schema
    ).to_table()
