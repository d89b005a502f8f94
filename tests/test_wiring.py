"""The reactions that flow upward (issue #19) are hooks registered at startup, and a hook
left unregistered refuses: no query runs unmetered or untraced, no ingestion job runs
untraced, no erasure or maintenance runs blind to ingestion."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from datalibrary import hooks, wiring
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.submit import submit_file
from datalibrary.ingest.worker import run_one
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.erasure import erase_subject
from datalibrary.lake.maintenance import maintain
from datalibrary.query.lake_planner import LakePlanner
from datalibrary.query.models import QueryRecord
from datalibrary.query.service import run_query
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, add_policy, ingest, write_csv

DECLARING = [
    "datalibrary.query.service",
    "datalibrary.ingest.pipeline",
    "datalibrary.lake.copies",
    "datalibrary.lake.datasets",
    "datalibrary.lake.erasure",
    "datalibrary.lake.maintenance",
]


def test_every_declared_hook_is_wired_to_a_function_that_exists() -> None:
    for module in DECLARING:
        importlib.import_module(module)
    assert hooks.declared() == set(wiring.HANDLERS)
    for target in wiring.HANDLERS.values():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target


@contextmanager
def unwired(*names: str) -> Iterator[None]:
    """The state of a process whose entry point forgot ``wiring.register_handlers``."""
    saved = hooks.snapshot()
    for name in names or wiring.HANDLERS:
        hooks.unregister(name)
    try:
        yield
    finally:
        hooks.restore(saved)


def test_unwired_a_query_is_refused_before_it_runs(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    add_policy(platform)
    source = write_csv(tmp_path / "a.csv", {"USUBJID": ["S-1"], "V": [1]})
    assert ingest(platform, source, "st.a")[1] == "succeeded"
    for name in ("query.trace", "query.budget_check"):
        with unwired(name), platform.db.session() as session, pytest.raises(hooks.NotWired, match=name):
            run_query(
                session,
                SYSTEM,
                "SELECT * FROM st.a",
                planner=LakePlanner(platform.settings),
                limits=platform.settings.query.limits(),
                settings=platform.settings,
            )
    with platform.db.session() as session:
        assert session.scalar(select(func.count()).select_from(QueryRecord)) == 0


def test_unwired_no_job_is_claimed_and_no_erasure_or_maintenance_runs(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    with unwired():
        _refused_without_wiring(sqlite_platform, tmp_path)


def _refused_without_wiring(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    with platform.db.session() as session:
        job = submit_file(
            session, SYSTEM, platform.settings, write_csv(tmp_path / "b.csv", {"V": [1]}), table="st.b",
            policy="keep-all",
        )  # fmt: skip
        job_id = job.id
    with pytest.raises(hooks.NotWired, match="ingest.trace_started"):
        run_one(platform.settings, platform.db, "test-worker", job_id)
    with platform.db.session() as session:
        assert session.get(IngestJob, job_id).state == "queued"  # not claimed, not lost
    hooks.restore({"ingest.trace_started": wiring.HANDLERS["ingest.trace_started"]})
    hooks.restore({"ingest.trace_finished": wiring.HANDLERS["ingest.trace_finished"]})
    assert run_one(platform.settings, platform.db, "test-worker", job_id)[1] == "succeeded"
    lake = open_lake(platform.settings)
    with platform.db.session() as session:
        with pytest.raises(hooks.NotWired, match="lake.copy_scanners"):
            erase_subject(session, SYSTEM, lake, namespace="st", subject="S-1")
        with pytest.raises(hooks.NotWired, match="lake.active_writes"):
            maintain(session, SYSTEM, lake)
