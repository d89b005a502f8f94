"""Run a query for a caller: guard, authorize, plan, execute locked down, meter, record.

Every query — allowed, refused or failed — leaves a query record, an audit event and
OpenLineage START + COMPLETE/FAIL events naming the tables it read. The budget check and the
lineage events belong to layers above (costs, lineage): they are the hooks :data:`BUDGET_CHECK`
and :data:`TRACE`, registered by ``wiring``; without them no query runs (``hooks.NotWired``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import sqlglot
from sqlalchemy.orm import Session
from sqlglot import exp

from datalibrary.access import service as access
from datalibrary.access.rowfilter import MASK_NULL
from datalibrary.access.rowsecurity import ColumnStats, FileStats, compile_filter
from datalibrary.audit import service as audit
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db.base import utcnow
from datalibrary.errors import DataLibraryError, InvalidInput, NotFound, PermissionDenied
from datalibrary.hooks import Hook
from datalibrary.logs import request_id_var
from datalibrary.query import engine, guard, metering
from datalibrary.query.models import QueryRecord
from datalibrary.query.table_planner import PlannedTable, TablePlanner


@dataclass(frozen=True)
class TableRead:
    """A table a query read (with the snapshot and columns) or only named (refused)."""

    name: str
    snapshot_id: int | None = None
    columns: list[tuple[str, str]] | None = None  # (name, type) of the table read


# (session, settings, user, charged project, bytes the query scans): raises BudgetExceeded.
BUDGET_CHECK: Hook[[Session, Settings, str, str | None, int], None] = Hook("query.budget_check")
# (session, the finished record, the tables read, via, operator acting for the user or None):
# the lineage events of the run.
TRACE: Hook[[Session, QueryRecord, list[TableRead], str, str | None], None] = Hook("query.trace")


@dataclass
class QueryResult:
    record: QueryRecord
    table: pa.Table
    truncated: bool = False
    tables: list[dict[str, object]] = field(default_factory=list)


def _mask_expression(column: str, spec: str, arrow_type: pa.DataType) -> str:
    if spec == MASK_NULL:
        return f"CAST(NULL AS {engine.duckdb_type(arrow_type)})"
    return engine.sql_string(spec.removeprefix("const:"))


def build_view(planned: PlannedTable, grant: access.Access) -> engine.ViewSpec:
    """The caller's view of one table: granted columns only, masks, the row filter."""
    columns: dict[str, str] = {}
    for schema_field in planned.schema:
        lower = schema_field.name.lower()
        if grant.columns is not None and lower not in grant.columns:
            continue
        if lower in grant.masks:
            columns[schema_field.name] = _mask_expression(lower, grant.masks[lower], schema_field.type)
        else:
            columns[schema_field.name] = engine.quote(schema_field.name)
    if not columns:
        raise InvalidInput(f"your grant on {planned.namespace}.{planned.table} shows no column of it")
    view = engine.ViewSpec(
        name="",
        files=tuple(planned.files),
        schema=planned.schema,
        columns=columns,
        row_filter=grant.row_filter,
        proven=proven_files(grant.row_filter, tuple(planned.files), planned.schema),
    )
    return dataclasses.replace(view, name=engine.view_name(view))


@functools.lru_cache(maxsize=1024)
def proven_files(row_filter: str | None, files: tuple[str, ...], schema: pa.Schema) -> frozenset[str]:
    """The files whose Parquet statistics prove the row filter TRUE on every row (SQL's
    three-valued logic: see ``rowsecurity``): they are read without evaluating it."""
    security = compile_filter(row_filter)
    if security is None:
        return frozenset()
    types = {f.name.lower(): f.type for f in schema}
    proven = set()
    for path in files:
        facts = metering.file_facts(path)
        columns = {name: ColumnStats(*bounds) for name, bounds in facts.bounds.items()}
        if security.holds_everywhere(FileStats(facts.rows, columns, types)):
            proven.add(path)
    return frozenset(proven)


