"""The exports airlock: the only way data leaves the platform.

A scientist names a result (a query, run with their own grants, or a file of one of their
workspace homes), a purpose and a destination. **The content is pinned when it is
requested**: the query runs (or the file is copied) at once, and the bytes are stored once,
content-addressed, with their SHA-256 (:mod:`datalibrary.lineage.export_content`). The
steward reviews that snapshot (first rows, column summary, row-level risk or smallest cell
of an aggregate) and approves or denies; approving a result that fails the risk check needs
an explicit override with a reason (audited). The requester downloads exactly the reviewed
bytes ONCE before the window expires — or nothing, if the stored bytes no longer match.
Every step is audited; lineage records START at the request, COMPLETE when the data left
(the download), FAIL when denied or when the content failed its check, ABORT when it
expired unused.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TooLarge
from datalibrary.lineage import export_content as content_store
from datalibrary.lineage import facets
from datalibrary.lineage.aggregates import cell_count_query
from datalibrary.lineage.export_content import exports_dir
from datalibrary.lineage.models import ExportRequest
from datalibrary.lineage.naming import FILE_NAMESPACE, naming_for
from datalibrary.lineage.schemas import ExportOut
from datalibrary.lineage.service import DatasetRef, RunState, emit, new_run_id
from datalibrary.query import guard
from datalibrary.query.service import run_query
from datalibrary.workspaces.models import Workspace

FORMATS = ("csv", "parquet", "arrow")
SUFFIX = {"csv": "csv", "parquet": "parquet", "arrow": "arrows"}
JOB_NAME = "export"
LIVE_STATES = ("pending", "approved")

__all__ = ["exports_dir"]


@dataclass(frozen=True)
class QueryRunner:
    """How the airlock runs a query export with the requester's grants (the query service)."""

    planner: Any
    limits: Any


def _homes(settings: Settings) -> Path:
    return settings.home / "workspaces" / "homes"


def _checked_relative(relative: str) -> Path:
    text = (relative or "").strip()
    if not text or len(text) > 1000 or "\x00" in text:
        raise InvalidInput("give the file's path relative to your workspace home", field="path")
    candidate = Path(text)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise InvalidInput(
            "the path must stay inside your workspace home (no '..', not absolute)", field="path"
        )
    return candidate


def _owned_workspaces(session: Session, principal: Principal) -> list[int]:
    if principal.user_id is None:
        return []
    return list(
        session.scalars(
            select(Workspace.id).where(Workspace.owner_id == principal.user_id).order_by(Workspace.id.desc())
        )
    )


def resolve_workspace_file(
    session: Session, settings: Settings, principal: Principal, relative: str, workspace: int | None = None
) -> tuple[int, Path]:
    """``relative`` inside the home of one of the principal's workspaces (``homes/<id>``).

    Without ``workspace``, the one home of the principal's workspaces that holds the file;
    refuses traversal, absolute paths, links leaving the home, and others' workspaces."""
    candidate = _checked_relative(relative)
    owned = _owned_workspaces(session, principal)
    if workspace is not None:
        if workspace not in owned:
            raise NotFound(f"you have no workspace {workspace}")
        owned = [workspace]
    if not owned:
        raise NotFound("you have no workspace: a file export names a file of a workspace home")
    found: list[tuple[int, Path]] = []
    for workspace_id in owned:
        home = (_homes(settings) / str(workspace_id)).resolve()
        target = (home / candidate).resolve()
        if not target.is_relative_to(home):
            raise InvalidInput("the path leaves your workspace home", field="path")
        if target.is_file():
            found.append((workspace_id, target))
    if not found:
        raise NotFound(f"no file '{relative.strip()}' in your workspace home")
    if len(found) > 1:
        raise InvalidInput(
            f"several of your workspaces hold '{relative.strip()}': name one "
            f"({', '.join(str(w) for w, _ in found)})",
            field="workspace",
        )
    return found[0]


def _datasets_of(sql: str) -> list[str]:
    return sorted({ref.name for ref in guard.check(sql).refs})


