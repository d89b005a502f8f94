"""Domain metrics for Prometheus, read from the database at scrape time.

The state that matters lives in the database, not in a process, so any replica answers a
scrape with the installation's totals (aggregate replicas with ``max``, not ``sum``). Each
scrape runs a handful of aggregate queries over indexed columns; names follow Prometheus
conventions (base units, ``_total`` for counters, ``_seconds`` and ``_bytes`` suffixes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Float

from datalibrary.costs.models import BudgetAlert
from datalibrary.db import Database
from datalibrary.ingest.models import JOB_STATES, IngestJob
from datalibrary.lineage.models import LineageEvent, LineageForwarding
from datalibrary.query.models import QueryRecord
from datalibrary.workspaces.models import Workspace, WorkspaceUsage

log = logging.getLogger(__name__)

JOB_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
QUERY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0)
START_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 120.0)


class seconds_between(FunctionElement[float]):  # noqa: N801 - reads as the SQL function it compiles to
    """``end - start`` in seconds, on SQLite (Julian days) and PostgreSQL (epoch)."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _sqlite_seconds(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between)
def _default_seconds(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


def _histogram(
    session: Any, name: str, documentation: str, value: ColumnElement[float], where: Sequence[Any],
    buckets: tuple[float, ...], labels: dict[str, ColumnElement[Any]] | None = None,
) -> HistogramMetricFamily:  # fmt: skip
    """Cumulative bucket counts and the sum, computed by the database in one query."""
    labels = labels or {}
    columns = [
        *labels.values(),
        *(func.sum(case((value <= bound, 1), else_=0)) for bound in buckets),
        func.count(),
        func.coalesce(func.sum(value), 0.0),
    ]
    query = select(*columns).where(*where)
    if labels:
        query = query.group_by(*labels.values())
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for row in session.execute(query):
        label_values = [str(v) for v in row[: len(labels)]]
        counts = row[len(labels) : len(labels) + len(buckets)]
        total, value_sum = row[-2], row[-1]
        if not total:
            continue
        points = [(str(bound), int(count or 0)) for bound, count in zip(buckets, counts, strict=True)]
        family.add_metric(label_values, [*points, ("+Inf", int(total))], float(value_sum))
    return family


class DomainCollector(Collector):
    """What operators watch: ingestion, quarantine, queries, lineage forwarding, workspaces,
    budgets. A database failure yields no domain metrics (and a log line), never a failed scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> list[Any]:
        return []  # collected on demand: nothing to check at registration

    def collect(self) -> Iterator[Any]:
        try:
            with self.db.session() as session:
                families = [
                    *self._ingestion(session),
                    *self._queries(session),
                    *self._lineage(session),
                    *self._workspaces(session),
                    *self._budgets(session),
                ]
        except Exception:  # a scrape must not fail because the database is briefly away
            log.warning("domain metrics unavailable: the database did not answer", exc_info=True)
            return
        yield from families

    def _ingestion(self, session: Any) -> list[Any]:
        jobs = CounterMetricFamily(
            "datalibrary_ingest_jobs", "Ingestion jobs finished, by outcome", labels=["outcome"]
        )
        read = CounterMetricFamily(
            "datalibrary_ingest_source_bytes", "Bytes of source files ingested successfully"
        )
        rows = CounterMetricFamily("datalibrary_ingest_rows", "Rows written to the lake by ingestion")
        written = CounterMetricFamily(
            "datalibrary_ingest_written_bytes", "Compressed bytes written to the lake by ingestion"
        )
        active = GaugeMetricFamily(
            "datalibrary_ingest_jobs_active", "Ingestion jobs waiting or running", labels=["state"]
        )
        quarantined = GaugeMetricFamily(
            "datalibrary_ingest_quarantined_files", "Files held in quarantine for a steward's review"
        )
        counts = dict(session.execute(select(IngestJob.state, func.count()).group_by(IngestJob.state)).all())
        for state in JOB_STATES:
            if state in ("queued", "running"):
                active.add_metric([state], counts.get(state, 0))
            else:
                jobs.add_metric([state], counts.get(state, 0))
        quarantined.add_metric([], counts.get("quarantined", 0))
        totals = session.execute(
            select(
                func.coalesce(func.sum(IngestJob.size_bytes), 0),
                func.coalesce(func.sum(IngestJob.rows_written), 0),
                func.coalesce(func.sum(IngestJob.bytes_written), 0),
            ).where(IngestJob.state == "succeeded")
        ).one()
        read.add_metric([], totals[0])
        rows.add_metric([], totals[1])
        written.add_metric([], totals[2])
        duration = _histogram(
            session,
            "datalibrary_ingest_job_duration_seconds",
            "Time from a job's start to its end, by outcome",
            seconds_between(IngestJob.started_at, IngestJob.finished_at),
            [IngestJob.started_at.is_not(None), IngestJob.finished_at.is_not(None)],
            JOB_BUCKETS,
            {"outcome": IngestJob.state},
        )
        return [jobs, read, rows, written, active, quarantined, duration]

    def _queries(self, session: Any) -> list[Any]:
        queries = CounterMetricFamily("datalibrary_queries", "Queries run, by outcome", labels=["outcome"])
        scanned = CounterMetricFamily(
            "datalibrary_query_scanned_bytes", "Bytes of lake data read by queries", labels=["outcome"]
        )
        for outcome, count, scanned_bytes in session.execute(
            select(QueryRecord.outcome, func.count(), func.coalesce(func.sum(QueryRecord.bytes_scanned), 0))
            .group_by(QueryRecord.outcome)
        ):  # fmt: skip
            queries.add_metric([outcome], count)
            scanned.add_metric([outcome], scanned_bytes)
        duration = _histogram(
            session,
            "datalibrary_query_duration_seconds",
            "Query run time, by outcome",
            QueryRecord.duration_ms / 1000.0,
            [],
            QUERY_BUCKETS,
            {"outcome": QueryRecord.outcome},
        )
        return [queries, scanned, duration]

    def _lineage(self, session: Any) -> list[Any]:
        events = CounterMetricFamily("datalibrary_lineage_events", "OpenLineage events recorded")
        pending = GaugeMetricFamily(
            "datalibrary_lineage_outbox_events",
            "Events not yet delivered to the slowest forwarding endpoint (the outbox size)",
        )
        failures = GaugeMetricFamily(
            "datalibrary_lineage_forwarding_failures",
            "Consecutive failed deliveries, summed over forwarding endpoints",
        )
        newest = session.scalar(select(func.coalesce(func.max(LineageEvent.id), 0))) or 0
        events.add_metric([], session.scalar(select(func.count()).select_from(LineageEvent)) or 0)
        states = session.execute(select(LineageForwarding.last_event_id, LineageForwarding.failures)).all()
        pending.add_metric([], max((newest - last for last, _ in states), default=0))
        failures.add_metric([], sum(count for _, count in states))
        return [events, pending, failures]

    def _workspaces(self, session: Any) -> list[Any]:
        by_state = GaugeMetricFamily("datalibrary_workspaces", "Workspaces by state", labels=["state"])
        for state, count in session.execute(select(Workspace.state, func.count()).group_by(Workspace.state)):
            by_state.add_metric([state], count)
        start = _histogram(
            session,
            "datalibrary_workspace_start_duration_seconds",
            "Time workspaces spent starting before they ran (start latency)",
            seconds_between(WorkspaceUsage.started_at, WorkspaceUsage.ended_at),
            [WorkspaceUsage.state == "starting", WorkspaceUsage.ended_at.is_not(None)],
            START_BUCKETS,
        )
        return [by_state, start]

    def _budgets(self, session: Any) -> list[Any]:
        alerts = CounterMetricFamily(
            "datalibrary_budget_alerts", "Budget alerts raised, by level (percent spent)", labels=["level"]
        )
        for level, count in session.execute(
            select(BudgetAlert.level, func.count()).group_by(BudgetAlert.level)
        ):
            alerts.add_metric([str(level)], count)
        return [alerts]