def shows_unmasked(grant: access.Access, column: str) -> bool:
    """Whether the caller sees ``column`` (lower-case) with its real values."""
    return (grant.columns is None or column in grant.columns) and column not in grant.masks


def _unqualified(predicate: str | None) -> str | None:
    """Drop table qualifiers (``l.siteid`` -> ``siteid``): the planner sees one table."""
    if predicate is None:
        return None
    tree = sqlglot.parse_one(predicate, read="duckdb")
    for column in tree.find_all(exp.Column):
        column.set("table", None)
    return tree.sql(dialect="duckdb")


def _parse_as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"'{value}' is not an ISO 8601 timestamp", field="sql") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def _scanned_columns(guarded: guard.GuardedQuery, view: engine.ViewSpec) -> set[str] | None:
    if guarded.star:
        referenced = {c.lower() for c in view.columns}
    else:
        referenced = {c for c in guarded.columns if c in {k.lower() for k in view.columns}}
    if view.row_filter:
        referenced |= {c.lower() for c in guard.columns_in(view.row_filter)}
    return referenced


def charged_project(principal: Principal, project: str | None) -> str | None:
    """The project a caller's usage is charged to: the one named (if a member), else the default."""
    if project is None:
        return principal.default_project
    if principal.via != "system" and project not in principal.projects:
        raise PermissionDenied(f"you are not a member of project '{project}'", field="project")
    return project


def _views(
    session: Session, principal: Principal, guarded: guard.GuardedQuery, planner: TablePlanner
) -> Iterator[tuple[guard.TableRef, PlannedTable, engine.ViewSpec]]:
    """The caller's restricted view of each table the query names, planned at its snapshot."""
    for ref in guarded.refs:
        grant = access.effective_access(session, principal, ref.namespace, ref.table)
        if grant is None:  # same answer as for a missing table: existence is not revealed
            raise NotFound(f"table {ref.name} does not exist or you have no grant on it")
        # The query's own predicates prune files only on columns the caller sees unmasked.
        pushdown = _unqualified(guarded.pushdown(ref, functools.partial(shows_unmasked, grant)))
        plan = functools.partial(
            planner.plan,
            ref.namespace,
            ref.table,
            snapshot_id=ref.snapshot_id,
            as_of=_parse_as_of(ref.as_of),
            row_filter=grant.row_filter,
        )
        if grant.row_filter is None or pushdown is None:
            planned = plan(pushdown=None if grant.row_filter else pushdown)
        else:
            planned = _pruned_where_proven(plan(), plan(pushdown=pushdown), grant.row_filter)
        yield ref, planned, build_view(planned, grant)


def _pruned_where_proven(whole: PlannedTable, pruned: PlannedTable, row_filter: str) -> PlannedTable:
    """With a row filter, the query's predicates prune only the files proven to hold visible
    rows alone: their statistics describe visible rows only, so which of them are read (hence
    bytes scanned) depends on nothing the caller cannot see. Every other file is read whole,
    whatever the query, so its statistics, which also cover hidden rows, answer nothing."""
    proven = proven_files(row_filter, tuple(whole.files), whole.schema)
    kept = set(pruned.files)
    files = [f for f in whole.files if f not in proven or f in kept]
    return dataclasses.replace(whole, files=files)


def estimate_bytes(
    session: Session, principal: Principal, sql: str, *, planner: TablePlanner
) -> tuple[int, list[str]]:
    """Guard, grants, planning and metering without executing: (bytes scanned, table names)."""
    require(principal, Permission.QUERY_RUN)
    guarded = guard.check(sql)
    total = sum(
        metering.bytes_scanned(view.files, _scanned_columns(guarded, view))
        for _, _, view in _views(session, principal, guarded, planner)
    )
    return total, [ref.name for ref in guarded.refs]