def _inputs(session: Session, export: ExportRequest) -> list[DatasetRef]:
    """A workspace file by its path (``file``), else the catalog tables the query read."""
    if export.kind == "file":
        homes = naming_for(session.get_bind()).workspace_homes
        return [DatasetRef(f"{homes}/{export.workspace_id}/{export.path}", namespace=FILE_NAMESPACE)]
    return [DatasetRef(name) for name in export.datasets]


def _emit(session: Session, export: ExportRequest, state: RunState, **extra: Any) -> None:
    emit(
        session,
        event_type=state,
        run_id=export.run_id,
        job_name=JOB_NAME,
        user=export.requester,
        project=export.project,
        purpose=export.purpose[:500],
        via="airlock",
        inputs=_inputs(session, export),
        **extra,
    )


def _check_request(
    principal: Principal, purpose: str, destination: str, format: str, project: str | None
) -> tuple[str, str]:
    require(principal, Permission.EXPORTS_REQUEST)
    purpose, destination = (purpose or "").strip(), (destination or "").strip()
    if len(purpose) < 10 or len(purpose) > 2000:
        raise InvalidInput("say why the data must leave (10-2000 characters)", field="purpose")
    if len(destination) < 3 or len(destination) > 500:
        raise InvalidInput("say where the data goes (3-500 characters)", field="destination")
    if format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", field="format")
    if project is not None and principal.via != "system" and project not in principal.projects:
        raise PermissionDenied(f"you are not a member of project '{project}'", field="project")
    return purpose, destination


def encode(table: pa.Table, fmt: str) -> bytes:
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    elif fmt == "parquet":
        pq.write_table(table, sink, compression="zstd")
    else:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return sink.getvalue()


def _new(
    principal: Principal, purpose: str, destination: str, fmt: str, project: str | None
) -> ExportRequest:
    return ExportRequest(
        run_id=new_run_id(),
        requester=principal.name,
        project=project or principal.default_project,
        purpose=purpose,
        destination=destination,
        format=fmt,
        state="pending",
        created_at=utcnow(),
    )


def _pin(
    session: Session,
    settings: Settings,
    principal: Principal,
    export: ExportRequest,
    stored: tuple[Path, str, int],
    aggregate_cells: list[int] | None = None,
) -> ExportRequest:
    """Record the snapshot, its summary, and the request (audit + lineage START)."""
    export.file_path, export.file_sha256, export.file_bytes = str(stored[0]), stored[1], stored[2]
    export.summary = _summary_of(export, aggregate_cells=aggregate_cells)
    if aggregate_cells is not None:
        export.summary["aggregate_cells"] = aggregate_cells[:10_000]
    session.add(export)
    session.flush()
    _emit(session, export, RunState.START, operator=principal.operator)
    audit.record(
        session,
        actor=principal,
        action="export.request",
        target=f"export:{export.id}",
        details={
            "kind": export.kind,
            "datasets": export.datasets,
            "project": export.project,
            "sha256": export.file_sha256,
            "bytes": export.file_bytes,
        },
    )
    return export


def request_export(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    purpose: str,
    destination: str,
    sql: str | None = None,
    path: str | None = None,
    workspace: int | None = None,
    format: str = "csv",
    project: str | None = None,
    runner: QueryRunner | None = None,
) -> ExportRequest:
    """Request an export; its content is computed and pinned now (what the steward reviews)."""
    purpose, destination = _check_request(principal, purpose, destination, format, project)
    if bool(sql) == bool(path):
        raise InvalidInput("name exactly one result: a query (sql) or a workspace file (path)")
    if sql:
        if runner is None:
            raise InvalidInput("query exports need the query service")
        datasets = _datasets_of(sql)
        table = _run(session, principal, settings, sql, runner, project)
        cells = group_sizes(session, principal, settings, sql, runner, project)
        return request_export_of_table(
            session, principal, settings, table=table, sql=sql, datasets=datasets, purpose=purpose,
            destination=destination, format=format, project=project, aggregate_cells=cells,
        )  # fmt: skip
    workspace_id, target = resolve_workspace_file(session, settings, principal, path or "", workspace)
    export = _new(principal, purpose, destination, format, project)
    export.kind, export.path, export.datasets = "file", str(Path((path or "").strip())), []
    export.workspace_id = workspace_id
    export.format = content_store.tabular_format(target.name) or "file"
    return _pin(session, settings, principal, export, content_store.store_file(settings, target))


def request_export_of_table(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    table: pa.Table,
    sql: str,
    datasets: list[str],
    purpose: str,
    destination: str,
    format: str = "csv",
    project: str | None = None,
    aggregate_cells: list[int] | None = None,
) -> ExportRequest:
    """An export request for a query result already computed with the requester's grants
    (query exports, and downloads that the download policy routes to the airlock)."""
    purpose, destination = _check_request(principal, purpose, destination, format, project)
    export = _new(principal, purpose, destination, format, project)
    export.kind, export.sql, export.datasets = "query", sql[:100_000], datasets
    stored = content_store.store_bytes(settings, encode(table, format))
    return _pin(session, settings, principal, export, stored, aggregate_cells)


def request_export_of_bytes(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    content: bytes,
    name: str,
    purpose: str,
    destination: str,
    project: str | None = None,
    workspace: int | None = None,
) -> ExportRequest:
    """An export request for bytes the caller holds (e.g. a workspace file a console user
    asked to download): pinned, reviewed and handed out like any other export."""
    purpose, destination = _check_request(principal, purpose, destination, "csv", project)
    relative = _checked_relative(name)
    export = _new(principal, purpose, destination, "csv", project)
    export.kind, export.path, export.datasets = "file", str(relative), []
    export.workspace_id = workspace
    export.format = content_store.tabular_format(relative.name) or "file"
    return _pin(session, settings, principal, export, content_store.store_bytes(settings, content))


def _run(
    session: Session,
    principal: Principal,
    settings: Settings,
    sql: str,
    runner: QueryRunner,
    project: str | None,
) -> pa.Table:
    result = run_query(
        session, principal, sql, planner=runner.planner, limits=runner.limits, project=project,
        via="airlock", settings=settings,
    )  # fmt: skip
    if result.truncated:
        raise TooLarge("the query result hit the server's row cap: an export must be complete; narrow it")
    return result.table


def group_sizes(
    session: Session,
    principal: Principal,
    settings: Settings,
    sql: str,
    runner: QueryRunner,
    project: str | None,
) -> list[int] | None:
    """The record count of every group of an aggregate query (None: not an aggregate)."""
    companion = cell_count_query(sql)
    if companion is None:
        return None
    table = _run(session, principal, settings, companion, runner, project)
    return [int(v) for v in table.column(table.num_columns - 1).to_pylist() if v is not None]


def get_export(session: Session, export_id: int) -> ExportRequest:
    export = session.get(ExportRequest, export_id)
    if export is None:
        raise NotFound(f"export request {export_id} does not exist")
    return export


def list_exports(
    session: Session, principal: Principal, *, everyone: bool = False, state: str | None = None
) -> list[ExportRequest]:
    """Your own requests; reviewers list everyone's with ``everyone``."""
    if everyone:
        require(principal, Permission.EXPORTS_REVIEW)
    else:
        require(principal, Permission.EXPORTS_REQUEST)
    query = select(ExportRequest).order_by(ExportRequest.id.desc()).limit(500)
    if not everyone:
        query = query.where(ExportRequest.requester == principal.name)
    if state:
        query = query.where(ExportRequest.state == state)
    return list(session.scalars(query))


def _summary_of(
    export: ExportRequest,
    *,
    quasi_identifiers: list[str] | None = None,
    count_column: str | None = None,
    aggregate_cells: list[int] | None = None,
) -> dict[str, Any]:
    """The review summary of the pinned snapshot (streamed; never the live file)."""
    path = Path(export.file_path or "")
    content_store.verify(path, export.file_sha256)
    fmt = export.format if export.format in content_store.TABULAR.values() else None
    if fmt is None:
        return content_store.summarize_opaque(path, export.path or "")
    if aggregate_cells is None and not quasi_identifiers and not count_column:
        aggregate_cells = (export.summary or {}).get("aggregate_cells")
    try:
        return content_store.summarize_file(
            path,
            fmt,
            quasi_identifiers=quasi_identifiers,
            count_column=count_column,
            aggregate_cells=aggregate_cells,
        )
    except InvalidInput as exc:
        if export.kind != "file" or exc.extra.get("field"):
            raise
        # a file named like a table that does not read as one: reviewed as an opaque file
        opaque = content_store.summarize_opaque(path, export.path or "")
        opaque["note"] = f"{opaque['note']} ({exc.detail})"
        return opaque