def run_query(
    session: Session,
    principal: Principal,
    sql: str,
    *,
    planner: TablePlanner,
    limits: engine.EngineLimits,
    project: str | None = None,
    via: str | None = None,
    settings: Settings,
) -> QueryResult:
    require(principal, Permission.QUERY_RUN)
    BUDGET_CHECK.resolve(), TRACE.resolve()  # no query runs unmetered or untraced
    project = charged_project(principal, project)
    record = QueryRecord(
        run_id=str(uuid.uuid4()),
        user=principal.name,
        project=project,
        sql=sql[:20_000],
        outcome="running",
        started_at=utcnow(),
        tables=[],
        bytes_scanned=0,
        rows_returned=0,
    )
    started = time.perf_counter()
    inputs: list[TableRead] = []
    try:
        guarded = guard.check(sql)
        views: dict[guard.TableRef, engine.ViewSpec] = {}
        for ref, planned, view in _views(session, principal, guarded, planner):
            views[ref] = view
            record.tables = [*record.tables, {"name": ref.name, "snapshot_id": planned.snapshot_id}]
            columns = [(f.name, str(f.type)) for f in planned.schema]
            inputs.append(TableRead(ref.name, planned.snapshot_id, columns))
        record.bytes_scanned = sum(
            metering.bytes_scanned(view.files, _scanned_columns(guarded, view)) for view in views.values()
        )
        # budgets: an exhausted one refuses large queries, whichever front end asked (settings
        # is required: the airlock's queries once ran unmetered by leaving it out)
        BUDGET_CHECK(session, settings, principal.name, project, record.bytes_scanned)
        rendered = guarded.render({ref: view.name for ref, view in views.items()})
        result = engine.run(rendered, list(views.values()), limits)
    except Exception as exc:
        # Refused, failed or crashed: the query still leaves its record, audit and lineage
        # events, naming the tables it asked for (marked refused: none was read).
        if isinstance(exc, DataLibraryError):
            record.outcome = "denied" if exc.status in (403, 404) else "failure"
            record.error = exc.detail
        else:
            request_id = request_id_var.get() or "-"
            record.outcome, record.error = "failure", f"internal error (request id {request_id})"
        named = [t["name"] for t in record.tables] or named_tables(sql)
        record.tables = [{"name": name, "snapshot_id": None, "refused": True} for name in named]
        session.rollback()  # nothing of a failed query's transaction survives but its record
        inputs = [TableRead(name) for name in named]
        _finish(session, principal, record, started, inputs, project, via)
        session.commit()
        raise
    record.outcome = "success"
    record.rows_returned = result.table.num_rows
    _finish(session, principal, record, started, inputs, project, via)
    return QueryResult(record=record, table=result.table, truncated=result.truncated, tables=record.tables)


def named_tables(sql: str) -> list[str]:
    """The catalog tables a (possibly refused) query names, as far as it parses at all."""
    try:
        tree = sqlglot.parse_one(sql.strip().rstrip(";"), read="duckdb")
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError):
        return []
    names: list[str] = []
    for table in tree.find_all(exp.Table) if tree is not None else []:
        parts = [p.name.lower() for p in table.parts]
        if len(parts) == 2 and all(guard.IDENTIFIER.match(p) for p in parts) and ".".join(parts) not in names:
            names.append(".".join(parts))
    return names[:20]


def _finish(
    session: Session,
    principal: Principal,
    record: QueryRecord,
    started: float,
    inputs: list[TableRead],
    project: str | None,
    via: str | None = None,
) -> None:
    """Add the record, the audit event and the lineage events to the session."""
    record.duration_ms = int((time.perf_counter() - started) * 1000)
    record.finished_at = utcnow()
    session.add(record)
    TRACE(session, record, inputs, via or principal.actor.client, principal.operator)
    audit.record(
        session,
        actor=principal,
        action="query.run",
        target=",".join(t["name"] for t in record.tables)[:255] or "query",
        outcome="success" if record.outcome == "success" else record.outcome,
        details={
            "run_id": record.run_id,
            "project": project,
            "bytes_scanned": record.bytes_scanned,
            "rows": record.rows_returned,
            "tables": record.tables,
        },
    )