def summarize(
    session: Session,
    principal: Principal,
    settings: Settings,
    export_id: int,
    quasi_identifiers: list[str] | None = None,
    count_column: str | None = None,
) -> dict[str, Any]:
    """What the steward reviews: the pinned snapshot's content, first rows and risk.

    Without quasi-identifiers or a count column, the summary stored at request time."""
    require(principal, Permission.EXPORTS_REVIEW)
    export = get_export(session, export_id)
    if not quasi_identifiers and not count_column and export.summary:
        if export.state in LIVE_STATES:  # the content handed out must still be what is shown
            content_store.verify(Path(export.file_path or ""), export.file_sha256)
        return {k: v for k, v in export.summary.items() if k != "aggregate_cells"}
    if export.state not in LIVE_STATES:
        raise Conflict(f"export request {export_id} is {export.state}: its content is gone")
    return _summary_of(export, quasi_identifiers=quasi_identifiers, count_column=count_column)


def _release(session: Session, export: ExportRequest) -> None:
    """Delete the snapshot unless another live request pins the same bytes."""
    if not export.file_path:
        return
    others = session.scalar(
        select(func.count())
        .select_from(ExportRequest)
        .where(
            ExportRequest.file_path == export.file_path,
            ExportRequest.id != export.id,
            ExportRequest.state.in_(LIVE_STATES),
        )
    )
    if not others:
        Path(export.file_path).unlink(missing_ok=True)


def decide(
    session: Session,
    principal: Principal,
    settings: Settings,
    export_id: int,
    *,
    approve: bool,
    note: str = "",
    quasi_identifiers: list[str] | None = None,
    count_column: str | None = None,
    override_reason: str | None = None,
    runner: QueryRunner | None = None,  # unused: the content was pinned at request time
) -> ExportRequest:
    """Approve (open the download window on the pinned snapshot) or deny a pending request.

    Approving content that fails the risk check (or whose risk is unknown) needs
    ``override_reason``; the override is audited on its own."""
    require(principal, Permission.EXPORTS_REVIEW)
    export = get_export(session, export_id)
    if export.state != "pending":
        raise Conflict(f"export request {export_id} is {export.state}, not pending")
    if export.requester == principal.name:
        raise PermissionDenied("a steward cannot review their own export request")
    if not approve:
        export.reviewer, export.decided_at = principal.name, utcnow()
        export.decision_note = (note or "")[:2000]
        export.state = "denied"
        _release(session, export)
        _emit(
            session,
            export,
            RunState.FAIL,
            error=f"denied by {principal.name}",
        )
        audit.record(
            session,
            actor=principal,
            action="export.deny",
            target=f"export:{export.id}",
            details={"requester": export.requester},
        )
        return export
    summary = _summary_of(export, quasi_identifiers=quasi_identifiers, count_column=count_column)
    checked = summary.get("risk") or {}
    reason = (override_reason or "").strip()
    if not checked.get("passes"):
        if len(reason) < 10:
            raise InvalidInput(
                "this content does not pass the risk check (or its risk is unknown): approving it "
                "needs an explicit override with a reason (10-2000 characters)",
                field="override_reason",
            )
    else:
        reason = ""
    kept = (export.summary or {}).get("aggregate_cells")
    export.summary = summary | ({"aggregate_cells": kept} if kept else {})
    export.reviewer, export.decided_at = principal.name, utcnow()
    export.decision_note = (note or "")[:2000]
    export.override_reason = reason[:2000] or None
    export.state = "approved"
    export.expires_at = utcnow() + timedelta(hours=settings.lineage.export_ttl_hours)
    details = {
        "requester": export.requester,
        "bytes": export.file_bytes,
        "sha256": export.file_sha256,
        "result_kind": summary.get("result_kind"),
        "k": checked.get("k"),
        "passes": bool(checked.get("passes")),
    }
    audit.record(session, actor=principal, action="export.approve", target=f"export:{export.id}",
                 details=details)  # fmt: skip
    if reason:
        audit.record(
            session,
            actor=principal,
            action="export.override",
            target=f"export:{export.id}",
            details={
                "reason": reason[:2000],
                "k": checked.get("k"),
                "result_kind": summary.get("result_kind"),
            },
        )
    return export


def _fail_integrity(session: Session, export: ExportRequest, principal: Principal, why: str) -> None:
    """Mark the export failed and audit it, in transactions that survive the caller's rollback."""
    with Session(session.get_bind()) as own:
        own.execute(
            update(ExportRequest)
            .where(ExportRequest.id == export.id, ExportRequest.state == "approved")
            .values(state="failed")
        )
        own.commit()
    audit.record_now(
        session,
        actor=principal,
        action="export.integrity-failure",
        target=f"export:{export.id}",
        outcome="failure",
        details={"expected_sha256": export.file_sha256, "reason": why[:300]},
    )


def download(session: Session, principal: Principal, export_id: int) -> tuple[bytes, str]:
    """The reviewed bytes, once (checked against their SHA-256; deleted as they are handed over)."""
    require(principal, Permission.EXPORTS_REQUEST)
    export = get_export(session, export_id)
    if export.requester != principal.name:
        raise NotFound(f"export request {export_id} does not exist")  # others' exports are not revealed
    if export.state != "approved":
        raise Conflict(f"export request {export_id} is {export.state}: nothing to download")
    if export.expires_at and export.expires_at <= utcnow():
        _expire(session, export)
        raise Conflict(f"export request {export_id} expired unused; request it again")
    try:
        content = content_store.read_verified(Path(export.file_path or ""), export.file_sha256)
    except Conflict as exc:
        _fail_integrity(session, export, principal, exc.detail)
        raise
    claimed = session.execute(
        update(ExportRequest)
        .where(ExportRequest.id == export.id, ExportRequest.state == "approved")
        .values(state="downloaded", downloaded_at=utcnow())
    )
    if claimed.rowcount != 1:  # a concurrent download won
        raise Conflict(f"export request {export_id} was already downloaded")
    session.refresh(export)
    _release(session, export)
    rows = (export.summary or {}).get("rows")
    base_url, download_path = naming_for(session.get_bind()).api(f"/api/v1/exports/{export.id}/download")
    _emit(
        session,
        export,
        RunState.COMPLETE,
        outputs=[
            DatasetRef(
                download_path,
                namespace=base_url,
                facets={"dataSource": facets.datasource_facet("DataLibrary exports", base_url)},
                io_facets={"outputStatistics": facets.output_stats(rows, export.file_bytes, 1)},
            )
        ],
        rows=rows,
        size=export.file_bytes,
        operator=principal.operator,
    )
    audit.record(
        session,
        actor=principal,
        action="export.download",
        target=f"export:{export.id}",
        details={"bytes": export.file_bytes, "sha256": export.file_sha256},
    )
    return content, f"export-{export.id}.{_suffix(export)}"


def _suffix(export: ExportRequest) -> str:
    if export.kind == "file":
        return Path(export.path or "").suffix.lstrip(".") or "bin"
    return SUFFIX.get(export.format, "bin")


def _expire(session: Session, export: ExportRequest) -> None:
    export.state = "expired"
    _release(session, export)
    _emit(session, export, RunState.ABORT)
    audit.record(
        session,
        actor="system",
        action="export.expire",
        target=f"export:{export.id}",
        details={"requester": export.requester},
    )


def expire_exports(session: Session) -> int:
    """Delete the files of approved exports whose download window closed (maintenance)."""
    due = session.scalars(
        select(ExportRequest).where(ExportRequest.state == "approved", ExportRequest.expires_at <= utcnow())
    ).all()
    for export in due:
        _expire(session, export)
    return len(due)


def export_dict(export: ExportRequest, *, reviewer: bool = False) -> dict[str, Any]:
    """The request as the front ends show it (``lineage.schemas.ExportOut``), for pages."""
    return ExportOut.of(export, reviewer=reviewer).model_dump()
